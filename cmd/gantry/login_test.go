package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/assemble/registrytest"
)

// TestLoginPushLogout: gantry login checks the credentials against an
// htpasswd registry over TLS and saves them in $DOCKER_CONFIG/config.json
// (a wrong password saves nothing and exits 3); build and append then push
// with them, printing no secret even with -v; logout removes them.
func TestLoginPushLogout(t *testing.T) {
	ca := registrytest.NewCA(t)
	reg := htpasswdRegistry(t, ca)
	registrytest.PushLayout(t, nginxBase, reg.Host+"/library/nginx:alpine", reg.OptionsAs(regUser)...)
	registrytest.PushLayout(t, pythonBase, reg.Host+"/library/python:3.13-slim", reg.OptionsAs(regUser)...)
	cfgDir := isolateDockerConfig(t)
	cfgFile := filepath.Join(cfgDir, "config.json")
	env := map[string]string{"DOCKER_CONFIG": cfgDir}

	// wrong password: exit 3, one line, nothing written
	code, stdout, stderr := gantryEnv(t, env, "wrong-password\n", "login", reg.Host, "-u", regUser, "--password-stdin", "--ca-cert", ca.File)
	if code != exitRegistry {
		t.Errorf("wrong password: exit %d, want %d; stderr: %s", code, exitRegistry, stderr)
	}
	if want := "gantry: error: 401 unauthorized on " + reg.Host + " (check the user name and password or token)"; lastLine(stderr) != want {
		t.Errorf("wrong password: %q, want %q", lastLine(stderr), want)
	}
	if _, err := os.Stat(cfgFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed login wrote %s", cfgFile)
	}
	if stdout != "" {
		t.Errorf("login printed %q on stdout", stdout)
	}
	// no CA: says which host and what to pass
	code, _, stderr = gantryEnv(t, env, regPassword+"\n", "login", reg.Host, "-u", regUser, "--password-stdin")
	if code != exitRegistry || !strings.Contains(lastLine(stderr), "the TLS certificate of "+reg.Host+" is not trusted: pass --ca-cert FILE with its CA, or --insecure") {
		t.Errorf("login without --ca-cert: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(cfgFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed login wrote %s", cfgFile)
	}

	// the right password: saved where docker reads it
	code, stdout, stderr = gantryEnv(t, env, regPassword+"\n", "login", reg.Host, "-u", regUser, "--password-stdin", "--ca-cert", ca.File)
	if code != 0 {
		t.Fatalf("login: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "Login to "+reg.Host+" succeeded; credentials saved in "+cfgFile) {
		t.Errorf("login said %q", stderr)
	}
	var cf struct {
		Auths map[string]struct{ Auth string }
	}
	raw, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &cf); err != nil {
		t.Fatal(err)
	}
	if got, want := cf.Auths[reg.Host].Auth, base64.StdEncoding.EncodeToString([]byte(regUser+":"+regPassword)); got != want {
		t.Errorf("config.json auths[%s] = %q, want %q:\n%s", reg.Host, got, want, raw)
	}
	assertNoSecret(t, regPassword, map[string]string{"login stdout": stdout, "login stderr": stderr})

	// append with -v pulls the base and pushes with the saved credentials;
	// the HTTP log shows the Authorization header redacted
	work := t.TempDir()
	digestFile := filepath.Join(work, "digests.txt")
	code, stdout, stderr = gantryEnv(t, env, "", "append", "--base", reg.Host+"/library/nginx:alpine", "--layer", siteDir(t)+":/usr/share/nginx/html",
		"--user", "app:1001", "--push", reg.Host+"/web/site:v1", "-t", "v1.0", "--ca-cert", ca.File, "-v", "--json",
		"--digest-file", digestFile, "-o", "oci:"+filepath.Join(work, "out"), "--cache-dir", filepath.Join(work, "cache"))
	if code != 0 {
		t.Fatalf("append: exit %d: %s", code, stderr)
	}
	rs := parseResults(t, stdout)
	if len(rs) != 1 || len(rs[0].References) != 3 || rs[0].References[0] != reg.Host+"/web/site:v1" || rs[0].References[1] != reg.Host+"/web/site:v1.0" {
		t.Fatalf("append results: %s", stdout)
	}
	if !strings.Contains(stderr, `authorization="Basic [redacted]"`) {
		t.Errorf("-v logged no redacted Authorization header:\n%s", stderr)
	}
	checkDigestFile(t, digestFile, []string{reg.Host + "/web/site:v1", reg.Host + "/web/site:v1.0"}, reg.OptionsAs(regUser)...)
	assertNoSecret(t, regPassword, map[string]string{"append stdout": stdout, "append stderr": stderr}, work)

	// build: two images, two tags each, in the digest file
	work = t.TempDir()
	digestFile = filepath.Join(work, "digests.txt")
	code, stdout, stderr = gantryEnv(t, env, "", "build", "-f", example, "--push", reg.Host+"/taskflow", "-t", "v1", "-t", "latest",
		"--base", "taskflow-frontend="+reg.Host+"/library/nginx:alpine", "--base", "taskflow-backend="+reg.Host+"/library/python:3.13-slim",
		"--ca-cert", ca.File, "--json", "-v", "--digest-file", digestFile, "--cache-dir", filepath.Join(work, "cache"))
	if code != 0 {
		t.Fatalf("build: exit %d: %s", code, stderr)
	}
	if rs := parseResults(t, stdout); len(rs) != 2 || rs[0].Name != "taskflow-frontend" || rs[1].Name != "taskflow-backend" {
		t.Fatalf("build results: %s", stdout)
	}
	var refs []string
	for _, n := range []string{"taskflow-frontend", "taskflow-backend"} {
		refs = append(refs, reg.Host+"/taskflow/"+n+":v1", reg.Host+"/taskflow/"+n+":latest")
	}
	checkDigestFile(t, digestFile, refs, reg.OptionsAs(regUser)...)
	assertNoSecret(t, regPassword, map[string]string{"build stdout": stdout, "build stderr": stderr}, work)

	// logout: the credentials are gone, and a push fails with exit 3
	code, _, stderr = gantryEnv(t, env, "", "logout", reg.Host)
	if code != 0 {
		t.Fatalf("logout: exit %d: %s", code, stderr)
	}
	raw, _ = os.ReadFile(cfgFile)
	if bytes.Contains(raw, []byte(reg.Host)) {
		t.Errorf("config.json still names %s after logout:\n%s", reg.Host, raw)
	}
	before := reg.Writes()
	code, stdout, stderr = gantryEnv(t, env, "", "append", "--base", "oci:"+nginxBase, "--layer", siteDir(t)+":/srv", "--user", "app:1001",
		"--push", reg.Host+"/web/after-logout:v1", "--ca-cert", ca.File, "--cache-dir", t.TempDir())
	if code != exitRegistry {
		t.Errorf("push after logout: exit %d, want %d: %s", code, exitRegistry, stderr)
	}
	if l := lastLine(stderr); !strings.Contains(l, "401 unauthorized") || !strings.Contains(l, "gantry login "+reg.Host) {
		t.Errorf("push after logout: %q", l)
	}
	if stdout != "" || reg.Writes() != before || registrytest.TagExists(t, reg.Host+"/web/after-logout:v1", reg.OptionsAs(regUser)...) {
		t.Errorf("a push without credentials wrote something (stdout %q)", stdout)
	}
}

