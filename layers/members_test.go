package layers

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// bigTree is 300 files of 40 KiB of text (12 MB, a dozen chunks or more) and an
// incompressible 512 KiB file.
func bigTree(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	r := rand.New(rand.NewChaCha8([32]byte{7}))
	files := map[string]file{"assets/photo.png": {data: string(randomBytes(r, 512<<10))}}
	for i := range 300 {
		files[fmt.Sprintf("src/m%03d/file.txt", i)] = file{data: string(randomText(r, 40<<10))}
	}
	writeTree(t, dir, files)
	return dir
}

// TestOneFileChangeCompressesItsChunkOnly: after one file changes, only
// the chunks around it are compressed again, the rest is copied from the
// cache, and the blob is the one a cold build makes, bit for bit.
func TestOneFileChangeCompressesItsChunkOnly(t *testing.T) {
	src := bigTree(t)
	b := &Builder{Cache: newCache(t), MTime: testMTime}
	spec := Spec{Sources: []Source{{From: src, To: "/app"}}}
	first := mustBuild(t, b, mustWalk(t, spec))
	total := first.UncompressedSize()
	if got := b.Stats().Compressed; got != total {
		t.Fatalf("cold build compressed %d of %d bytes", got, total)
	}
	if err := os.WriteFile(filepath.Join(src, "src/m150/file.txt"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	entries := mustWalk(t, spec)
	l := mustBuild(t, b, entries)
	again := b.Stats().Compressed - total
	t.Logf("one file changed: compressed %d of %d bytes", again, l.UncompressedSize())
	if again == 0 || again > 2*maxChunk {
		t.Errorf("compressed %d bytes again, want the changed chunks only (≤ %d)", again, 2*maxChunk)
	}
	cold := mustBuild(t, &Builder{Cache: newCache(t), MTime: testMTime}, entries)
	if d, id := digestOf(t, l); d != mustDigest(t, cold) || id != mustDiffID(t, cold) {
		t.Errorf("incremental build %s, cold build %s", d, mustDigest(t, cold))
	}
	members := layerTar(t, l, testMTime)
	if len(members) < 300 {
		t.Errorf("%d tar entries", len(members))
	}
	// any gzip reader reads the members as one stream
	zr, err := gzip.NewReader(bytes.NewReader(readAll(t, l.Compressed)))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, zr)
	if err != nil || n != l.UncompressedSize() {
		t.Errorf("compress/gzip read %d bytes (%v), want %d", n, err, l.UncompressedSize())
	}
}

// TestFreshCheckoutIsAHitByContent: the same files with new mtimes (a new
// git checkout) miss the selector, are found by content, and nothing is
// compressed.
func TestFreshCheckoutIsAHitByContent(t *testing.T) {
	src := bigTree(t)
	cache := newCache(t)
	spec := func(dir string) Spec { return Spec{Sources: []Source{{From: dir, To: "/app"}}} }
	l1 := mustBuild(t, &Builder{Cache: cache, MTime: testMTime}, mustWalk(t, spec(src)))
	checkout := t.TempDir()
	copyTree(t, src, checkout)
	setMTimes(t, checkout, time.Now().Add(time.Hour))
	b := &Builder{Cache: reopen(t, cache), MTime: testMTime}
	entries := mustWalk(t, spec(checkout))
	l2 := mustBuild(t, b, entries)
	// each file is read once, to hash it: no tar is written
	files := int64(0)
	for _, e := range entries {
		if e.Source != "" && e.Type == tar.TypeReg {
			files++
		}
	}
	if st := b.Stats(); st.Misses != 1 || st.ContentHits != 1 || st.Compressed != 0 || st.FilesRead != files {
		t.Errorf("fresh checkout: stats %+v, want a selector miss found by content, %d files read, nothing compressed", st, files)
	}
	if !reflect.DeepEqual(l2.Files(), l1.Files()) {
		t.Error("fresh checkout: the file list differs from the build's")
	}
	if mustDigest(t, l2) != mustDigest(t, l1) || !l2.Cached() {
		t.Errorf("fresh checkout gave %s (cached %v), want %s", mustDigest(t, l2), l2.Cached(), mustDigest(t, l1))
	}
	// and the selector is recorded: the next build reads no file
	read := b.Stats().FilesRead
	mustBuild(t, b, entries)
	if st := b.Stats(); st.Hits != 1 || st.FilesRead != read {
		t.Errorf("third build: stats %+v", st)
	}
}

// TestRegistryReuse: a layer a registry has by content (the Reuse hook)
// is neither compressed nor stored, and reads from the registry's blob.
func TestRegistryReuse(t *testing.T) {
	src := bigTree(t)
	spec := Spec{Sources: []Source{{From: src, To: "/app"}}}
	entries := mustWalk(t, spec)
	made := mustBuild(t, &Builder{Cache: newCache(t), MTime: testMTime}, entries)
	blob := readAll(t, made.Compressed)
	comp, _ := Compression{}.Normalize()
	var asked []string
	hooks := Hooks{Reuse: func(_ context.Context, diffID v1.Hash, key string) (*RemoteBlob, bool) {
		asked = append(asked, diffID.String())
		if diffID.String() != mustDiffID(t, made) || key != comp.Key() {
			return nil, false
		}
		return &RemoteBlob{Digest: mustHash(t, mustDigest(t, made)), Size: int64(len(blob)), Open: func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(blob)), nil
		}}, true
	}}
	cache := newCache(t)
	b := &Builder{Cache: cache, MTime: testMTime}
	l, err := b.BuildWith(context.Background(), entries, hooks)
	if err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.RegistryHits != 1 || st.Compressed != 0 || len(asked) != 1 {
		t.Errorf("stats %+v, asked %v", st, asked)
	}
	if !l.Remote() || mustDigest(t, l) != mustDigest(t, made) {
		t.Errorf("remote %v digest %s, want %s", l.Remote(), mustDigest(t, l), mustDigest(t, made))
	}
	layerTar(t, l, testMTime) // reads and checks the registry's bytes
	if blobs, _ := os.ReadDir(filepath.Join(cache.Dir(), "blobs", "sha256")); len(blobs) != 0 {
		t.Errorf("%d blobs stored for a layer the registry has", len(blobs))
	}

	// The next build here (the same runner) is a selector hit once the
	// registry shows it still has the blob: no file is read.
	b2 := &Builder{Cache: reopen(t, cache), MTime: testMTime}
	l2, err := b2.BuildWith(context.Background(), entries, hooks)
	if err != nil {
		t.Fatal(err)
	}
	if st := b2.Stats(); st.Hits != 1 || st.RegistryHits != 1 || st.FilesRead != 0 || len(asked) != 2 || !l2.Remote() || !reflect.DeepEqual(l2.Files(), made.Files()) {
		t.Errorf("the next build: stats %+v, asked %d times, remote %v", st, len(asked), l2.Remote())
	}
	// Once the registry has lost the blob, that record is a miss and the
	// layer is built (and cached, the next build's hit).
	b3 := &Builder{Cache: reopen(t, cache), MTime: testMTime}
	l3, err := b3.BuildWith(context.Background(), entries, Hooks{Reuse: func(context.Context, v1.Hash, string) (*RemoteBlob, bool) { return nil, false }})
	if err != nil {
		t.Fatal(err)
	}
	if st := b3.Stats(); st.Misses != 1 || l3.Remote() || mustDigest(t, l3) != mustDigest(t, made) {
		t.Errorf("registry gone: stats %+v, remote %v", st, l3.Remote())
	}
	if l4 := mustBuild(t, &Builder{Cache: reopen(t, cache), MTime: testMTime}, entries); !l4.Cached() || l4.Remote() {
		t.Error("the layer built after the registry lost it is not a local hit")
	}
}

