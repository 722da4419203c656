package sink

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/gantry-dev/gantry/layers"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// blobPath is where the layout being written keeps blob h.
func (s *layoutSink) blobPath(h v1.Hash) string {
	return filepath.Join(s.work, "blobs", h.Algorithm, h.Hex)
}

func (s *layoutSink) writeBytes(ctx context.Context, b []byte) error {
	h, _, err := v1.SHA256(bytes.NewReader(b))
	if err != nil {
		return err
	}
	return s.writeBlob(ctx, h, int64(len(b)), func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

func (s *layoutSink) writeLayer(ctx context.Context, l v1.Layer) error {
	h, err := l.Digest()
	if err != nil {
		return err
	}
	size, err := l.Size()
	if err != nil {
		return err
	}
	return s.writeBlob(ctx, h, size, func() (io.ReadCloser, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return l.Compressed()
	})
}

// writeBlob writes a blob by temp file and rename, checking its size and
// digest, so a corrupt source never lands in the layout. A blob the layout
// has is reused only when its bytes hash to its name; else it is replaced.
func (s *layoutSink) writeBlob(ctx context.Context, h v1.Hash, size int64, open func() (io.ReadCloser, error)) error {
	if s.have[h] {
		return nil
	}
	dst := s.blobPath(h)
	ok, err := reusable(ctx, dst, h, size)
	if err != nil {
		return err
	}
	if ok {
		s.have[h] = true
		return nil
	}
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := copyBlob(ctx, dst, h, size, rc); err != nil {
		return err
	}
	s.have[h] = true
	return nil
}

// reusable reports whether the layout already has the blob at dst: a
// regular file of the size whose bytes hash to h.
func reusable(ctx context.Context, dst string, h v1.Hash, size int64) (bool, error) {
	fi, err := os.Stat(dst)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != size {
		return false, nil
	}
	return hasDigest(ctx, dst, h)
}

// copyBlob copies rc to dst through a temporary file beside it, renamed
// into place only when it has the size and digest wanted.
func copyBlob(ctx context.Context, dst string, h v1.Hash, size int64, rc io.Reader) error {
	f, err := os.CreateTemp(filepath.Dir(dst), ".tmp-"+h.Hex[:12]+"-*")
	if err != nil {
		return fmt.Errorf("%w; check the free space and permissions of %s", err, filepath.Dir(dst))
	}
	hasher := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, hasher), layers.ContextReader(ctx, rc))
	cerr := f.Close()
	if err == nil {
		err = checkBlob(h, size, n, hex.EncodeToString(hasher.Sum(nil)))
	}
	if err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), dst)
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// checkBlob refuses n bytes hashing to got for blob h of the given size.
func checkBlob(h v1.Hash, size, n int64, got string) error {
	if n != size {
		return fmt.Errorf("blob %s: got %d bytes, want %d; the source is corrupt (a cached layer: clear the layer cache and run again)", h, n, size)
	}
	if got != h.Hex {
		return fmt.Errorf("blob %s: its bytes hash to sha256:%s; the source is corrupt (a cached layer: clear the layer cache and run again)", h, got)
	}
	return nil
}

// hasDigest reports whether the file at path hashes to h; a file that
// cannot be read does not.
func hasDigest(ctx context.Context, path string, h v1.Hash) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, nil
	}
	defer f.Close()
	hasher := sha256.New()
	if _, err := io.Copy(hasher, layers.ContextReader(ctx, f)); err != nil {
		return false, ctx.Err()
	}
	return hex.EncodeToString(hasher.Sum(nil)) == h.Hex, nil
}