// TestLoginBearerToken: gantry login against a registry with Bearer token
// auth (the usual hosted registry) checks the password at the token
// server: a wrong one exits 3 and saves nothing, the right one is saved and
// pushes.
func TestLoginBearerToken(t *testing.T) {
	ca := registrytest.NewCA(t)
	// the token server (TLS, on localhost) checks regUser's password and
	// issues JWTs signed by a certificate of ca, granting pull and push
	ts := registrytest.NewTokenServer(t, ca, map[string]string{regUser: regPassword})
	reg := registrytest.New(t, registrytest.WithTLS(ca), registrytest.WithToken(ts))
	cfgDir := isolateDockerConfig(t)
	cfgFile := filepath.Join(cfgDir, "config.json")
	env := map[string]string{"DOCKER_CONFIG": cfgDir}

	code, _, stderr := gantryEnv(t, env, "wrong\n", "login", reg.Host, "-u", regUser, "--password-stdin", "--ca-cert", ca.File)
	if code != exitRegistry || !strings.Contains(lastLine(stderr), "401 unauthorized") || !strings.Contains(lastLine(stderr), reg.Host) {
		t.Errorf("wrong password: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(cfgFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed login wrote %s", cfgFile)
	}
	code, stdout, stderr := gantryEnv(t, env, regPassword+"\n", "login", reg.Host, "-u", regUser, "--password-stdin", "--ca-cert", ca.File)
	if code != 0 {
		t.Fatalf("login: exit %d: %s", code, stderr)
	}
	assertNoSecret(t, regPassword, map[string]string{"login stdout": stdout, "login stderr": stderr})
	work := t.TempDir()
	code, stdout, stderr = gantryEnv(t, env, "", "append", "--base", "oci:"+nginxBase, "--layer", siteDir(t)+":/srv", "--user", "app:1001",
		"--push", reg.Host+"/web/bearer:v1", "--ca-cert", ca.File, "--json", "-v", "--digest-file", filepath.Join(work, "digests"), "--cache-dir", filepath.Join(work, "cache"))
	if code != 0 {
		t.Fatalf("push: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, `authorization="Bearer [redacted]"`) {
		t.Errorf("-v logged no redacted Bearer header:\n%s", stderr)
	}
	assertNoSecret(t, regPassword, map[string]string{"stdout": stdout, "stderr": stderr}, work)
	checkDigestFile(t, filepath.Join(work, "digests"), []string{reg.Host + "/web/bearer:v1"}, reg.OptionsAs(regUser)...)
}
