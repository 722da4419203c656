package layers

import (
	"archive/tar"
	"bufio"
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
	"sort"
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
	h := sha256.New()
	fmt.Fprintf(h, "gantry-layer-v3\n%s\n%d\n", comp.Key(), b.MTime.Unix())
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
			putInt(e.SourceMTime.UnixNano())
			putInt(e.host.ctime)
			putInt(int64(e.host.id.dev))
			putInt(int64(e.host.id.ino))
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
}

// BuildWith is Build with hooks. On a selector miss it first streams the
// tar once without compressing it, to learn its diffID: a layer the cache
// (or, through h.Reuse, a registry) already has with that content is
// neither compressed nor uploaded again. Otherwise only the chunks the
// cache lacks are compressed.
func (b *Builder) BuildWith(ctx context.Context, entries []Entry, h Hooks) (*Layer, error) {
	// A zero Compression means the defaults (not gzip level 0, which stores).
	comp, err := b.Compression.Normalize()
	if err != nil {
		return nil, err
	}
	sel := b.Cache.selectorRecord(b.selector(comp, entries))
	if l := b.Cache.lookup(sel, comp); l != nil {
		b.hits.Add(1)
		// Gates on content apply on a hit as on a miss: the record holds
		// what the build that wrote it found.
		if err := checkSecretFindings(entries, l.secrets); err != nil {
			return nil, err
		}
		return l, nil
	}
	b.misses.Add(1)
	var sc *scanned
	if h.Reuse != nil {
		// learn the diffID first: the registry may have the layer
		if sc, err = b.scan(ctx, entries); err != nil {
			return nil, err
		}
		if l := b.Cache.lookup(b.Cache.contentRecord(sc.diffID, comp), comp); l != nil {
			b.contentHits.Add(1)
			return l, b.Cache.store(comp, l, sel)
		}
		if rb, ok := h.Reuse(ctx, sc.diffID, comp.Key()); ok {
			b.registryHits.Add(1)
			return sc.remote(comp, rb), nil
		}
	}
	// one pass when nothing but the cache can have it: the chunks it has
	// are copied, not compressed
	l, sc, err := b.write(ctx, comp, entries, sc, h)
	if err != nil {
		return nil, err
	}
	content := b.Cache.contentRecord(sc.diffID, comp)
	if h.Reuse == nil {
		if c := b.Cache.lookup(content, comp); c != nil {
			b.contentHits.Add(1)
			return c, b.Cache.store(comp, c, sel)
		}
	}
	if err := b.Cache.store(comp, l, sel, content); err != nil {
		return nil, err
	}
	return l, nil
}

// scanned is what streaming a layer's tar tells: its diffID and size, and
// what the contents show (secrets, ELF files).
type scanned struct {
	diffID v1.Hash
	size   int64
	found  notes
}

// scan streams entries' tar into a hash, compressing nothing.
func (b *Builder) scan(ctx context.Context, entries []Entry) (*scanned, error) {
	sc := &scanned{found: notes{files: []FileDigest{}}}
	h := sha256.New()
	w := &countingWriter{w: h}
	if err := b.writeTar(ctx, w, entries, &sc.found); err != nil {
		return nil, err
	}
	sc.diffID, sc.size = hashOf(h), w.n
	sc.sortNotes()
	return sc, nil
}

func (sc *scanned) sortNotes() {
	sc.found.cut = nil
	sort.Slice(sc.found.elf, func(i, j int) bool { return sc.found.elf[i].Name < sc.found.elf[j].Name })
}

// remote is the layer a registry has for this content.
func (sc *scanned) remote(comp Compression, rb *RemoteBlob) *Layer {
	return &Layer{
		digest: rb.Digest, diffID: sc.diffID, size: rb.Size, uncompressedSize: sc.size,
		compression: comp.Algorithm, cached: true, open: rb.Open, reusedFrom: "registry",
		secrets: sc.found.secrets, elf: sc.found.elf, files: sc.found.files,
	}
}

