package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/layers/debian/debiantest"
)

// gantry append --apt-install installs Debian packages per platform, as
// the first layer, from --apt-source checked against --apt-keyring.
func TestAppendDebianPackages(t *testing.T) {
	ta := debiantest.New(t)
	key := filepath.Join(t.TempDir(), "archive.gpg")
	if err := os.WriteFile(key, ta.Key, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := gantry(t, "append", "--base", "oci:"+mustAbs(t, pythonBase), "--allow-root", "--json",
		"--apt-install", "jq", "--apt-source", ta.Source(), "--apt-keyring", key,
		"-o", "oci:"+out, "--cache-dir", t.TempDir())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r struct{ Platforms []struct{ Platform string } }
	if err := json.Unmarshal([]byte(stdout), &r); err != nil || len(r.Platforms) != 2 {
		t.Fatalf("result %q: %v", stdout, err)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad name", []string{"--apt-install", "Bad_Name"}, exitUsage, "--apt-install: \"Bad_Name\" is not a Debian package name"},
		{"source alone", []string{"--apt-source", ta.Source()}, exitUsage, "--apt-source and --apt-keyring go with --apt-install"},
		{"bad source", []string{"--apt-install", "jq", "--apt-source", "deb ftp://x y z"}, exitUsage, "--apt-source: "},
		{"no keyring file", []string{"--apt-install", "jq", "--apt-keyring", "nosuch.gpg"}, exitUsage, "--apt-keyring: "},
		{"unknown package", []string{"--apt-install", "nosuch", "--apt-source", ta.Source(), "--apt-keyring", key}, exitBuild, "linux/amd64: nosuch: no such package for amd64"},
		// an archive is no registry: exit 1, not 3, and no registry advice
		{"unreachable archive", []string{"--apt-install", "jq", "--apt-source", "deb http://127.0.0.1:1/debian bookworm main", "--apt-keyring", key}, exitBuild, "InRelease: Get \"http://127.0.0.1:1/debian/dists/bookworm/InRelease\": dial tcp 127.0.0.1:1: connect: connection refused (is the archive reachable?)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"append", "--base", "oci:" + mustAbs(t, pythonBase), "--allow-root", "-o", "oci:" + filepath.Join(t.TempDir(), "o"), "--cache-dir", t.TempDir()}, tc.args...)
			code, _, stderr := gantry(t, args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, want %d; stderr %q lacks %q", code, tc.code, stderr, tc.want)
			}
		})
	}
}

// gantry lock pins a debian: layer's packages per platform; gantry build
// --locked installs them; a lock made for other packages is stale.
func TestLockDebianPackages(t *testing.T) {
	ta := debiantest.New(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "archive.gpg"), ta.Key, 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(pkgs string) string {
		cfg := filepath.Join(dir, "gantry.yaml")
		yaml := "images:\n  - name: api\n    base: oci:" + mustAbs(t, pythonBase) + "\n    allowRoot: true\n    layers:\n" +
			"      - name: system\n        debian:\n          packages: [" + pkgs + "]\n" +
			"          sources: [\"" + ta.Source() + "\"]\n          keyring: archive.gpg\n"
		if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cfg := write("jq")
	cache := t.TempDir()
	if code, _, stderr := gantry(t, "lock", "-f", cfg, "--cache-dir", cache); code != 0 {
		t.Fatalf("lock: exit %d: %s", code, stderr)
	}
	var lock struct {
		Images map[string]struct {
			Debian map[string]map[string]struct {
				Packages []struct{ Name, Version, Arch, SHA256 string }
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "gantry.lock"))
	if err != nil || json.Unmarshal(b, &lock) != nil {
		t.Fatalf("lock file: %v\n%s", err, b)
	}
	pins := lock.Images["api"].Debian["system"]["linux/arm64/v8"].Packages
	if len(pins) != 3 || pins[0].Name != "jq" || pins[0].Arch != "arm64" || len(pins[0].SHA256) != 64 {
		t.Fatalf("arm64 pins: %+v", pins)
	}
	out := "oci:" + filepath.Join(t.TempDir(), "out")
	if code, _, stderr := gantry(t, "build", "-f", cfg, "--locked", "-o", out, "--cache-dir", t.TempDir()); code != 0 {
		t.Fatalf("build --locked: exit %d: %s", code, stderr)
	}
	write("jq, curl")
	code, _, stderr := gantry(t, "build", "-f", cfg, "--locked", "-o", out, "--cache-dir", cache)
	if code == 0 || !strings.Contains(stderr, "is stale for layer system of image api") {
		t.Errorf("a lock for other packages: exit %d: %s", code, stderr)
	}
}
