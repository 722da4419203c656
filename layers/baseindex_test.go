package layers

import (
	"archive/tar"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestBaseIndexRuns: an index sorted in many runs on disk and merged gives
// the same answers as one sorted in memory, for entries in any order, with
// duplicates (the last one wins), whiteouts, opaque directories and
// directories that only parents imply.
func TestBaseIndexRuns(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var entries []tarEntry
	var names []string
	for i := range 400 {
		name := fmt.Sprintf("d%d/s%d/f%03d", r.IntN(5), r.IntN(4), i)
		entries = append(entries, tarEntry{name: name, mode: 0o644, uid: i})
		names = append(names, name)
	}
	r.Shuffle(len(entries), func(i, j int) { entries[i], entries[j] = entries[j], entries[i] })
	entries = append(entries,
		tarEntry{name: "d1/s1/f000", mode: 0o600, uid: 77},                    // duplicate: wins
		tarEntry{name: "d2/", typ: tar.TypeDir, mode: 0o700},                  // after its children
		tarEntry{name: "d3/.wh..wh..opq"},                                     // opaque, same layer
		tarEntry{name: "d4/.wh.gone"},                                         // whiteout
		tarEntry{name: "etc/passwd", mode: 0o644, data: basePasswd0},          // kept content
		tarEntry{name: "etc/passwd", mode: 0o640, data: basePasswd1, gid: 15}, // ... replaced
	)
	lower := makeTar(t, []tarEntry{
		{name: "d3/old", mode: 0o644}, {name: "d4/gone", mode: 0o644}, {name: "d4/kept", mode: 0o644},
	}, 0)
	top := makeTar(t, entries, 0)
	layers := []v1.Layer{static.NewLayer(gzipOf(t, lower), types.DockerLayer), static.NewLayer(gzipOf(t, top), types.DockerLayer)}
	ctx := context.Background()
	mem := NewBaseFS(newCache(t), layers)
	runs := NewBaseFS(newCache(t), layers)
	runs.runBytes = 300 // a few records per run
	names = append(names, "d1/s1/f000", "d2", "d3", "d3/old", "d4/gone", "d4/kept", "etc/passwd", "etc", "d0", "d0/s0", "nope", "d1/nope")
	for _, name := range names {
		f1, data1, ok1, err1 := lookupData(ctx, mem, name)
		f2, data2, ok2, err2 := lookupData(ctx, runs, name)
		if err1 != nil || err2 != nil || f1 != f2 || string(data1) != string(data2) || ok1 != ok2 {
			t.Errorf("%s: in memory %+v %q %v %v, in runs %+v %q %v %v", name, f1, data1, ok1, err1, f2, data2, ok2, err2)
		}
	}
	runFiles, _ := filepath.Glob(filepath.Join(runs.cache.Dir(), "tmp", "*"))
	if len(runFiles) != 0 {
		t.Errorf("temporary files left: %q", runFiles)
	}
	check := func(name string, wantOK bool, want BaseFile, wantData string) {
		t.Helper()
		f, data, ok, err := lookupData(ctx, runs, name)
		if err != nil || ok != wantOK || f != want || string(data) != wantData {
			t.Errorf("%s: %+v %q %v %v; want %+v %q %v", name, f, data, ok, err, want, wantData, wantOK)
		}
	}
	check("d1/s1/f000", true, BaseFile{Type: tar.TypeReg, Mode: 0o600, UID: 77}, "")
	check("d2", true, BaseFile{Type: tar.TypeDir, Mode: 0o700}, "")
	check("d0", false, BaseFile{}, "") // implied: no entry of its own
	check("d3/old", false, BaseFile{}, "")
	check("d4/gone", false, BaseFile{}, "")
	check("d4/kept", true, BaseFile{Type: tar.TypeReg, Mode: 0o644}, "")
	check("etc/passwd", true, BaseFile{Type: tar.TypeReg, Mode: 0o640, GID: 15}, basePasswd1)
}

// TestBaseIndexEntryLimit: a layer with more entries than the limit is
// refused with an error that says so.
func TestBaseIndexEntryLimit(t *testing.T) {
	var entries []tarEntry
	for i := range 20 {
		entries = append(entries, tarEntry{name: fmt.Sprintf("f%d", i)})
	}
	l := static.NewLayer(gzipOf(t, makeTar(t, entries, 0)), types.DockerLayer)
	cache := newCache(t)
	fsys := NewBaseFS(cache, []v1.Layer{l})
	fsys.MaxEntries = 10
	_, _, err := fsys.Lookup(context.Background(), "f1")
	dig, _ := l.Digest()
	if err == nil || !strings.Contains(err.Error(), "more than 10 entries") || !strings.Contains(err.Error(), dig.String()) {
		t.Errorf("error %v, want the limit and the layer named", err)
	}
	if des, _ := os.ReadDir(filepath.Join(cache.Dir(), "base")); len(des) != 0 {
		t.Errorf("index cached for a refused layer: %v", des)
	}
	fsys.MaxEntries = 0
	if _, ok, err := fsys.Lookup(context.Background(), "f1"); err != nil || !ok {
		t.Errorf("default limit: %v %v", ok, err)
	}
}
