package assemble_test

import (
	"context"
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/assemble/spec"
)

const wheelhouse = "../layers/python/testdata/wheels"

// pythonConfig writes a gantry.yaml with a python: layer on the stand-in
// python:3.13-slim base.
func pythonConfig(t *testing.T, lock string) string {
	t.Helper()
	base, err := filepath.Abs(pythonBase)
	if err != nil {
		t.Fatal(err)
	}
	wheels, err := filepath.Abs(wheelhouse)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "gantry.yaml")
	yaml := "images:\n  - name: api\n    base: oci:" + base + "\n    allowRoot: true\n    layers:\n" +
		"      - python: {requirements: " + lock + ", wheels: [" + wheels + "]}\n        owner: \"1001:1001\"\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Each platform gets the wheel of its own architecture, installed into the
// base's own site-packages with a console script for its interpreter; the
// architecture gate passes because the content is right for each platform.
func TestPythonLayerPerPlatform(t *testing.T) {
	lock, err := filepath.Abs(filepath.Join(wheelhouse, "requirements.lock"))
	if err != nil {
		t.Fatal(err)
	}
	specs, err := spec.Load(pythonConfig(t, lock), noEnv, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	e := newTestEngine(t, cache)
	built, err := e.Build(context.Background(), specs)
	if err != nil {
		t.Fatal(err)
	}
	im, err := built[0].Index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
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
		so := "usr/local/lib/python3.13/site-packages/tfnative/libtfnative.so"
		h, ok := files[so]
		if !ok || h.Uid != 1001 {
			t.Fatalf("%s: %s missing or not owned by 1001 (%v)", d.Platform.Architecture, so, h)
		}
		lib := fileContent(t, top, so)
		f, err := elf.NewFile(strings.NewReader(lib))
		if err != nil {
			t.Fatalf("%s: %s is not ELF: %v", d.Platform.Architecture, so, err)
		}
		if want := machines[d.Platform.Architecture]; f.Machine != want {
			t.Errorf("%s: %s is %v, want %v", d.Platform.Architecture, so, f.Machine, want)
		}
		launcher := fileContent(t, top, "usr/local/bin/taskflow-admin")
		if !strings.HasPrefix(launcher, "#!/usr/local/bin/python3\n") || !strings.Contains(launcher, "from taskflow_admin.cli import main") {
			t.Errorf("%s: console script:\n%s", d.Platform.Architecture, launcher)
		}
		if got := fileContent(t, top, "usr/local/lib/python3.13/site-packages/tfnative-1.0.0.dist-info/INSTALLER"); got != "gantry\n" {
			t.Errorf("INSTALLER: %q", got)
		}
		cf, _ := img.ConfigFile()
		if h := cf.History[len(cf.History)-1].CreatedBy; !strings.Contains(h, "PYTHON python-packages") {
			t.Errorf("history: %q", h)
		}
	}
	// the same lock and wheels give the same image; from a warm cache no
	// layer is built again and no file read
	warm := newTestEngine(t, cache)
	again, err := warm.Build(context.Background(), specs)
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Digest != built[0].Digest {
		t.Errorf("rebuild gave %s, first build %s", again[0].Digest, built[0].Digest)
	}
	if s := warm.LayerStats(); s.Misses != 0 || s.FilesRead != 0 || s.Hits != 2 {
		t.Errorf("warm rebuild: %+v, want 2 hits (one layer per platform), no miss, no file read", s)
	}
	cold, err := newTestEngine(t, "").Build(context.Background(), specs)
	if err != nil {
		t.Fatal(err)
	}
	if cold[0].Digest != built[0].Digest {
		t.Errorf("cold cache gave %s, first build %s", cold[0].Digest, built[0].Digest)
	}
}

// A lock whose hash matches no wheel fails the build naming the
// requirement and the platform.
func TestPythonLayerHashMismatch(t *testing.T) {
	lock := filepath.Join(t.TempDir(), "requirements.lock")
	if err := os.WriteFile(lock, []byte("taskflow-deps==1.0.0 --hash=sha256:"+strings.Repeat("0", 64)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	specs, err := spec.Load(pythonConfig(t, lock), noEnv, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = newTestEngine(t, "").Build(context.Background(), specs)
	if err == nil || !strings.Contains(err.Error(), "taskflow-deps") || !strings.Contains(err.Error(), "platform linux/") || strings.Contains(err.Error(), "\n") {
		t.Errorf("hash mismatch: %v", err)
	}
}

// A lock with an unhashed requirement is a config error at load.
func TestPythonLockUnhashed(t *testing.T) {
	lock := filepath.Join(t.TempDir(), "requirements.lock")
	if err := os.WriteFile(lock, []byte("taskflow-deps==1.0.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := spec.Load(pythonConfig(t, lock), noEnv, spec.Options{})
	var ce *spec.ConfigError
	if err == nil || !errors.As(err, &ce) || !strings.Contains(err.Error(), "layers[0].python.requirements") || !strings.Contains(err.Error(), "taskflow-deps") {
		t.Errorf("unhashed requirement: %v", err)
	}
}
