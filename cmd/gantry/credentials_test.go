package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/assemble/registrytest"
)

// TestEnvCredentials: GANTRY_REGISTRY_USER and GANTRY_REGISTRY_PASSWORD (or
// --registry-user and --registry-password-stdin) push; a wrong password
// exits 3 and pushes nothing; the password is printed nowhere.
func TestEnvCredentials(t *testing.T) {
	ca := registrytest.NewCA(t)
	reg := htpasswdRegistry(t, ca)
	isolateDockerConfig(t)
	site := siteDir(t)
	push := func(env map[string]string, stdin, dest string, extra ...string) (int, string, string, string) {
		work := t.TempDir()
		args := append([]string{"append", "--base", "oci:" + nginxBase, "--layer", site + ":/srv", "--user", "app:1001",
			"--push", dest, "--ca-cert", ca.File, "--json", "-v", "--digest-file", filepath.Join(work, "digests"),
			"--cache-dir", filepath.Join(work, "cache")}, extra...)
		code, stdout, stderr := gantryEnv(t, env, stdin, args...)
		assertNoSecret(t, regPassword, map[string]string{"stdout": stdout, "stderr": stderr}, work)
		return code, stdout, stderr, work
	}

	code, stdout, stderr, work := push(map[string]string{"GANTRY_REGISTRY_USER": regUser, "GANTRY_REGISTRY_PASSWORD": regPassword}, "", reg.Host+"/web/env:v1")
	if code != 0 {
		t.Fatalf("env credentials: exit %d: %s", code, stderr)
	}
	if rs := parseResults(t, stdout); len(rs) != 1 || rs[0].References[0] != reg.Host+"/web/env:v1" {
		t.Errorf("results: %s", stdout)
	}
	checkDigestFile(t, filepath.Join(work, "digests"), []string{reg.Host + "/web/env:v1"}, reg.OptionsAs(regUser)...)
	if !strings.Contains(stderr, `authorization="Basic [redacted]"`) {
		t.Errorf("-v logged no redacted Authorization header:\n%s", stderr)
	}

	code, _, stderr, _ = push(map[string]string{"GANTRY_REGISTRY": reg.Host}, regPassword+"\n", reg.Host+"/web/stdin:v1", "--registry-user", regUser, "--registry-password-stdin")
	if code != 0 {
		t.Fatalf("--registry-password-stdin: exit %d: %s", code, stderr)
	}

	before := reg.Writes()
	code, stdout, stderr, work = push(map[string]string{"GANTRY_REGISTRY_USER": regUser, "GANTRY_REGISTRY_PASSWORD": "not-" + regPassword}, "", reg.Host+"/web/wrong:v1")
	if code != exitRegistry {
		t.Errorf("wrong password: exit %d, want %d: %s", code, exitRegistry, stderr)
	}
	want := "gantry: error: cannot push to " + reg.Host + "/web/wrong: 401 unauthorized on " + reg.Host + "/web/wrong: authentication required (check the credentials for " + reg.Host + ": gantry login " + reg.Host + ", docker login, or --registry-user)"
	if lastLine(stderr) != want {
		t.Errorf("wrong password:\n got %q\nwant %q", lastLine(stderr), want)
	}
	if stdout != "" || reg.Writes() != before || registrytest.TagExists(t, reg.Host+"/web/wrong:v1", reg.OptionsAs(regUser)...) {
		t.Errorf("a push with a wrong password wrote something (stdout %q)", stdout)
	}
	if b, err := os.ReadFile(filepath.Join(work, "digests")); err == nil {
		t.Errorf("a failed push wrote the digest file: %q", b)
	}

	// half the credentials is a usage error
	code, _, stderr, _ = push(map[string]string{"GANTRY_REGISTRY_USER": regUser}, "", reg.Host+"/web/half:v1")
	if code != exitUsage || !strings.Contains(stderr, "need both a user") {
		t.Errorf("user without password: exit %d: %s", code, stderr)
	}
}

