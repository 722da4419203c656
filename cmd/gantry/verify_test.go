package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/assemble/registrytest"
)

// TestVerify: --verify passes on an unchanged tree and, after one file
// changes, fails (exit 1) naming the image, the platform, the layer and
// the file; it writes nothing.
func TestVerify(t *testing.T) {
	tree := filepath.Join(t.TempDir(), "taskflow")
	if err := os.CopyFS(tree, os.DirFS(filepath.Dir(example))); err != nil {
		t.Fatal(err)
	}
	nginx, _ := filepath.Abs(nginxBase)
	python, _ := filepath.Abs(pythonBase)
	reg := registrytest.New(t)
	common := []string{"-f", filepath.Join(tree, "gantry.yaml"), "--cache-dir", t.TempDir(),
		"--base", "taskflow-frontend=oci:" + nginx + ":alpine", "--base", "taskflow-backend=oci:" + python + ":3.13-slim"}
	if code, _, stderr := gantry(t, append([]string{"build", "--push", reg.Host + "/taskflow"}, common...)...); code != 0 {
		t.Fatalf("build: exit %d: %s", code, stderr)
	}
	reg.Reset()
	code, stdout, stderr := gantry(t, append([]string{"build", "--verify", reg.Host + "/taskflow"}, common...)...)
	if code != 0 {
		t.Fatalf("verify of the unchanged tree: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, reg.Host+"/taskflow/taskflow-backend:latest@sha256:") {
		t.Errorf("stdout %q names no verified image", stdout)
	}
	if n := reg.Writes(); n != 0 {
		t.Errorf("--verify wrote %d times to the registry", n)
	}
	if _, err := os.Stat("gantry-out"); err == nil {
		t.Error("--verify wrote ./gantry-out")
	}

	server := filepath.Join(tree, "backend", "src", "server.py")
	b, err := os.ReadFile(server)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(server, append(b, "# changed\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = gantry(t, append([]string{"build", "--verify", reg.Host + "/taskflow"}, common...)...)
	if code != 1 {
		t.Fatalf("verify after a change: exit %d, want 1: %s", code, stderr)
	}
	for _, want := range []string{"taskflow-backend:latest linux/amd64: layer ", "(gantry: COPY code → /app)", ": /app/server.py: content sha256:"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q: %s", want, stderr)
		}
	}
	if code, _, stderr := gantry(t, append([]string{"build", "--verify", reg.Host + "/taskflow", "--push", reg.Host + "/x"}, common...)...); code != 2 {
		t.Errorf("--verify with --push: exit %d: %s", code, stderr)
	}
}

// TestVerifyAppend: gantry append --verify REF passes for the image
// append pushed there, and fails naming the layer after its file changes.
func TestVerifyAppend(t *testing.T) {
	site := t.TempDir()
	if err := os.WriteFile(filepath.Join(site, "index.html"), []byte("<h1>v1</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := registrytest.New(t)
	ref := reg.Host + "/web/site:v1"
	common := []string{"append", "--base", "oci:" + nginxBase + ":alpine", "--layer", site + ":/usr/share/nginx/html",
		"--allow-root", "--cache-dir", t.TempDir()}
	if code, _, stderr := gantry(t, append(common, "--push", ref)...); code != 0 {
		t.Fatalf("append: exit %d: %s", code, stderr)
	}
	if code, _, stderr := gantry(t, append(common, "--verify", ref)...); code != 0 {
		t.Fatalf("append --verify: exit %d: %s", code, stderr)
	}
	if err := os.WriteFile(filepath.Join(site, "index.html"), []byte("<h1>v2</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := gantry(t, append(common, "--verify", ref)...)
	if code != 1 || !strings.Contains(stderr, "/usr/share/nginx/html/index.html: content") {
		t.Errorf("append --verify after a change: exit %d: %s", code, stderr)
	}
}
