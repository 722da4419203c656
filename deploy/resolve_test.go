package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every byte but the replaced values stays: comments, key order, quotes,
// flow style, documents, non-ASCII text before a reference on its line.
func TestResolveKeepsBytes(t *testing.T) {
	src := `# top comment
apiVersion: v1   # trailing
kind: Pod
---
spec:
  zeta: 1
  alpha: "é" # ü
  image: gantry://web # keep
  list: [gantry://web, 'gantry://api', x]
  ü: gantry://api
  containers:
  - {name: a, image: "gantry://web"}
  - image: &img gantry://api
  - image: *img
  gantry://web: a key, not a reference
  script: |
    image: gantry://web
`
	m, err := ParseManifest("m.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := Names([]*Manifest{m}); strings.Join(got, ",") != "web,api" {
		t.Errorf("names %q", got)
	}
	out, reps, err := m.Resolve(map[string]string{"web": "r.example/web@sha256:aa", "api": "r.example/api@sha256:bb"})
	if err != nil {
		t.Fatal(err)
	}
	want := `# top comment
apiVersion: v1   # trailing
kind: Pod
---
spec:
  zeta: 1
  alpha: "é" # ü
  image: r.example/web@sha256:aa # keep
  list: [r.example/web@sha256:aa, 'r.example/api@sha256:bb', x]
  ü: r.example/api@sha256:bb
  containers:
  - {name: a, image: "r.example/web@sha256:aa"}
  - image: &img r.example/api@sha256:bb
  - image: *img
  gantry://web: a key, not a reference
  script: |
    image: gantry://web
`
	if string(out) != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
	lines := []int{8, 9, 9, 10, 12, 13}
	if len(reps) != len(lines) {
		t.Fatalf("%d replacements: %+v", len(reps), reps)
	}
	for i, r := range reps {
		if r.Line != lines[i] || r.File != "m.yaml" {
			t.Errorf("replacement %d: %+v, want line %d", i, r, lines[i])
		}
	}
}

func TestResolveErrors(t *testing.T) {
	m, err := ParseManifest("a.yaml", []byte("x: 1\n---\ny:\n  image: gantry://gone\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = CheckNames([]*Manifest{m}, []string{"web", "api"}, "gantry.yaml")
	if err == nil || err.Error() != `a.yaml:4: gantry://gone: gantry.yaml has no image "gone" (it has web, api)` {
		t.Errorf("unknown name: %v", err)
	}
	if _, _, err := m.Resolve(map[string]string{}); err == nil || !strings.HasPrefix(err.Error(), "a.yaml:4: ") {
		t.Errorf("not built: %v", err)
	}
	for src, want := range map[string]string{
		"a: [1, 2\nb: 3\n":                 "bad.yaml:",
		"image: gantry://\n":               "bad.yaml:1: \"gantry://\" names no image",
		"image: \"gantry:\\x2f/web\"\n":    "bad.yaml:1: write gantry://web on one line",
		"image: gantry://web\n  more: x\n": "bad.yaml:",
	} {
		_, err := ParseManifest("bad.yaml", []byte(src))
		if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v, want %s...", src, err, want)
		}
	}
}

func TestReadManifestsAndWriteFile(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"b.yaml": "image: gantry://b\n", "a/c.yml": "image: gantry://c\n", "notes.txt": "image: gantry://x\n"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := ReadManifests([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || strings.Join(Names(ms), ",") != "c,b" {
		t.Errorf("read %d manifests, names %q", len(ms), Names(ms))
	}
	if _, err := ReadManifests([]string{filepath.Join(dir, "missing")}); err == nil {
		t.Error("a missing path passed")
	}
	if _, err := ReadManifests([]string{t.TempDir()}); err == nil || !strings.Contains(err.Error(), "no *.yaml") {
		t.Errorf("an empty directory: %v", err)
	}
	file := filepath.Join(dir, "b.yaml")
	if err := WriteFile(file, []byte("image: x\n")); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(file)
	b, _ := os.ReadFile(file)
	if string(b) != "image: x\n" || fi.Mode().Perm() != 0o600 {
		t.Errorf("wrote %q with mode %v", b, fi.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("temporary files left: %v", entries)
	}
}