// credentialHelper writes a docker-credential-NAME script into a new
// directory put first on PATH. It keeps one credential in state/creds.json
// (what store wrote, cat on get) and logs each call to state/calls.
func credentialHelper(t *testing.T, helper string) (state string) {
	t.Helper()
	bin, state := t.TempDir(), t.TempDir()
	script := fmt.Sprintf(`#!/bin/sh
state=%q
read -r input || true
echo "$1 $input" >> "$state/calls"
case "$1" in
get)
	if [ -f "$state/creds.json" ]; then cat "$state/creds.json"; else echo "credentials not found in native keychain"; exit 1; fi ;;
store)
	printf '%%s' "$input" > "$state/creds.json" ;;
erase)
	rm -f "$state/creds.json" ;;
list)
	echo "{}" ;;
esac
`, state)
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-"+helper), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return state
}

// TestCredentialHelper: config.json names a credential helper for the
// registry; build reads the credentials from it, login stores them in it
// (config.json keeps no secret), logout erases them.
func TestCredentialHelper(t *testing.T) {
	ca := registrytest.NewCA(t)
	reg := htpasswdRegistry(t, ca)
	cfgDir := isolateDockerConfig(t)
	state := credentialHelper(t, "gantrytest")
	cfgFile := filepath.Join(cfgDir, "config.json")
	if err := os.WriteFile(cfgFile, []byte(`{"credHelpers": {"`+reg.Host+`": "gantrytest"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	creds := fmt.Sprintf(`{"ServerURL":%q,"Username":%q,"Secret":%q}`, reg.Host, regUser, regPassword)
	if err := os.WriteFile(filepath.Join(state, "creds.json"), []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DOCKER_CONFIG": cfgDir}
	push := func(dest string) (int, string, string) {
		return gantryEnv(t, env, "", "append", "--base", "oci:"+nginxBase, "--layer", siteDir(t)+":/srv", "--user", "app:1001",
			"--push", dest, "--ca-cert", ca.File, "--json", "-v", "--cache-dir", t.TempDir())
	}
	calls := func() string {
		b, _ := os.ReadFile(filepath.Join(state, "calls"))
		return string(b)
	}

	code, stdout, stderr := push(reg.Host + "/web/helper:v1")
	if code != 0 {
		t.Fatalf("push with the helper's credentials: exit %d: %s\nhelper calls:\n%s", code, stderr, calls())
	}
	if rs := parseResults(t, stdout); len(rs) != 1 || !registrytest.TagExists(t, reg.Host+"/web/helper:v1", reg.OptionsAs(regUser)...) {
		t.Errorf("not pushed: %s", stdout)
	}
	if !strings.Contains(calls(), "get "+reg.Host) {
		t.Errorf("the helper was not asked for %s:\n%s", reg.Host, calls())
	}
	assertNoSecret(t, regPassword, map[string]string{"stdout": stdout, "stderr": stderr})

	// logout erases through the helper; a push then fails with exit 3
	if code, _, stderr := gantryEnv(t, env, "", "logout", reg.Host); code != 0 {
		t.Fatalf("logout: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(state, "creds.json")); !errors.Is(err, os.ErrNotExist) || !strings.Contains(calls(), "erase "+reg.Host) {
		t.Errorf("logout did not erase through the helper:\n%s", calls())
	}
	if code, _, stderr := push(reg.Host + "/web/helper:v2"); code != exitRegistry {
		t.Errorf("push after logout: exit %d: %s", code, stderr)
	}

	// login stores through the helper; config.json holds no secret
	code, stdout, stderr = gantryEnv(t, env, regPassword+"\n", "login", reg.Host, "-u", regUser, "--password-stdin", "--ca-cert", ca.File)
	if code != 0 {
		t.Fatalf("login: exit %d: %s\nhelper calls:\n%s", code, stderr, calls())
	}
	stored, _ := os.ReadFile(filepath.Join(state, "creds.json"))
	var sc struct{ ServerURL, Username, Secret string }
	if err := json.Unmarshal(stored, &sc); err != nil || sc.ServerURL != reg.Host || sc.Username != regUser || sc.Secret != regPassword {
		t.Errorf("the helper stored %q (%v)", stored, err)
	}
	assertNoSecret(t, regPassword, map[string]string{"login stdout": stdout, "login stderr": stderr}, cfgDir)
	if code, _, stderr := push(reg.Host + "/web/helper:v3"); code != 0 {
		t.Errorf("push after login: exit %d: %s", code, stderr)
	}
}
