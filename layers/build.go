package layers

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
)

// Builder makes layers from entries in one streaming pass:
// entries → tar → sha256 (diffID) → compressor → sha256 (digest) + size →
// blob file in the cache. A layer whose selector is already cached is
// returned without reading any file contents.
type Builder struct {
	Cache       *Cache
	Compression Compression
	// MTime is written as every entry's modification time.
	MTime time.Time

	filesRead    atomic.Int64
	hits         atomic.Int64
	misses       atomic.Int64
	contentHits  atomic.Int64
	registryHits atomic.Int64
	compressed   atomic.Int64
}

// Stats counts what a Builder did: files opened, selector hits and misses,
// misses whose content the cache or a registry had anyway, and the tar
// bytes it compressed.
type Stats struct {
	FilesRead, Hits, Misses, ContentHits, RegistryHits int64
	Compressed                                         int64
}

// Stats reports what the builder did so far.
func (b *Builder) Stats() Stats {
	return Stats{
		FilesRead: b.filesRead.Load(), Hits: b.hits.Load(), Misses: b.misses.Load(),
		ContentHits: b.contentHits.Load(), RegistryHits: b.registryHits.Load(), Compressed: b.compressed.Load(),
	}
}

// Selector is the cache key of a layer: its options and every entry's
// metadata (path, type, size, mode, owner, link target) and, for a host
// file, its stat as git's index keeps it: mtime, ctime, inode and device.
// Rewriting a file in place changes its ctime even when its size and mtime
// are restored, so only a genuine no-op is a hit. The selector costs a
// stat per file (done by Walk), never a read.
func (b *Builder) Selector(entries []Entry) string {
	comp, err := b.Compression.Normalize()
	if err != nil {
		comp = b.Compression
	}
	return b.selector(comp, entries)
}

func (b *Builder) selector(comp Compression, entries []Entry) string {
	return b.key("gantry-layer-v3", comp, entries, func(h hash.Hash, i int) {
		e := &entries[i]
		var num [8]byte
		for _, v := range [...]int64{e.SourceMTime.UnixNano(), e.host.ctime, int64(e.host.id.dev), int64(e.host.id.ino)} {
			binary.BigEndian.PutUint64(num[:], uint64(v))
			h.Write(num[:])
		}
	})
}

// Build returns the layer made of entries (sorted by name), from the cache
// when its selector is there.
func (b *Builder) Build(ctx context.Context, entries []Entry) (*Layer, error) {
	return b.BuildWith(ctx, entries, Hooks{})
}

// Hooks observe a layer while it is built (on a cache miss only).
type Hooks struct {
	// Progress is called with the number of tar bytes written as they go.
	Progress func(int64)
	// Tee receives the compressed stream as it is written, e.g. to upload
	// it while it is built. A Tee that fails is dropped; the build goes on.
	Tee io.Writer
	// Reuse asks whether a registry already has a layer of this content
	// (diffID) compressed as compression (a Compression.Key) says.
	Reuse func(ctx context.Context, diffID v1.Hash, compression string) (*RemoteBlob, bool)
	// Reusable, when set, says whether Reuse may find anything at all: a
	// miss learns its diffID first (a scan of the tar) only if so. It is
	// asked only on a miss.
	Reusable func(ctx context.Context) bool
}

func hashOf(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

// WriteTar writes the deterministic tar stream of entries to w.
func (b *Builder) WriteTar(ctx context.Context, w io.Writer, entries []Entry) error {
	return b.writeTar(ctx, w, entries, &notes{})
}

func (b *Builder) writeTar(ctx context.Context, w io.Writer, entries []Entry, found *notes) error {
	if found.sums == nil {
		found.sums = make(sums, len(entries))
	}
	found.ahead = b.startReadAhead(entries)
	defer func() { found.ahead.close(); found.ahead = nil }()
	tw := tar.NewWriter(w)
	mtime := b.MTime.UTC().Truncate(time.Second)
	for i := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := &entries[i]
		if err := found.entry(tw, e); err != nil {
			return err
		}
		if err := b.writeEntry(tw, e, mtime, found, i); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finishing layer tar: %w", err)
	}
	return nil
}

// writeEntry writes e, entry i: its host file's SHA-256 is found.sums[i]
// if hashed already, else it is hashed as it is read.
func (b *Builder) writeEntry(tw *tar.Writer, e *Entry, mtime time.Time, found *notes, i int) error {
	data := e.Data
	if e.Gzip {
		var err error
		if data, err = b.gzipFile(e, found, i); err != nil {
			return err
		}
	} else if data != nil {
		found.sawHead(e, data)
	}
	var sum [sha256.Size]byte
	if data != nil {
		sum = sha256.Sum256(data)
		found.sawFile(e.Name, sum[:])
	}
	h := e.header(mtime)
	if data != nil {
		h.Size = int64(len(data))
	}
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("writing %s to layer: %w", e.Name, err)
	}
	switch {
	case data != nil:
		if err := found.data(e, h.Size, data); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return fmt.Errorf("writing %s to layer: %w", e.Name, err)
		}
		found.summed(&sum)
	case e.Type == tar.TypeReg && e.Source != "":
		return b.writeSource(tw, e, found, i)
	case e.Type == tar.TypeReg:
		found.sawFile(e.Name, emptySHA256[:])
	}
	return nil
}

