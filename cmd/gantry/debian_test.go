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
