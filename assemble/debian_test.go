package assemble_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/assemble/attest"
	"github.com/gantry-dev/gantry/assemble/spec"
	"github.com/gantry-dev/gantry/layers/debian/debiantest"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// debianConfig writes a gantry.yaml with a debian: layer on the stand-in
// python:3.13-slim base, installing from the loopback archive.
func debianConfig(t *testing.T, ta *debiantest.Archive, pkgs string) string {
	t.Helper()
	base, err := filepath.Abs(pythonBase)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "archive.gpg"), ta.Key, 0o644); err != nil {
		t.Fatal(err)
	}
	yaml := "images:\n  - name: api\n    base: oci:" + base + "\n    allowRoot: true\n    layers:\n" +
		"      - name: system\n        debian:\n          packages: [" + pkgs + "]\n" +
		"          sources: [\"" + ta.Source() + "\"]\n          keyring: archive.gpg\n"
	cfg := filepath.Join(dir, "gantry.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Each platform of the base gets jq of its own architecture, /bin stays
// the base's symlink, and the base's dpkg database gains jq; the lock
// pins every package, and a build from the lock installs the same layer.
func TestDebianLayerPerPlatform(t *testing.T) {
	ta := debiantest.New(t)
	cfg := debianConfig(t, ta, "jq")
	specs, err := spec.Load(cfg, noEnv, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	ctx := context.Background()
	built, err := newTestEngine(t, cache).Build(ctx, specs)
	if err != nil {
		t.Fatal(err)
	}
	im, err := built[0].Index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	tops := map[string]string{}
	for _, d := range im.Manifests {
		img, err := built[0].Index.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		ls, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		top := ls[len(ls)-1]
		files := layerFiles(t, top)
		for _, want := range []string{"usr/bin/jq", "var/lib/dpkg/status", "var/lib/dpkg/info/jq.list"} {
			if _, ok := files[want]; !ok {
				t.Errorf("%s: no %s in the layer", d.Platform.Architecture, want)
			}
		}
		for name := range files {
			if name == "bin" || strings.HasPrefix(name, "bin/") {
				t.Errorf("%s: %s replaces the base's /bin symlink", d.Platform.Architecture, name)
			}
		}
		status := fileContent(t, top, "var/lib/dpkg/status")
		if !strings.Contains(status, "Package: libc6\n") || !strings.Contains(status, "Package: jq\nStatus: install ok installed\n") {
			t.Errorf("%s: status lacks the base's libc6 or the new jq", d.Platform.Architecture)
		}
		dg, _ := top.Digest()
		tops[d.Platform.Architecture] = dg.String()
	}
	if len(tops) != 2 || tops["amd64"] == tops["arm64"] {
		t.Fatalf("want a different layer per platform, got %v", tops)
	}
	// the SBOM of each platform lists the packages the layer installed,
	// for that platform
	sboms := 0
	jqArch := regexp.MustCompile(`pkg:deb/debian/jq@[^"?]+\?arch=(\w+)`)
	arches := map[string]bool{}
	for _, a := range built[0].Referrers {
		if a.ArtifactType != attest.SPDXMediaType {
			continue
		}
		sboms++
		ls, err := a.Image.Layers()
		if err != nil || len(ls) != 1 {
			t.Fatalf("SBOM artifact: %v", err)
		}
		m := jqArch.FindStringSubmatch(readBlob(t, ls[0]))
		if m == nil {
			t.Errorf("SBOM %s lacks the installed jq", a.Digest)
			continue
		}
		arches[m[1]] = true
	}
	if !arches["amd64"] || !arches["arm64"] {
		t.Errorf("the SBOMs list jq for %v, want amd64 and arm64", arches)
	}
	if sboms != 2 {
		t.Errorf("%d SBOMs, want one per platform", sboms)
	}

	// a rebuild with the same cache: the same image
	rebuilt, err := newTestEngine(t, cache).Build(ctx, specs)
	if err != nil {
		t.Fatal(err)
	}
	if d1, d2 := indexDigest(t, built[0].Index), indexDigest(t, rebuilt[0].Index); d1 != d2 {
		t.Errorf("a rebuild made %s, the first build %s", d2, d1)
	}

	// gantry lock, then a locked build from a fresh cache: the same layers
	lock, err := newTestEngine(t, cache).Lock(ctx, specs)
	if err != nil {
		t.Fatal(err)
	}
	dl := lock.Images["api"].Debian["system"]
	if len(dl) != 2 || len(dl["linux/arm64/v8"].Packages) == 0 || len(dl["linux/arm64/v8"].Releases) != 1 {
		t.Fatalf("lock: %+v", dl)
	}
	for _, p := range dl["linux/arm64/v8"].Packages {
		if p.Name == "libc6" {
			t.Error("the lock pins libc6, which the base has")
		}
	}
	lockFile := filepath.Join(filepath.Dir(cfg), spec.LockFileName)
	if err := lock.Write(lockFile); err != nil {
		t.Fatal(err)
	}
	read, err := spec.ReadLock(lockFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := spec.ApplyLock(specs, read, lockFile); err != nil {
		t.Fatal(err)
	}
	again, err := newTestEngine(t, t.TempDir()).Build(ctx, specs)
	if err != nil {
		t.Fatal(err)
	}
	if d1, d2 := indexDigest(t, built[0].Index), indexDigest(t, again[0].Index); d1 != d2 {
		t.Errorf("the locked build from a fresh cache made %s, the first %s", d2, d1)
	}
}

func indexDigest(t *testing.T, idx interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func readBlob(t *testing.T, l v1.Layer) string {
	t.Helper()
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