// RemoteBlob is a compressed layer a registry already holds (proven by a
// HEAD or a mount), found by its diffID and compression.
type RemoteBlob struct {
	Digest v1.Hash
	Size   int64
	// Open reads the blob, for sinks that copy it (an OCI layout).
	Open func() (io.ReadCloser, error)
}

// notes collects what one build finds in the contents it reads, for the
// layer and its cache record; cut, when set, is told where entries and
// incompressible data begin.
type notes struct {
	secrets []SecretFinding
	elf     []ELFFile
	files   []FileDigest // never nil once built: a cache record without it is a miss
	cut     *chunker
}

// sawHead records what the first bytes of entry e's content tell.
func (n *notes) sawHead(e *Entry, head []byte) {
	if e.Gzip {
		return // the content written is the gzip of the source
	}
	if f, ok := elfHeader(e.Name, head); ok {
		n.elf = append(n.elf, f)
	}
}

// entry is called before entry e's header is written.
func (n *notes) entry(tw *tar.Writer, e *Entry) error {
	if n.cut == nil {
		return nil
	}
	if err := tw.Flush(); err != nil { // the previous entry's padding
		return fmt.Errorf("writing layer tar: %w", err)
	}
	return n.cut.entry(e.Name)
}

// data is called after entry e's header, before its content (whose first
// bytes are head): incompressible content is stored, not deflated.
func (n *notes) data(e *Entry, size int64, head []byte) error {
	if n.cut == nil {
		return nil
	}
	return n.cut.data(size >= storeAbove && incompressible(e.Name, head, e.Gzip))
}

// dropOnError passes writes on until the first error, then swallows them.
type dropOnError struct {
	w      io.Writer
	failed bool
}

func (d *dropOnError) Write(p []byte) (int, error) {
	if !d.failed {
		if _, err := d.w.Write(p); err != nil {
			d.failed = true
		}
	}
	return len(p), nil
}

type countingWriter struct {
	w      io.Writer
	n      int64
	report func(int64)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if c.report != nil {
		c.report(int64(n))
	}
	return n, err
}

// write makes the blob of a layer into the cache (and the tee),
// compressing only the chunks the cache lacks; sc is the scan, if one was
// made, else what this pass saw.
func (b *Builder) write(ctx context.Context, comp Compression, entries []Entry, sc *scanned, h Hooks) (l *Layer, _ *scanned, err error) {
	tmp, err := b.Cache.tempFile("layer-*")
	if err != nil {
		return nil, nil, fmt.Errorf("creating layer file in cache: %w", err)
	}
	stored := false
	defer func() {
		tmp.Close() // after the rename: the lock marks the file in use until then
		if !stored {
			os.Remove(tmp.Name())
		}
	}()
	fileBuf := bufio.NewWriterSize(tmp, 1<<20)
	digest := sha256.New()
	sinks := []io.Writer{fileBuf, digest}
	if h.Tee != nil {
		sinks = append(sinks, &dropOnError{w: h.Tee})
	}
	out := &countingWriter{w: io.MultiWriter(sinks...)}
	mw, err := b.writeMembers(ctx, comp, entries, sc, out, h.Progress)
	if err != nil {
		return nil, nil, err
	}
	if sc == nil {
		sc = mw.scanned
	}
	b.compressed.Add(mw.compressed)
	if err := fileBuf.Flush(); err != nil {
		return nil, nil, fmt.Errorf("writing layer to cache: %w", err)
	}
	l = &Layer{
		digest: hashOf(digest), diffID: sc.diffID, size: out.n, uncompressedSize: sc.size,
		compression: comp.Algorithm, secrets: sc.found.secrets, elf: sc.found.elf, files: sc.found.files,
	}
	l.path = b.Cache.blobPath(l.digest)
	if !b.Cache.hasBlob(l.digest, l.size) {
		// else the same bytes are stored already (for another selector):
		// keep that file, whose mtime the other selector's record checks
		if err := os.Rename(tmp.Name(), l.path); err != nil {
			return nil, nil, fmt.Errorf("storing layer in cache: %w", err)
		}
		stored = true
	}
	return l, sc, b.Cache.storeChunks(comp, l.digest, mw.written)
}

