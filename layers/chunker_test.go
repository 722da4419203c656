package layers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// piece is one write into a chunker: raw bytes, or a file's data that is
// announced first and summed after.
type piece struct {
	data   []byte
	summed bool
	sum    *[sha256.Size]byte // given in place of data's own sum
}

// chunkIDs feeds pieces to a chunker and returns its chunks' identities.
func chunkIDs(t *testing.T, pieces ...piece) [][sha256.Size]byte {
	t.Helper()
	c := &chunker{total: sha256.New(), cur: sha256.New(), every: 1}
	var ids [][sha256.Size]byte
	c.emit = func(ch chunk, _ []byte) error { ids = append(ids, ch.Hash); return nil }
	for _, p := range pieces {
		if p.summed {
			if err := c.data(false, int64(len(p.data))); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Write(p.data); err != nil {
			t.Fatal(err)
		}
		if p.summed {
			s := sha256.Sum256(p.data)
			if p.sum != nil {
				s = *p.sum
			}
			c.sum(&s)
		}
	}
	if err := c.finish(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestChunkIdentity: a chunk's identity names its bytes, whether they were
// hashed or summed, and a summed file stands as its sum.
func TestChunkIdentity(t *testing.T) {
	header := bytes.Repeat([]byte{'h'}, 512)
	data := bytes.Repeat([]byte("some file data\n"), 1000)
	other := bytes.Repeat([]byte("some file dat!\n"), 1000)
	base := chunkIDs(t, piece{data: header}, piece{data: data, summed: true})
	if len(base) != 1 {
		t.Fatalf("%d chunks, want 1", len(base))
	}
	if again := chunkIDs(t, piece{data: header}, piece{data: data, summed: true}); again[0] != base[0] {
		t.Error("the same stream has two identities")
	}
	for name, ps := range map[string][]piece{
		"other data":       {{data: header}, {data: other, summed: true}},
		"other header":     {{data: bytes.Repeat([]byte{'H'}, 512)}, {data: data, summed: true}},
		"data not summed":  {{data: header}, {data: data}},
		"data moved":       {{data: header[:256]}, {data: data, summed: true}, {data: header[256:]}},
		"another file sum": {{data: header}, {data: data, summed: true, sum: &[sha256.Size]byte{1}}},
	} {
		if got := chunkIDs(t, ps...); got[0] == base[0] {
			t.Errorf("%s: same identity as the original chunk", name)
		}
	}
	// data too big for the chunk is hashed, whatever the sum given
	big := bytes.Repeat([]byte{'x'}, maxChunk)
	a := chunkIDs(t, piece{data: header}, piece{data: big, summed: true})
	b := chunkIDs(t, piece{data: header}, piece{data: big, summed: true, sum: &[sha256.Size]byte{2}})
	if len(a) != 2 || a[0] != b[0] || a[1] != b[1] {
		t.Errorf("data crossing a cut: %d chunks, identities depend on the sum: %v", len(a), a[0] != b[0])
	}
}

// TestChunkSumOwed: a chunk cannot end while a file's sum is owed.
func TestChunkSumOwed(t *testing.T) {
	c := &chunker{total: sha256.New(), cur: sha256.New(), every: 1}
	if err := c.data(false, 4); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if err := c.finish(); !errors.Is(err, errSumOwed) {
		t.Errorf("finish with a sum owed: %v, want errSumOwed", err)
	}
	if err := c.data(false, 4); !errors.Is(err, errSumOwed) {
		t.Errorf("data with a sum owed: %v, want errSumOwed", err)
	}
}

// TestChunksReusedAfterContentKeyMiss: a build that hashed the files first
// (a warm cache, a content-key miss) names chunks as the cold build did:
// after one file changes, only its chunks are compressed again.
func TestChunksReusedAfterContentKeyMiss(t *testing.T) {
	src := bigTree(t)
	cache := newCache(t)
	spec := Spec{Sources: []Source{{From: src, To: "/app"}}}
	mustBuild(t, &Builder{Cache: cache, MTime: testMTime}, mustWalk(t, spec))
	if err := os.WriteFile(filepath.Join(src, "src/m150/file.txt"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &Builder{Cache: reopen(t, cache), MTime: testMTime}
	if !b.Cache.hadContent {
		t.Fatal("the reopened cache has no content records: the test would not hash first")
	}
	entries := mustWalk(t, spec)
	l := mustBuild(t, b, entries)
	if got := b.Stats().Compressed; got == 0 || got > 2*maxChunk {
		t.Errorf("compressed %d bytes again, want the changed chunks only (≤ %d)", got, 2*maxChunk)
	}
	cold := mustBuild(t, &Builder{Cache: newCache(t), MTime: testMTime}, entries)
	if d := mustDigest(t, l); d != mustDigest(t, cold) {
		t.Errorf("incremental build %s, cold build %s", d, mustDigest(t, cold))
	}
}

// TestKnownSumMustMatch: a file whose content differs from the sum an
// earlier read gave fails the build instead of naming a chunk wrongly.
func TestKnownSumMustMatch(t *testing.T) {
	src := bigTree(t)
	b := &Builder{Cache: newCache(t), MTime: testMTime}
	entries := mustWalk(t, Spec{Sources: []Source{{From: src, To: "/app"}}})
	comp, known := sumsOf(t, b, entries)
	for i := range entries {
		if entries[i].Source != "" && entries[i].Size > 0 {
			known[i][0] ^= 1
			break
		}
	}
	_, err := b.writeMembers(context.Background(), comp, entries, nil, known, io.Discard, nil)
	if !errors.Is(err, errChanged) {
		t.Errorf("a wrong known sum: %v, want errChanged", err)
	}
}
