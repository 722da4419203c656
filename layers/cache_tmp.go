package layers

import (
	"os"
	"path/filepath"
	"time"
)

// Temporary files in the cache's tmp directory are locked (flock) by the
// run writing them for as long as it does, so that the next run can tell a
// file a killed run left behind (kill -9, a crash: no lock) from one a
// concurrent run is writing, and remove only the former.

// staleAfter keeps a file just created, before its lock is taken, from
// being taken for a leftover.
const staleAfter = time.Minute

// tempFile creates a temporary file in the cache, locked until closed.
func (c *Cache) tempFile(pattern string) (*os.File, error) {
	f, err := os.CreateTemp(filepath.Join(c.dir, "tmp"), pattern)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f, false); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// sweep removes the temporary files no live run holds: leftovers of runs
// that were killed.
func (c *Cache) sweep() {
	dir := filepath.Join(c.dir, "tmp")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || time.Since(info.ModTime()) < staleAfter {
			continue
		}
		p := filepath.Join(dir, e.Name())
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if lockFile(f, true) == nil { // nobody writes it
			os.Remove(p)
		}
		f.Close()
	}
}
