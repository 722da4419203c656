package assemble_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/assemble"
	"github.com/gantry-dev/gantry/assemble/registrytest"
	"github.com/gantry-dev/gantry/assemble/sink"
	"github.com/gantry-dev/gantry/assemble/spec"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// A layer whose from: names ${TARGETARCH} gets each platform's own files;
// a layer with platforms: exists only there; a layer that names no
// platform is one blob shared by every platform.
func TestPerPlatformLayers(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("dist/amd64/server", "amd64 build")
	write("dist/arm64/server", "arm64 build")
	write("shared/index.html", "<h1>same everywhere</h1>")
	write("armonly/note.txt", "only on arm64")
	cfg := filepath.Join(dir, "gantry.yaml")
	abs, err := filepath.Abs(nginxBase)
	if err != nil {
		t.Fatal(err)
	}
	write("gantry.yaml", `images:
  - name: web
    base: oci:`+abs+`
    allowRoot: true
    layers:
      - {name: shared, from: shared, to: /srv}
      - {name: server, from: "dist/${TARGETARCH}/server", to: /usr/local/bin/server}
      - {name: armnote, from: armonly, to: /opt/note, platforms: [linux/arm64]}
`)
	specs, err := spec.Load(cfg, noEnv, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := newTestEngine(t, "")
	built, err := e.Build(context.Background(), specs)
	if err != nil {
		t.Fatal(err)
	}
	idx := built[0].Index
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	byArch := map[string]v1.Image{}
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		byArch[d.Platform.Architecture] = img
	}
	// the last n layers of arch's image: the new ones
	newLayers := func(arch string, n int) []v1.Layer {
		ls, err := byArch[arch].Layers()
		if err != nil {
			t.Fatal(err)
		}
		return ls[len(ls)-n:]
	}
	amd, arm := newLayers("amd64", 2), newLayers("arm64", 3)
	if d1, d2 := digestOf(t, amd[0]), digestOf(t, arm[0]); d1 != d2 {
		t.Errorf("the shared layer differs between platforms: %s vs %s", d1, d2)
	}
	if got := fileContent(t, amd[1], "usr/local/bin/server"); got != "amd64 build" {
		t.Errorf("amd64 server: %q", got)
	}
	if got := fileContent(t, arm[1], "usr/local/bin/server"); got != "arm64 build" {
		t.Errorf("arm64 server: %q", got)
	}
	if got := fileContent(t, arm[2], "opt/note/note.txt"); got != "only on arm64" {
		t.Errorf("arm64 note: %q", got)
	}
	for arch, n := range map[string]int{"amd64": 2, "arm64": 3} {
		cf, err := byArch[arch].ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		var ours int
		for _, h := range cf.History {
			if strings.HasPrefix(h.CreatedBy, "gantry:") {
				ours++
			}
		}
		if ours != n {
			t.Errorf("%s: %d gantry history entries, want %d", arch, ours, n)
		}
	}

	// a platform without its directory: one line naming the path and the platform
	if err := os.RemoveAll(filepath.Join(dir, "dist/arm64")); err != nil {
		t.Fatal(err)
	}
	_, err = e.Build(context.Background(), specs)
	want := "image web: platform linux/arm64/v8: layer server: " + filepath.Join(dir, "dist/arm64/server") + " does not exist for linux/arm64/v8"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want it to contain %q", err, want)
	}
}

func digestOf(t *testing.T, l v1.Layer) v1.Hash {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// elfHeader is the 64-byte header of a little-endian ELF64 shared object
// for machine (enough for the architecture gate, which reads no more).
func elfHeader(machine uint16) []byte {
	h := make([]byte, 64)
	copy(h, "\x7fELF")
	h[4], h[5], h[6] = 2, 1, 1 // ELFCLASS64, ELFDATA2LSB, EV_CURRENT
	h[16] = 3                  // ET_DYN
	h[18], h[19] = byte(machine), byte(machine>>8)
	return h
}

// The architecture gate: an x86-64 library in a layer shared by every
// platform fails the arm64 image, naming the file and both sides; per-arch
// sources pass; allowForeignArch relaxes it.
func TestArchitectureGate(t *testing.T) {
	dir := t.TempDir()
	for arch, machine := range map[string]uint16{"amd64": 62, "arm64": 183} {
		p := filepath.Join(dir, "vendor", arch, "libz.so.1")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, elfHeader(machine), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	abs, err := filepath.Abs(nginxBase)
	if err != nil {
		t.Fatal(err)
	}
	build := func(from string, relax bool) error {
		cfg := filepath.Join(dir, "gantry.yaml")
		yaml := "images:\n  - name: web\n    base: oci:" + abs + "\n    allowRoot: true\n    layers:\n      - {name: vendor, from: \"" + from + "\", to: /app/vendor}\n"
		if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		specs, err := spec.Load(cfg, noEnv, spec.Options{Relax: spec.Relax{AllowForeignArch: relax}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = newTestEngine(t, "").Build(context.Background(), specs)
		return err
	}
	err = build("vendor/amd64", false)
	want := "platform linux/arm64/v8: layer vendor: app/vendor/libz.so.1 is x86-64, but linux/arm64/v8 needs aarch64 (use ${TARGETARCH} in from:, or platforms:)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("x86-64 library on arm64: %v\nwant it to contain %q", err, want)
	}
	if err := build("vendor/${TARGETARCH}", false); err != nil {
		t.Errorf("per-arch libraries: %v", err)
	}
	if err := build("vendor/amd64", true); err != nil {
		t.Errorf("with allowForeignArch: %v", err)
	}
}

// A layer of "." does not take in the run's own cache or output, which
// lie inside it: three builds give the same layer (issue: it grew each time).
func TestBuildLeavesOutOwnOutput(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>site</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(nginxBase)
	if err != nil {
		t.Fatal(err)
	}
	out, cache := filepath.Join(dir, "gantry-out"), filepath.Join(dir, ".cache")
	var digests []string
	for range 3 {
		is := smallSpec(t, "oci:"+abs)
		is.Layers[0].Sources[0].From = dir
		e, err := assemble.NewEngine(assemble.Options{CacheDir: cache, Outputs: []string{out}})
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.Run(context.Background(), []spec.ImageSpec{is}, sink.Layout(out, sink.Destinations{}))
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, res[0].Digest)
	}
	if digests[0] != digests[1] || digests[1] != digests[2] {
		t.Errorf("the image changed from build to build: %q", digests)
	}
	idx := registrytest.LayoutIndex(t, out)
	im, _ := idx.IndexManifest()
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := img.Layers()
	for name := range layerFiles(t, ls[len(ls)-1]) {
		if strings.Contains(name, "gantry-out") || strings.Contains(name, ".cache") {
			t.Errorf("the layer took in %s", name)
		}
	}
}