func hashOf(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

// WriteTar writes the deterministic tar stream of entries to w.
func (b *Builder) WriteTar(ctx context.Context, w io.Writer, entries []Entry) error {
	return b.writeTar(ctx, w, entries, &notes{})
}

func (b *Builder) writeTar(ctx context.Context, w io.Writer, entries []Entry, found *notes) error {
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
		if err := b.writeEntry(tw, e, mtime, found); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finishing layer tar: %w", err)
	}
	return nil
}

func (b *Builder) writeEntry(tw *tar.Writer, e *Entry, mtime time.Time, found *notes) error {
	data := e.Data
	if e.Gzip {
		var err error
		if data, err = b.gzipFile(e, found); err != nil {
			return err
		}
	} else if data != nil {
		found.sawHead(e, data)
	}
	if data != nil {
		sum := sha256.Sum256(data)
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
	case e.Type == tar.TypeReg && e.Source != "":
		h := sha256.New()
		if err := b.copyFile(io.MultiWriter(tw, h), e, found, func(head []byte) error { return found.data(e, e.Size, head) }); err != nil {
			return err
		}
		found.sawFile(e.Name, h.Sum(nil))
	case e.Type == tar.TypeReg:
		found.sawFile(e.Name, emptySHA256[:])
	}
	return nil
}

// errChanged reports a source that changed between the walk and the read.
var errChanged = errors.New("changed while the layer was being built; rebuild when it is stable")

// copyFile copies e's source into tw, failing if the file is not the one
// that was walked (size, mtime, ctime or inode changed) or changes while it
// is read.
func (b *Builder) copyFile(w io.Writer, e *Entry, found *notes, beforeData func(head []byte) error) error {
	f, err := os.Open(e.Source)
	if err != nil {
		return fmt.Errorf("layer source %s: %w", e.Source, unwrapPathError(err))
	}
	defer f.Close()
	b.filesRead.Add(1)
	if err := sameFile(f, e); err != nil {
		return err
	}
	var r io.Reader = io.LimitReader(f, e.Size)
	var n int64
	if e.secretScan && e.Size <= 1<<20 {
		data, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("reading layer source %s: %w", e.Source, err)
		}
		if why := secretContent(path.Base(e.Name), data); why != "" {
			if e.secretRefuse {
				return secretError(e.Source, why)
			}
			found.secrets = append(found.secrets, SecretFinding{Name: e.Name, Why: why})
		}
		found.sawHead(e, data)
		if err := before(beforeData, data); err != nil {
			return err
		}
		r = bytes.NewReader(data)
	} else {
		// the first bytes tell an ELF file's machine: peek at them on the way
		var buf [elfHeadSize]byte
		k, err := io.ReadFull(r, buf[:min(int64(len(buf)), e.Size)])
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading layer source %s: %w", e.Source, err)
		}
		found.sawHead(e, buf[:k])
		if err := before(beforeData, buf[:k]); err != nil {
			return err
		}
		if _, err := w.Write(buf[:k]); err != nil {
			return fmt.Errorf("writing %s to layer: %w", e.Name, err)
		}
		n = int64(k)
	}
	m, err := io.Copy(w, r)
	n += m
	if err != nil {
		return fmt.Errorf("reading layer source %s: %w", e.Source, err)
	}
	if n != e.Size {
		return fmt.Errorf("layer source %s: %w (was %d bytes, read %d)", e.Source, errChanged, e.Size, n)
	}
	return sameFile(f, e)
}

func before(f func([]byte) error, head []byte) error {
	if f == nil {
		return nil
	}
	return f(head)
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

// gzipFile returns the deterministic gzip of e's source: best compression,
// no name and no mtime in the header.
func (b *Builder) gzipFile(e *Entry, found *notes) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if err := b.copyFile(zw, e, found, nil); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("precompressing %s: %w", e.Source, err)
	}
	return buf.Bytes(), nil
}
