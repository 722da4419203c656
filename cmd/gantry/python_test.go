package main

import (
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

const (
	taskflowLock   = "../../testdata/taskflow/backend/requirements.lock"
	taskflowWheels = "../../testdata/taskflow/backend/wheels"
)

// gantry append installs a hash-pinned lock's packages per platform, as
// the first layer, through the same validator as gantry.yaml.
func TestAppendPythonPackages(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := gantry(t, "append", "--base", "oci:"+mustAbs(t, pythonBase), "--allow-root", "--json",
		"--python-requirements", taskflowLock, "--python-wheels", taskflowWheels, "--owner", "1001:1001",
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
		want string
	}{
		{"missing lock", []string{"--python-requirements", "nope.lock", "--python-wheels", taskflowWheels}, "--python-requirements: "},
		{"wheels without a lock", []string{"--python-wheels", taskflowWheels}, "--python-wheels goes with --python-requirements"},
		{"no wheel source", []string{"--python-requirements", taskflowLock}, "--python-wheels: missing; give wheel directories or index URLs"},
		{"not a directory", []string{"--python-requirements", taskflowLock, "--python-wheels", "nowhere"}, "--python-wheels: nowhere is not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"append", "--base", "oci:" + mustAbs(t, pythonBase), "--allow-root", "-o", "oci:" + filepath.Join(t.TempDir(), "o")}, tc.args...)
			code, _, stderr := gantry(t, args...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, want %d; stderr %q lacks %q", code, exitUsage, stderr, tc.want)
			}
		})
	}
}

// An index that does not answer is a build failure (exit 1) naming the
// index, not the base's registry failing (exit 3).
func TestUnreachableIndexIsNotTheRegistry(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	index := "http://" + l.Addr().String() + "/simple/"
	l.Close() // nothing listens there now
	code, _, stderr := gantry(t, "append", "--base", "oci:"+mustAbs(t, pythonBase), "--allow-root",
		"--python-requirements", taskflowLock, "--python-wheels", index, "-o", "oci:"+filepath.Join(t.TempDir(), "o"), "--cache-dir", t.TempDir())
	if code != exitBuild || !strings.Contains(lastLine(stderr), "on index "+index) || !strings.Contains(lastLine(stderr), "is the index reachable?") || strings.Contains(stderr, "registry") {
		t.Errorf("exit %d, want %d; last line %q", code, exitBuild, lastLine(stderr))
	}
}
