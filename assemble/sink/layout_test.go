package sink_test

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

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
	for _, existing := range []bool{true, false} {
		t.Run(fmt.Sprintf("existing=%v", existing), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			want := []string{}
			if existing {
				if _, err := run(context.Background(), layoutSink(dir), randomBuilt(t, "seed")); err != nil {
					t.Fatal(err)
				}
				want = append(want, "seed:latest")
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
