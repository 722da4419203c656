package assemble_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/assemble/registrytest"
	"github.com/gantry-dev/gantry/assemble/sink"
	"github.com/gantry-dev/gantry/assemble/spec"
)

// TestSplitLayerRebuildsOnePart: a layer with split: becomes parts, each
// a layer with its own history line; after one file changes only its part
// is read, compressed and uploaded, and the image is the one a cold build
// of the changed tree gives.
func TestSplitLayerRebuildsOnePart(t *testing.T) {
	reg := registrytest.New(t)
	registrytest.PushLayout(t, nginxBase, reg.Host+"/library/nginx:alpine")
	site, load := splitSite(t, reg.Host+"/library/nginx:alpine")
	dest := sink.Destinations{Ref: reg.Host + "/app/site:latest"}
	cache := t.TempDir()
	e := newTestEngine(t, cache)
	if _, err := e.Run(context.Background(), load(), e.RegistrySink(dest)); err != nil {
		t.Fatal(err)
	}
	if st := e.LayerStats(); st.FilesRead != 300 {
		t.Errorf("the cold build read %d files, want each of the 300 once", st.FilesRead)
	}
	history := createdBy(t, dest.Ref)
	parts := 0
	for _, h := range history {
		if strings.Contains(h, "(part ") {
			parts++
		}
	}
	if parts < 3 || !strings.HasSuffix(history[len(history)-1], fmt.Sprintf("(part %d of %d)", parts, parts)) {
		t.Fatalf("history %q: want the layer in 3 or more parts", history)
	}

	// an edit: a few bytes more in one file
	f, err := os.OpenFile(filepath.Join(site, "d3/f003.bin"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString("edited\n")
		f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	reg.Reset()
	e = newTestEngine(t, cache)
	res, err := e.Run(context.Background(), load(), e.RegistrySink(dest))
	if err != nil {
		t.Fatal(err)
	}
	// the part's files are read three times (hashed for the content key,
	// streamed for the diffID the registry is asked for, compressed), and
	// no other file is
	if st := e.LayerStats(); st.Misses != 1 || st.Hits != int64(parts-1) || st.FilesRead > 3*256 || st.Compressed > 4<<20+64<<10 {
		t.Errorf("one file changed: %+v, want 1 part of %d (≤ 4 MiB, ≤ 256 files) rebuilt", st, parts)
	}
	// one layer blob is uploaded (both platforms share it), no other
	uploaded := 0
	for _, l := range slices.Compact(slices.Sorted(slices.Values(pushedLayers(t, dest.Ref)))) {
		uploaded += reg.Count("PUT", "/blobs/uploads/", "digest="+url.QueryEscape(l))
	}
	if uploaded != 1 {
		t.Errorf("%d layer blobs uploaded after a one-file change, want 1", uploaded)
	}
	cold := newTestEngine(t, t.TempDir())
	res2, err := cold.Run(context.Background(), load(), cold.RegistrySink(sink.Destinations{Ref: reg.Host + "/app/cold:latest"}))
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Digest != res2[0].Digest {
		t.Errorf("the rebuild gave %s, a cold build %s", res[0].Digest, res2[0].Digest)
	}
}

// splitSite writes a gantry.yaml whose one layer, 300 files of 16 KiB of
// noise (~5 MB), is split at 1MiB, on base; it returns the files'
// directory and a loader of the spec.
func splitSite(t *testing.T, base string) (string, func() []spec.ImageSpec) {
	t.Helper()
	dir := t.TempDir()
	site := filepath.Join(dir, "site")
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		p := filepath.Join(site, fmt.Sprintf("d%d/f%03d.bin", i%7, i))
		body := make([]byte, 16<<10)
		for j := range body {
			body[j] = byte(r.Uint32())
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	yaml := "images:\n  - name: site\n    base: nginx\n    allowRoot: true\n    layers:\n      - from: site\n        to: /srv\n        split: 1MiB\n"
	if err := os.WriteFile(filepath.Join(dir, "gantry.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return site, func() []spec.ImageSpec {
		specs, err := spec.Load(filepath.Join(dir, "gantry.yaml"), noEnv, spec.Options{Bases: map[string]string{"site": base}})
		if err != nil {
			t.Fatal(err)
		}
		return specs
	}
}

// TestSplitOnRealRegistry: an image whose layer is split, pushed to a
// real registry, passes crane validate (every layer's digest and diffID),
// and crane export (the layers applied in order) gives every file.
func TestSplitOnRealRegistry(t *testing.T) {
	host := registrytest.RealRegistry(t)
	crane := registrytest.LookPath(t, "crane")
	_, load := splitSite(t, "oci:"+nginxBase+":alpine")
	e := newTestEngine(t, "")
	res, err := e.Run(context.Background(), load(), e.RegistrySink(sink.Destinations{Ref: host + "/split/site:v1"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res[0].Platforms {
		ref := host + "/split/site@" + p.Digest
		out, err := exec.Command(crane, "validate", "--insecure", "--remote", ref).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "PASS") {
			t.Errorf("crane validate %s: %v\n%s", p.Platform, err, out)
		}
		exp := exec.Command(crane, "export", "--insecure", ref, "-")
		tarOut, err := exp.Output()
		if err != nil {
			t.Fatalf("crane export %s: %v", p.Platform, err)
		}
		files := 0
		tr := tar.NewReader(bytes.NewReader(tarOut))
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if strings.HasPrefix(h.Name, "srv/") && h.Typeflag == tar.TypeReg {
				files++
			}
		}
		if files != 300 {
			t.Errorf("%s: crane export holds %d files under /srv, want 300", p.Platform, files)
		}
	}
}

// createdBy lists the history of the first image at ref.
func createdBy(t *testing.T, ref string) []string {
	t.Helper()
	cf, err := pushedImages(t, ref)[0].ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, h := range cf.History {
		out = append(out, h.CreatedBy)
	}
	return out
}
