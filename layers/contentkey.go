package layers

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"runtime"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// A fresh checkout has the same bytes under new mtimes, ctimes and inodes:
// it misses every selector. Its content key is the selector with each host
// file's SHA-256 in place of its stat, so it names the tar stream itself
// (the same key, the same bytes, the same diffID) and finds the cached
// layer after one read of the files, on every core, with no tar written
// and nothing compressed. The sums are the ones the layer's file list (the
// SBOM) needs anyway, so a build that misses does not hash its files again.

// sums are the SHA-256 of entries' host files, by entry index (zero where
// an entry has no host source).
type sums [][sha256.Size]byte

// sourceSums hashes the host files of entries on GOMAXPROCS workers, each
// file checked against its walk before and after it is read.
func (b *Builder) sourceSums(ctx context.Context, entries []Entry) (sums, error) {
	out := make(sums, len(entries))
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for range min(runtime.GOMAXPROCS(0), max(len(entries), 1)) {
		g.Go(func() error {
			h := sha256.New()
			buf := make([]byte, 256<<10)
			for {
				i := int(next.Add(1) - 1)
				if i >= len(entries) {
					return nil
				}
				if err := gctx.Err(); err != nil {
					return err
				}
				if e := &entries[i]; e.Source != "" && e.Type == tar.TypeReg {
					if err := b.hashSource(h, buf, e, &out[i]); err != nil {
						return err
					}
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

func (b *Builder) hashSource(h hash.Hash, buf []byte, e *Entry, sum *[sha256.Size]byte) error {
	f, err := b.openSource(e)
	if err != nil {
		return err
	}
	defer f.Close()
	h.Reset()
	n, err := io.CopyBuffer(h, io.LimitReader(f, e.Size+1), buf)
	if err != nil {
		return fmt.Errorf("reading layer source %s: %w", e.Source, err)
	}
	if n != e.Size {
		return fmt.Errorf("layer source %s: %w (was %d bytes, read %d)", e.Source, errChanged, e.Size, n)
	}
	h.Sum(sum[:0])
	return sameFile(f, e)
}

// contentKey is the selector of entries' bytes: their metadata and the
// sums of their host files.
func (b *Builder) contentKey(comp Compression, entries []Entry, s sums) string {
	return b.key("gantry-layer-content-v1", comp, entries, func(h hash.Hash, i int) { h.Write(s[i][:]) })
}

// key hashes comp, the mtime and every entry's metadata, with what source
// adds for each entry that has a host file.
func (b *Builder) key(version string, comp Compression, entries []Entry, source func(h hash.Hash, i int)) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%d\n", version, comp.Key(), b.MTime.Unix())
	var num [8]byte
	putInt := func(v int64) { binary.BigEndian.PutUint64(num[:], uint64(v)); h.Write(num[:]) }
	for i := range entries {
		e := &entries[i]
		h.Write([]byte(e.Name))
		h.Write([]byte{0, e.Type})
		putInt(e.Mode)
		putInt(int64(e.UID))
		putInt(int64(e.GID))
		putInt(e.Size)
		h.Write([]byte(e.Linkname))
		h.Write([]byte{0})
		if e.Source != "" {
			source(h, i)
		}
		if e.Gzip {
			h.Write([]byte{'z'})
		}
		if e.Data != nil {
			d := sha256.Sum256(e.Data)
			h.Write(d[:])
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
