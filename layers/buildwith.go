package layers

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// BuildWith is Build with hooks. A layer is looked up by its selector (the
// files' stat), in the cache or as a layer the registry had; then, if the
// cache held content records, by its content key (the files' hashes, on
// every core), so a fresh checkout is neither tarred nor compressed; then,
// when a registry may have it (h.Reuse), by the diffID a scan of the tar
// gives, compressing nothing. Otherwise only the chunks the cache lacks are
// compressed.
func (b *Builder) BuildWith(ctx context.Context, entries []Entry, h Hooks) (*Layer, error) {
	// A zero Compression means the defaults (not gzip level 0, which stores).
	comp, err := b.Compression.Normalize()
	if err != nil {
		return nil, err
	}
	sel := b.Cache.selectorRecord(b.selector(comp, entries))
	if l, err := b.recorded(ctx, sel, comp, entries, h); l != nil {
		b.hits.Add(1)
		return l, err
	}
	b.misses.Add(1)
	l, known, content, err := b.byContent(ctx, comp, entries, sel, h)
	if err != nil || l != nil {
		return l, err
	}
	// store records l under sel and its content key (known holds every
	// file's sum once the tar is scanned or written)
	store := func(l *Layer) (*Layer, error) {
		if content == "" {
			content = b.Cache.contentRecord(b.contentKey(comp, entries, known))
		}
		return l, b.Cache.store(comp, l, sel, content)
	}
	var sc *scanned
	if h.Reuse != nil && (h.Reusable == nil || h.Reusable(ctx)) {
		// learn the diffID first: the registry may have the layer
		if sc, err = b.scan(ctx, entries, known); err != nil {
			return nil, err
		}
		if rb, ok := h.Reuse(ctx, sc.diffID, comp.Key()); ok {
			b.registryHits.Add(1)
			// remembered: the next build here asks the registry again, and
			// reads no file
			return store(sc.remote(comp, rb))
		}
	}
	if l, err = b.write(ctx, comp, entries, sc, known, h); err != nil {
		return nil, err
	}
	return store(l)
}

// byContent looks the layer up by its content key when the cache held
// content records when it was opened (else, a cold cache, the files are
// hashed as the tar is written or scanned), recording a hit under the
// selector record sel. It returns the files' sums it learnt and the
// content record, if it named one.
func (b *Builder) byContent(ctx context.Context, comp Compression, entries []Entry, sel string, h Hooks) (*Layer, sums, string, error) {
	if !b.Cache.hadContent {
		return nil, make(sums, len(entries)), "", nil
	}
	known, err := b.sourceSums(ctx, entries)
	if err != nil {
		return nil, nil, "", err
	}
	content := b.Cache.contentRecord(b.contentKey(comp, entries, known))
	l, err := b.recorded(ctx, content, comp, entries, h)
	if l == nil {
		return nil, known, content, nil
	}
	b.contentHits.Add(1)
	if err != nil {
		return nil, nil, "", err
	}
	return l, known, content, b.Cache.store(comp, l, sel)
}

// recorded is the layer the record rec names: in the cache, or in the
// registry when h.Reuse shows it still has the blob; nil on a miss. Gates
// on content apply on a hit as on a miss (the record holds what the build
// that wrote it found): a refused hit is the layer and the gate's error.
func (b *Builder) recorded(ctx context.Context, rec string, comp Compression, entries []Entry, h Hooks) (*Layer, error) {
	l, r := b.Cache.lookup(rec, comp)
	if r != nil && h.Reuse != nil {
		if rb, ok := h.Reuse(ctx, r.DiffID, comp.Key()); ok && rb.Digest == r.Digest {
			sc := &scanned{diffID: r.DiffID, size: r.UncompressedSize, found: notes{secrets: r.Secrets, elf: r.ELF, files: r.Files}}
			l = sc.remote(comp, rb)
		}
	}
	if l == nil {
		return nil, nil
	}
	if l.Remote() {
		b.registryHits.Add(1)
	}
	return l, checkSecretFindings(entries, l.secrets)
}

// scanned is what streaming a layer's tar tells: its diffID and size, and
// what the contents show (secrets, ELF files).
type scanned struct {
	diffID v1.Hash
	size   int64
	found  notes
}

// scan streams entries' tar into a hash, compressing nothing; known are
// the host files' sums, those not hashed yet filled in.
func (b *Builder) scan(ctx context.Context, entries []Entry, known sums) (*scanned, error) {
	sc := &scanned{found: notes{files: []FileDigest{}, sums: known, worker: startSums(known)}}
	defer sc.found.finishSums()
	h := sha256.New()
	w := &countingWriter{w: h}
	if err := b.writeTar(ctx, w, entries, &sc.found); err != nil {
		return nil, err
	}
	sc.found.finishSums()
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
// incompressible data begin; sums, by entry, are the host files' SHA-256,
// given or filled in as they are read.
type notes struct {
	secrets []SecretFinding
	elf     []ELFFile
	files   []FileDigest // never nil once built: a cache record without it is a miss
	cut     *chunker
	sums    sums
	buf     []byte // for copying the files of this pass
	// worker, when set, hashes the host files on another core; pending
	// are the files (index in files, entry) whose sums it owes
	worker  *sumWorker
	pending [][2]int
	ahead   *readAhead // the small files of this pass, read ahead
}

// copyBuffer is the pass's buffer for copying files (io.Copy would make
// one per file: 32 KiB of garbage each).
func (n *notes) copyBuffer() []byte {
	if n.buf == nil {
		n.buf = make([]byte, 64<<10)
	}
	return n.buf
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
	return n.cut.data(size >= storeAbove && incompressible(e.Name, head, e.Gzip), size)
}

// summed gives the chunker the SHA-256 of the data just written.
func (n *notes) summed(sum *[sha256.Size]byte) {
	if n.cut != nil {
		n.cut.sum(sum)
	}
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
// made, else what this pass saw; known are the host files' sums, those not
// hashed yet filled in.
func (b *Builder) write(ctx context.Context, comp Compression, entries []Entry, sc *scanned, known sums, h Hooks) (l *Layer, err error) {
	tmp, err := b.Cache.tempFile("layer-*")
	if err != nil {
		return nil, fmt.Errorf("creating layer file in cache: %w", err)
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
	mw, err := b.writeMembers(ctx, comp, entries, sc, known, out, h.Progress)
	if err != nil {
		return nil, err
	}
	if sc == nil {
		sc = mw.scanned
	}
	b.compressed.Add(mw.compressed)
	if err := fileBuf.Flush(); err != nil {
		return nil, fmt.Errorf("writing layer to cache: %w", err)
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
			return nil, fmt.Errorf("storing layer in cache: %w", err)
		}
		stored = true
	}
	return l, b.Cache.storeChunks(comp, l.digest, mw.written)
}
