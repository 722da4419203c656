package sink_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/assemble"
	"github.com/gantry-dev/gantry/assemble/sink"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

const refName = "org.opencontainers.image.ref.name"

// checkLayout checks that dir is a valid OCI layout whose every entry is
// complete, that its entries are named exactly want, and that no temporary
// file is left in it or beside it.
func checkLayout(t *testing.T, dir string, want ...string) {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatalf("index.json: %v", err)
	}
	var names []string
	for _, d := range im.Manifests {
		if d.ArtifactType != "" {
			continue // an SBOM or provenance, unnamed (TestLayoutReferrers)
		}
		names = append(names, d.Annotations[refName])
		if d.MediaType.IsIndex() {
			child, err := idx.ImageIndex(d.Digest)
			if err == nil {
				err = validate.Index(child)
			}
			if err != nil {
				t.Errorf("%s: %v", d.Annotations[refName], err)
			}
		} else {
			img, err := idx.Image(d.Digest)
			if err == nil {
				err = validate.Image(img)
			}
			if err != nil {
				t.Errorf("%s: %v", d.Annotations[refName], err)
			}
		}
	}
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("index.json names %q, want %q", names, want)
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".tmp") {
			t.Errorf("%s left behind", p)
		}
		return nil
	})
	noTemp(t, filepath.Dir(dir))
}

func layoutSink(dir string) assemble.Sink { return sink.Layout(dir, sink.Destinations{}) }

// Runs writing into one layout at once each keep their entries: index.json
// is read, changed and replaced under a lock, through temporary files of
// their own; runs that each made the layout anew add to the one that was
// renamed into place first.
func TestLayoutConcurrentWriters(t *testing.T) {
	for _, start := range []string{"layout", "none", "empty directory"} {
		t.Run(start, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			want := []string{}
			switch start {
			case "layout":
				if _, err := run(context.Background(), layoutSink(dir), randomBuilt(t, "seed")); err != nil {
					t.Fatal(err)
				}
				want = append(want, "seed:latest")
			case "empty directory":
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			nginx := nginxIndex(t)
			var images []*assemble.Built
			for i := range 8 {
				name := fmt.Sprintf("img%d", i)
				if i%2 == 0 {
					images = append(images, nginx(name)) // blobs shared between runs
				} else {
					images = append(images, randomBuilt(t, name))
				}
				want = append(want, name+":latest")
			}
			errs := make([]error, len(images))
			var wg sync.WaitGroup
			for i, b := range images {
				wg.Go(func() { _, errs[i] = run(context.Background(), layoutSink(dir), b) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("run %d: %v", i, err)
				}
			}
			checkLayout(t, dir, want...)
		})
	}
}

// tempSibling makes a temporary sibling of a layout as a run leaves it, a
// lock file in it when lock, last changed age ago.
func tempSibling(t *testing.T, parent, name string, lock bool, age time.Duration) string {
	t.Helper()
	p := filepath.Join(parent, name)
	if err := os.MkdirAll(filepath.Join(p, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "blobs", "sha256", "partial"), []byte("half a layer"), 0o644); err != nil {
		t.Fatal(err)
	}
	if lock {
		if err := os.WriteFile(filepath.Join(p, ".gantry.lock"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	then := time.Now().Add(-age)
	if err := os.Chtimes(p, then, then); err != nil {
		t.Fatal(err)
	}
	return p
}

// Prepare removes the temporary siblings killed runs left of a new layout:
// one whose lock nobody holds; one without a lock (a gantry from before
// the lock) once it is over an hour old. It keeps a live writer's, a young
// one without a lock, and other layouts'.
func TestLayoutRemovesStaleSiblings(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "out")
	killed := tempSibling(t, parent, ".out.tmp-111", true, 0)
	live := tempSibling(t, parent, ".out.tmp-222", true, 0)
	oldNoLock := tempSibling(t, parent, ".out.tmp-333", false, 2*time.Hour)
	youngNoLock := tempSibling(t, parent, ".out.tmp-444", false, time.Minute)
	other := tempSibling(t, parent, ".other.tmp-555", true, 2*time.Hour)
	held, err := os.Open(filepath.Join(live, ".gantry.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := syscall.Flock(int(held.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	// a real writer, still between Prepare and Commit
	a, ab := layoutSink(dir), randomBuilt(t, "a")
	if err := a.Prepare(context.Background(), []*assemble.Built{ab}); err != nil {
		t.Fatal(err)
	}
	if _, err := run(context.Background(), layoutSink(dir), randomBuilt(t, "b")); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{killed: false, live: true, oldNoLock: false, youngNoLock: true, other: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
	if _, err := a.Write(context.Background(), ab); err != nil {
		t.Fatal(err)
	}
	if err := a.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{killed, live, oldNoLock, youngNoLock, other} {
		os.RemoveAll(p)
	}
	checkLayout(t, dir, "a:latest", "b:latest")
}

// blobs lists the blob files of the layout dir.
func blobs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// An existing layout that gantry cannot add to is refused in Prepare,
// before any blob is written, with one line naming it and what to do.
func TestLayoutCheckedInPrepare(t *testing.T) {
	for _, tc := range []struct {
		name, file, content, want string
	}{
		{"corrupt index.json", "index.json", `{"schemaVersion": 2, "manifests": [`, "index.json"},
		{"index.json not an index", "index.json", `[1, 2]`, "index.json"},
		{"corrupt oci-layout", "oci-layout", `imageLayoutVersion 1.0.0`, "oci-layout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			if _, err := run(context.Background(), layoutSink(dir), randomBuilt(t, "old")); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, tc.file), []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			before := blobs(t, dir)
			err := layoutSink(dir).Prepare(context.Background(), []*assemble.Built{randomBuilt(t, "new")})
			if err == nil {
				t.Fatal("Prepare took a broken layout")
			}
			if msg := err.Error(); !strings.Contains(msg, dir) || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming %s and %s", msg, dir, tc.want)
			}
			if after := blobs(t, dir); !slices.Equal(before, after) {
				t.Errorf("blobs changed: %q → %q", before, after)
			}
		})
	}
}

// A blob already in the layout with the right size but the wrong bytes is
// not reused: it is checked and written again.
func TestLayoutRewritesCorruptBlob(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	b := randomBuilt(t, "web")
	if _, err := run(context.Background(), layoutSink(dir), b); err != nil {
		t.Fatal(err)
	}
	ls, err := b.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	d, err := ls[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "blobs", "sha256", d.Hex)
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		raw[i] ^= 0xff
	}
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(context.Background(), sink.Layout(dir, sink.Destinations{Tags: []string{"v2"}}), b); err != nil {
		t.Fatal(err)
	}
	checkLayout(t, dir, "web:latest", "web:v2")
}
