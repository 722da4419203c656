package layers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
)

// StoreFile copies at most limit bytes of r into the content-addressed
// directory dir as dir/<sha256 hex>, and returns that sha256 and the size;
// extra (if not nil) sees the same bytes. A file the directory has already
// is kept, with its mtime (layer cache selectors include it). The copy is
// written beside and renamed into place, so the directory never holds a
// partial file under a hash.
func StoreFile(ctx context.Context, dir string, r io.Reader, limit int64, extra hash.Hash) (string, int64, error) {
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return "", 0, fmt.Errorf("creating a file in %s: %w", dir, err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	sinks := []io.Writer{tmp, h}
	if extra != nil {
		sinks = append(sinks, extra)
	}
	n, err := io.Copy(io.MultiWriter(sinks...), ContextReader(ctx, io.LimitReader(r, limit)))
	if err != nil {
		return "", 0, err
	}
	if err := tmp.Close(); err != nil {
		return "", 0, fmt.Errorf("writing %s: %w", dir, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	dst := filepath.Join(dir, sum)
	if fi, err := os.Stat(dst); err == nil && fi.Size() == n {
		return sum, n, nil // stored already: keep its mtime
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", 0, fmt.Errorf("storing a file in %s: %w", dir, err)
	}
	tmp = nil
	return sum, n, nil
}
