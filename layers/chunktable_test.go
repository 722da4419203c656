package layers

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestChunkTable: a build writes one table for its blob, listing every
// chunk; a table whose blob was rewritten is left out; the oldest tables
// beyond tablesKept are removed.
func TestChunkTable(t *testing.T) {
	cache := newCache(t)
	b := &Builder{Cache: cache, MTime: testMTime}
	l := mustBuild(t, b, mustWalk(t, Spec{Sources: []Source{{From: bigTree(t), To: "/app"}}}))
	comp, _ := b.Compression.Normalize()
	tabs, _ := filepath.Glob(filepath.Join(cache.Dir(), "chunks", "*.tab"))
	if len(tabs) != 1 || !strings.HasPrefix(filepath.Base(tabs[0]), mustHash(t, mustDigest(t, l)).Hex) {
		t.Fatalf("tables %v, want one for the blob", tabs)
	}
	index := cache.chunkIndex(comp)
	if len(index) < 2 {
		t.Fatalf("%d chunks indexed", len(index))
	}
	var end int64
	for _, at := range index {
		end = max(end, at.Offset+at.Length)
	}
	if size, _ := l.Size(); end != size {
		t.Errorf("the chunks end at %d, the blob is %d bytes", end, size)
	}
	if n := len(cache.chunkIndex(Compression{Algorithm: Zstd, Level: 3})); n != 0 {
		t.Errorf("%d gzip chunks offered to a zstd build", n)
	}
	os.Chtimes(l.Path(), time.Now(), time.Now().Add(time.Hour))
	if n := len(cache.chunkIndex(comp)); n != 0 {
		t.Errorf("%d chunks of a rewritten blob indexed", n)
	}

	dir := filepath.Join(cache.Dir(), "chunks")
	for i := range tablesKept + 5 {
		p := filepath.Join(dir, fmt.Sprintf("%064x-x.tab", i))
		if err := os.WriteFile(p, []byte(tableMagic), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, testMTime, testMTime.Add(time.Duration(i)*time.Second))
	}
	if err := cache.pruneTables(); err != nil {
		t.Fatal(err)
	}
	tabs, _ = filepath.Glob(filepath.Join(dir, "*.tab"))
	if len(tabs) != tablesKept {
		t.Errorf("%d tables kept, want %d", len(tabs), tablesKept)
	}
	if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("%064x-x.tab", tablesKept+4))); err != nil {
		t.Errorf("the newest table was removed: %v", err)
	}
}
