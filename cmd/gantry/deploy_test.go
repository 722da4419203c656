package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/assemble/registrytest"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// resolveManifest is a manifest in the shapes people write: comments,
// two documents, a quoted and a plain reference, an image that is not
// gantry's.
const resolveManifest = `# TaskFlow, by hand
apiVersion: apps/v1
kind: Deployment   # keep me
metadata: {name: web}
spec:
  template:
    spec:
      containers:
        - name: web
          image: gantry://taskflow-frontend   # resolved
        - name: sidecar
          image: "docker.io/library/busybox:1.36"
---
# compose too
services:
  web:
    image: 'gantry://taskflow-frontend'
`

func frontendBase() string { return "taskflow-frontend=oci:" + nginxBase + ":alpine" }

// indexDigest is the digest the registry serves for ref.
func indexDigest(t *testing.T, ref string) string {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(r)
	if err != nil {
		t.Fatal(err)
	}
	return d.Digest.String()
}

// gantry resolve builds and pushes the image the manifest names, and prints
// the manifest with the digest the registry has for its tag, every other
// byte as it was.
func TestResolveReplacesWithPushedDigest(t *testing.T) {
	reg := registrytest.New(t)
	file := filepath.Join(t.TempDir(), "deploy.yaml")
	if err := os.WriteFile(file, []byte(resolveManifest), 0o640); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := gantry(t, "resolve", "-f", example, "--base", frontendBase(), "--push", reg.Host+"/taskflow",
		"--manifests", file, "--cache-dir", t.TempDir())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	repo := reg.Host + "/taskflow/taskflow-frontend"
	want := repo + "@" + indexDigest(t, repo+":latest")
	wantOut := strings.ReplaceAll(resolveManifest, "gantry://taskflow-frontend", want)
	if stdout != wantOut {
		t.Errorf("resolved:\n%s\nwant:\n%s", stdout, wantOut)
	}
	// only what the manifest names is built
	if registrytest.TagExists(t, reg.Host+"/taskflow/taskflow-backend:latest") {
		t.Error("taskflow-backend was pushed though no manifest names it")
	}
	if b, _ := os.ReadFile(file); string(b) != resolveManifest {
		t.Error("the manifest was changed without --write")
	}

	// --write replaces the file, keeping its mode; --json lists the replacements
	code, stdout, stderr = gantry(t, "resolve", "-f", example, "--base", frontendBase(), "--push", reg.Host+"/taskflow",
		"--manifests", filepath.Dir(file), "--write", "--json", "--cache-dir", t.TempDir())
	if code != 0 {
		t.Fatalf("--write: exit %d: %s", code, stderr)
	}
	b, _ := os.ReadFile(file)
	if string(b) != wantOut {
		t.Errorf("--write left:\n%s", b)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o640 {
		t.Errorf("--write changed the mode to %v", fi.Mode())
	}
	var lines []struct{ File, Name, Image string }
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var r struct{ File, Name, Image string }
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("--json line %q: %v", l, err)
		}
		lines = append(lines, r)
	}
	if len(lines) != 2 || lines[0].Image != want || lines[1].Name != "taskflow-frontend" || lines[0].File != file {
		t.Errorf("--json: %s", stdout)
	}
}

// A name gantry.yaml does not have is a one-line usage error naming the
// file and line, before anything is built or pushed.
func TestResolveUnknownName(t *testing.T) {
	reg := registrytest.New(t)
	file := filepath.Join(t.TempDir(), "app.yaml")
	doc := "a: 1\n---\n# x\nspec:\n  image: gantry://taskflow-frontend\n  other:\n    image: gantry://taskflow-nope\n"
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := gantry(t, "resolve", "-f", example, "--base", frontendBase(), "--push", reg.Host+"/taskflow",
		"--manifests", file, "--write", "--cache-dir", t.TempDir())
	want := file + ":7: gantry://taskflow-nope: " + example + ` has no image "taskflow-nope" (it has taskflow-frontend, taskflow-backend)`
	if code != exitUsage || !strings.Contains(stderr, want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || stdout != "" {
		t.Errorf("exit %d, stderr %q, want one line with %q", code, stderr, want)
	}
	if got := registrytest.Catalog(t, reg.Host); len(got) != 0 {
		t.Errorf("pushed %q", got)
	}
	if b, _ := os.ReadFile(file); string(b) != doc {
		t.Error("the manifest was changed")
	}
	for _, args := range [][]string{
		{"resolve", "-f", example, "--manifests", file},                                  // no --push
		{"resolve", "-f", example, "--push", reg.Host + "/x"},                            // no manifests
		{"kube", "-f", example, "--pod", "taskflow"},                                     // no images
		{"kube", "-f", example, "--pod", "p=taskflow-frontend,nope"},                     // unknown image
		{"kube", "-f", example, "--format", "helm"},                                      // unknown format
		{"kube", "-f", example, "--repo", "r.example", "--push", reg.Host + "/taskflow"}, // both
	} {
		if code, _, stderr := gantry(t, args...); code != exitUsage || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%q: exit %d, %s", args, code, stderr)
		}
	}
}

// gantry kube --push builds, pushes, and names the images by the digests
// the registry has.
func TestKubePushNamesByDigest(t *testing.T) {
	reg := registrytest.New(t)
	code, stdout, stderr := gantry(t, "kube", "-f", example, "--image", "taskflow-frontend", "--base", frontendBase(),
		"--push", reg.Host+"/taskflow", "--tag", "v1", "--cache-dir", t.TempDir())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	repo := reg.Host + "/taskflow/taskflow-frontend"
	if want := "image: " + repo + "@" + indexDigest(t, repo+":v1"); !strings.Contains(stdout, want) {
		t.Errorf("no %q in\n%s", want, stdout)
	}
	// by tag without --push
	_, stdout, _ = gantry(t, "kube", "-f", example, "--image", "taskflow-frontend", "--repo", "ghcr.io/acme", "--tag", "v2")
	if !strings.Contains(stdout, "image: ghcr.io/acme/taskflow-frontend:v2\n") {
		t.Errorf("by tag:\n%s", stdout)
	}
}

// The README's command prints what package deploy's golden files hold.
func TestKubeCommandMatchesGolden(t *testing.T) {
	for golden, extra := range map[string][]string{
		"taskflow-pod.yaml":     nil,
		"taskflow-compose.yaml": {"--format", "compose"},
	} {
		args := append([]string{"kube", "-f", example, "--pod", "taskflow=taskflow-frontend,taskflow-backend", "--repo", "registry.example/acme"}, extra...)
		code, stdout, stderr := gantry(t, args...)
		if code != 0 {
			t.Fatalf("%q: exit %d: %s", args, code, stderr)
		}
		want, err := os.ReadFile(filepath.Join("../../deploy/testdata", golden))
		if err != nil {
			t.Fatal(err)
		}
		if stdout != string(want) {
			t.Errorf("%q differs from deploy/testdata/%s:\n%s", args, golden, stdout)
		}
	}
}

func TestJoinDocuments(t *testing.T) {
	got := string(joinDocuments([][]byte{[]byte("a: 1"), []byte("b: 2\n"), []byte("---\nc: 3\n")}))
	if want := "a: 1\n---\nb: 2\n---\nc: 3\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