// writeSource writes the content of e, entry i, from its host file: as the
// pass's read-ahead read it, or copied now.
func (b *Builder) writeSource(tw *tar.Writer, e *Entry, found *notes, i int) error {
	beforeData := func(head []byte) error { return found.data(e, e.Size, head) }
	if found.ahead != nil && aheadOK(e) {
		return b.writeAhead(tw, e, found, i, beforeData)
	}
	w, done := found.hashing(tw, i)
	if err := b.copyFile(w, e, found, beforeData); err != nil {
		return err
	}
	if err := done(); err != nil {
		return fmt.Errorf("layer source %s: %w", e.Source, err)
	}
	found.summed(&found.sums[i])
	found.sawSource(e.Name, i)
	return nil
}

// writeAhead writes the content of e, entry i, that the pass's read-ahead
// read and hashed: a sum known from an earlier read must be the same.
func (b *Builder) writeAhead(tw *tar.Writer, e *Entry, found *notes, i int, beforeData func([]byte) error) error {
	data, sum, err := found.ahead.next(i)
	if err != nil {
		return err
	}
	defer found.ahead.release(data)
	if err := sameSum(found.sums[i], sum); err != nil {
		return fmt.Errorf("layer source %s: %w", e.Source, err)
	}
	// the sum is of the very bytes written: even a pass that cuts chunks
	// (hashing) need not hash them again
	found.sums[i] = sum
	r, _, err := headOf(tw, e, bytes.NewReader(data), found, beforeData)
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(tw, r, found.copyBuffer()); err != nil {
		return fmt.Errorf("writing %s to layer: %w", e.Name, err)
	}
	found.summed(&found.sums[i])
	found.sawSource(e.Name, i)
	return nil
}

// errChanged reports a source that changed between the walk and the read.
var errChanged = errors.New("changed while the layer was being built; rebuild when it is stable")

// copyFile copies e's source into tw, failing if the file is not the one
// that was walked (size, mtime, ctime or inode changed) or changes while it
// is read.
func (b *Builder) copyFile(w io.Writer, e *Entry, found *notes, beforeData func(head []byte) error) error {
	f, err := b.openSource(e)
	if err != nil {
		return err
	}
	defer f.Close()
	r, n, err := headOf(w, e, f, found, beforeData)
	if err != nil {
		return err
	}
	m, err := io.CopyBuffer(w, r, found.copyBuffer())
	n += m
	if err != nil {
		return fmt.Errorf("reading layer source %s: %w", e.Source, err)
	}
	if n != e.Size {
		return fmt.Errorf("layer source %s: %w (was %d bytes, read %d)", e.Source, errChanged, e.Size, n)
	}
	return sameFile(f, e)
}

// headOf reads the first bytes of e's content from f (all of a file the
// secret scan reads), tells found and beforeData what they show, and
// returns the rest to copy and the bytes it wrote to w already.
func headOf(w io.Writer, e *Entry, f io.Reader, found *notes, beforeData func([]byte) error) (io.Reader, int64, error) {
	r := io.LimitReader(f, e.Size)
	if e.secretScan && e.Size <= 1<<20 {
		data, err := io.ReadAll(r)
		if err != nil {
			return nil, 0, fmt.Errorf("reading layer source %s: %w", e.Source, err)
		}
		if why := secretContent(path.Base(e.Name), data); why != "" {
			if e.secretRefuse {
				return nil, 0, secretError(e.Source, why)
			}
			found.secrets = append(found.secrets, SecretFinding{Name: e.Name, Why: why})
		}
		found.sawHead(e, data)
		return bytes.NewReader(data), 0, before(beforeData, data)
	}
	// the first bytes tell an ELF file's machine: peek at them on the way
	var buf [elfHeadSize]byte
	k, err := io.ReadFull(r, buf[:min(int64(len(buf)), e.Size)])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, 0, fmt.Errorf("reading layer source %s: %w", e.Source, err)
	}
	found.sawHead(e, buf[:k])
	if err := before(beforeData, buf[:k]); err != nil {
		return nil, 0, err
	}
	if _, err := w.Write(buf[:k]); err != nil {
		return nil, 0, fmt.Errorf("writing %s to layer: %w", e.Name, err)
	}
	return r, int64(k), nil
}

func before(f func([]byte) error, head []byte) error {
	if f == nil {
		return nil
	}
	return f(head)
}

// openSource opens e's source, checked against its walk.
func (b *Builder) openSource(e *Entry) (*os.File, error) {
	f, err := os.Open(e.Source)
	if err != nil {
		return nil, fmt.Errorf("layer source %s: %w", e.Source, unwrapPathError(err))
	}
	b.filesRead.Add(1)
	if err := sameFile(f, e); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func sameFile(f *os.File, e *Entry) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("layer source %s: %w", e.Source, err)
	}
	if fi.Size() != e.Size || !fi.ModTime().Equal(e.SourceMTime) {
		return fmt.Errorf("layer source %s: %w", e.Source, errChanged)
	}
	if e.host != (hostStat{}) {
		if hs, ok := statOf(fi); ok && (hs.id != e.host.id || hs.ctime != e.host.ctime) {
			return fmt.Errorf("layer source %s: %w (its inode or ctime differs from the walk's)", e.Source, errChanged)
		}
	}
	return nil
}

// gzipFile returns the deterministic gzip of e's source (entry i, whose
// sum it records): best compression, no name and no mtime in the header.
func (b *Builder) gzipFile(e *Entry, found *notes, i int) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	w, done := found.hashing(zw, i)
	if err := b.copyFile(w, e, found, nil); err != nil {
		return nil, err
	}
	if err := done(); err != nil {
		return nil, fmt.Errorf("layer source %s: %w", e.Source, err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("precompressing %s: %w", e.Source, err)
	}
	return buf.Bytes(), nil
}
