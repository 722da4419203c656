package layers

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A temporary file a killed run left in the cache is removed when the
// cache is next opened; one a live run holds, and one just made, stay.
func TestCacheSweepsLeftovers(t *testing.T) {
	dir := t.TempDir()
	c, err := OpenCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	live, err := c.tempFile("layer-*")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	old := time.Now().Add(-time.Hour)
	leftover := filepath.Join(dir, "tmp", "layer-killed")
	fresh := filepath.Join(dir, "tmp", "layer-fresh")
	for _, p := range []string{leftover, fresh} {
		if err := os.WriteFile(p, make([]byte, 1<<20), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{leftover, live.Name()} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := OpenCache(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("the killed run's %s is still there (%v)", leftover, err)
	}
	for _, p := range []string{live.Name(), fresh} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
}