// TestIncompressibleIsStored: an already-compressed file's data is a
// stored chunk of its own, so the blob holds it at about its size.
func TestIncompressibleIsStored(t *testing.T) {
	src := t.TempDir()
	r := rand.New(rand.NewChaCha8([32]byte{9}))
	png := append([]byte("\x89PNG\r\n\x1a\n"), randomBytes(r, 300<<10)...)
	writeTree(t, src, map[string]file{"img/a.bin": {data: string(png)}, "notes.txt": {data: string(randomText(r, 100<<10))}})
	b := &Builder{Cache: newCache(t), MTime: testMTime}
	entries := mustWalk(t, Spec{Sources: []Source{{From: src, To: "/"}}})
	ch := newChunker(entries)
	var chunks []chunk
	ch.emit = func(c chunk, _ []byte) error { chunks = append(chunks, c); return nil }
	if err := b.writeTar(context.Background(), ch, entries, &notes{cut: ch}); err != nil {
		t.Fatal(err)
	}
	if err := ch.finish(); err != nil {
		t.Fatal(err)
	}
	var stored []int64
	for _, c := range chunks {
		if c.Stored {
			stored = append(stored, c.Len)
		}
	}
	// the data, its tar padding and the next entry's header
	if len(stored) != 1 || stored[0] < int64(len(png)) || stored[0] > int64(len(png))+1024 {
		t.Errorf("stored chunks %v, want one of about %d bytes", stored, len(png))
	}
	l := mustBuild(t, b, entries)
	layerTar(t, l, testMTime)
	if size, _ := l.Size(); size < int64(len(png)) {
		t.Errorf("blob %d bytes, smaller than the stored file", size)
	}
}

func mustDigest(t testing.TB, l *Layer) string { d, _ := digestOf(t, l); return d }
func mustDiffID(t testing.TB, l *Layer) string { _, id := digestOf(t, l); return id }

// TestFreshCheckoutPrecompressed: the content key of a ".gz" sibling is
// its source's sum, whether the build hashed the files first or as it
// wrote them (a cold cache), so a checkout of a precompressed tree is found
// by content too, with the same file list.
func TestFreshCheckoutPrecompressed(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]file{"index.html": {data: "<html>hello</html>"}, "app.js": {data: "console.log(1)"}, "logo.png": {data: "\x89PNG"}})
	spec := func(dir string) Spec { return Spec{Sources: []Source{{From: dir, To: "/www"}}, Precompress: true} }
	cache := newCache(t)
	cold := &Builder{Cache: cache, MTime: testMTime}
	l1 := mustBuild(t, cold, mustWalk(t, spec(src)))
	if st := cold.Stats(); st.FilesRead != 5 { // 3 files and 2 gzips of them, each read once
		t.Errorf("cold build read %d files, want 5", st.FilesRead)
	}
	for i := range 2 {
		checkout := t.TempDir()
		copyTree(t, src, checkout)
		setMTimes(t, checkout, time.Now().Add(time.Duration(i+1)*time.Hour))
		b := &Builder{Cache: reopen(t, cache), MTime: testMTime}
		l := mustBuild(t, b, mustWalk(t, spec(checkout)))
		if st := b.Stats(); st.ContentHits != 1 || st.Compressed != 0 {
			t.Fatalf("checkout %d: stats %+v, want a content hit", i, st)
		}
		if mustDigest(t, l) != mustDigest(t, l1) || !reflect.DeepEqual(l.Files(), l1.Files()) {
			t.Errorf("checkout %d: a different layer or file list", i)
		}
	}
}
