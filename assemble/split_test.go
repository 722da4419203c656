package assemble_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
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
	dir := t.TempDir()
	site := filepath.Join(dir, "site")
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 300 { // 300 × 16 KiB of noise: ~5 MB
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
	load := func() []spec.ImageSpec {
		specs, err := spec.Load(filepath.Join(dir, "gantry.yaml"), noEnv, spec.Options{Bases: map[string]string{"site": reg.Host + "/library/nginx:alpine"}})
		if err != nil {
			t.Fatal(err)
		}
		return specs
	}
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
