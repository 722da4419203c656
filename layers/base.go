package layers

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// BaseFile is the metadata of one path in a base layer.
type BaseFile struct {
	Type     byte   `json:"t"`
	Mode     int64  `json:"m"`
	UID      int    `json:"u"`
	GID      int    `json:"g"`
	Linkname string `json:"l,omitempty"`
}

// contentPath reports the files whose contents a base index keeps.
func contentPath(name string) bool { return name == "etc/passwd" || name == "etc/group" }

// MaxBaseFileSize is the largest file gantry reads from a base image
// (/etc/passwd, /etc/group, ...): 16 MiB, some 200,000 accounts. Such a
// file is read whole (a merge must see every line); a larger one is an
// error, never cut short.
const MaxBaseFileSize = 16 << 20

// tooLarge is the error for a base file over MaxBaseFileSize.
func tooLarge(name string, size int64) error {
	return fmt.Errorf("base /%s is %s, over gantry's %d MiB limit for files it reads from a base image; use a base whose /%s is smaller", name, humanBytes(size), MaxBaseFileSize>>20, name)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// BaseFS answers questions about a base image's filesystem by reading its
// layers from the top down, only as far as needed, each at most once per
// cache: a layer is scanned once into an index file cached by its digest
// (see baseindex.go), which later questions, and later builds, search in
// place without reading the layer or decoding the whole index.
type BaseFS struct {
	cache  *Cache
	layers []v1.Layer   // bottom first
	index  []*baseIndex // indexes small enough to be kept in memory
	sizes  []int64      // uncompressed sizes learnt from indexes, -1 unknown
	// Scanned counts layers read from their blobs (not from the cache).
	Scanned int
	// Tail, when set, reads the last n bytes of a layer's compressed blob
	// (e.g. with an HTTP range request), so the uncompressed size of a gzip
	// layer is known from its trailer without downloading it.
	Tail func(ctx context.Context, l v1.Layer, n int64) ([]byte, error)
	// MaxEntries is the most tar entries a base layer may have (0 means
	// MaxBaseEntries); scanning a layer with more fails.
	MaxEntries int

	runBytes int // records sorted in memory at once while indexing (tests)
}

// NewBaseFS returns a BaseFS over layers (bottom first).
func NewBaseFS(c *Cache, layers []v1.Layer) *BaseFS {
	sizes := make([]int64, len(layers))
	for i := range sizes {
		sizes[i] = -1
	}
	return &BaseFS{cache: c, layers: layers, index: make([]*baseIndex, len(layers)), sizes: sizes}
}

// withIndex calls fn with layer i's index, scanning the layer first if its
// index is not cached.
func (b *BaseFS) withIndex(ctx context.Context, i int, fn func(*baseIndex) error) error {
	if ix := b.index[i]; ix != nil {
		return fn(ix)
	}
	dig, err := b.layers[i].Digest()
	if err != nil {
		return fmt.Errorf("base layer %d: %w", i, err)
	}
	p := indexPath(b.cache, dig.Hex)
	ix, closer, err := openIndexFile(p)
	if err != nil { // not cached (or damaged): scan the layer
		if err := b.scan(ctx, i, dig, p); err != nil {
			return fmt.Errorf("reading base layer %s: %w", dig, err)
		}
		if ix, closer, err = openIndexFile(p); err != nil {
			return fmt.Errorf("reading base index %s: %w", p, err)
		}
	}
	defer closer()
	if _, small := ix.r.(*bytes.Reader); small {
		b.index[i] = ix
	}
	b.sizes[i] = ix.uncompressedSize
	if err := fn(ix); err != nil {
		if errors.Is(err, errBadIndex) {
			return fmt.Errorf("base index %s of layer %s: %w; delete it (or use an empty --cache-dir)", p, dig, err)
		}
		return err
	}
	return nil
}

// lookup finds name in the base: its record and the layer that has it.
func (b *BaseFS) lookup(ctx context.Context, name string) (rec idxRec, layer int, ok bool, err error) {
	for i := len(b.layers) - 1; i >= 0; i-- {
		var found, hidden bool
		err := b.withIndex(ctx, i, func(ix *baseIndex) error {
			r, ok, err := ix.get(name)
			if err != nil {
				return err
			}
			if ok && r.flags&recPresent != 0 {
				rec, found = r, true
				return nil
			}
			hidden, err = ix.hides(name)
			return err
		})
		if err != nil {
			return idxRec{}, 0, false, err
		}
		if found {
			return rec, i, true, nil
		}
		if hidden {
			break
		}
	}
	return idxRec{}, 0, false, nil
}

// Lookup finds name (relative to "/") in the base, honouring whiteouts and
// opaque directories. data holds the file's whole contents for /etc/passwd
// and /etc/group; one over MaxBaseFileSize is an error.
func (b *BaseFS) Lookup(ctx context.Context, name string) (f BaseFile, data []byte, ok bool, err error) {
	name = cleanName(name)
	rec, layer, ok, err := b.lookup(ctx, name)
	if err != nil || !ok {
		return f, nil, false, err
	}
	if contentPath(name) && rec.f.Type == tar.TypeReg && rec.size > MaxBaseFileSize {
		return rec.f, nil, true, tooLarge(name, rec.size)
	}
	if rec.flags&recContent != 0 {
		err = b.withIndex(ctx, layer, func(ix *baseIndex) error {
			data, err = ix.content(rec)
			return err
		})
	}
	return rec.f, data, true, err
}

func cleanName(name string) string { return strings.Trim(path.Clean("/"+name), "/") }

// UncompressedSize is the size of layer i's tar stream. It comes from the
// layer's cached index, else from the gzip trailer (ISIZE, via Tail), else
// from reading the layer.
func (b *BaseFS) UncompressedSize(ctx context.Context, i int) (int64, error) {
	if b.sizes[i] < 0 && b.Tail != nil {
		if n, ok := b.trailerSize(ctx, b.layers[i]); ok {
			return n, nil
		}
	}
	if b.sizes[i] < 0 {
		if err := b.withIndex(ctx, i, func(*baseIndex) error { return nil }); err != nil {
			return 0, err
		}
	}
	return b.sizes[i], nil
}

// trailerSize reads a gzip layer's ISIZE (the uncompressed size mod 2^32),
// cached by digest. Layers of 4 GiB or more, or not gzip, are not sized so.
func (b *BaseFS) trailerSize(ctx context.Context, l v1.Layer) (int64, bool) {
	dig, err := l.Digest()
	if err != nil {
		return 0, false
	}
	file := filepath.Join(b.cache.Dir(), "base", dig.Hex+".size")
	if raw, err := b.cache.readFile(file); err == nil && raw != nil {
		if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			return n, true
		}
	}
	if _, err := os.Stat(indexPath(b.cache, dig.Hex)); err == nil {
		return 0, false // an index is cached: exact, and read by withIndex
	}
	mt, err := l.MediaType()
	size, serr := l.Size()
	if err != nil || serr != nil || !strings.HasSuffix(string(mt), "gzip") || size < 20 || size >= 1<<32 {
		return 0, false
	}
	tail, err := b.Tail(ctx, l, 4)
	if err != nil || len(tail) != 4 {
		return 0, false
	}
	n := int64(binary.LittleEndian.Uint32(tail))
	if n < 1024 { // a tar stream is at least 1 KiB: this is not a plain gzip trailer
		return 0, false
	}
	if err := b.cache.writeFile(file, []byte(strconv.FormatInt(n, 10))); err != nil {
		return 0, false
	}
	return n, true
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// scan reads layer i once and writes its index to dst.
func (b *BaseFS) scan(ctx context.Context, i int, dig v1.Hash, dst string) error {
	l := b.layers[i]
	raw, err := l.Compressed()
	if err != nil {
		return err
	}
	defer raw.Close()
	size, err := l.Size()
	if err != nil {
		return err
	}
	// verified as read, whatever the layer's source (an OCI layout does not
	// check its blobs)
	rc := &verifier{rc: raw, h: sha256.New(), want: dig, size: size, name: "base layer " + dig.String()}
	zr, err := decompress(ctxReader{ctx, rc})
	if err != nil {
		return err
	}
	defer zr.Close()
	counted := &countingReader{r: zr}
	tr := tar.NewReader(counted)
	w := newIndexWriter(filepath.Join(b.cache.Dir(), "tmp"), b.runBytes)
	defer w.close()
	maxEntries := int64(b.MaxEntries)
	if maxEntries <= 0 {
		maxEntries = MaxBaseEntries
	}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if w.entries++; w.entries > maxEntries {
			return fmt.Errorf("it has more than %d entries, gantry's limit for a base layer (an entry bomb?); use another base image", maxEntries)
		}
		name := cleanName(h.Name)
		if name == "" || strings.IndexByte(name, 0) >= 0 {
			continue
		}
		if err := w.implyParents(name); err != nil {
			return err
		}
		dir, base := parentDir(name), path.Base(name)
		var rec idxRec
		switch {
		case base == ".wh..wh..opq":
			rec = idxRec{key: indexKey(dir), flags: recOpaque}
		case strings.HasPrefix(base, ".wh..wh."):
			continue // other AUFS metadata
		case strings.HasPrefix(base, ".wh."):
			rec = idxRec{key: indexKey(path.Join(dir, strings.TrimPrefix(base, ".wh."))), flags: recWhiteout}
		default:
			rec = idxRec{key: indexKey(name), flags: recPresent, size: h.Size,
				f: BaseFile{Type: h.Typeflag, Mode: h.Mode, UID: h.Uid, GID: h.Gid, Linkname: h.Linkname}}
			if contentPath(name) && h.Typeflag == tar.TypeReg && h.Size <= MaxBaseFileSize {
				// streamed to the index's contents file, not held
				if err := w.keep(&rec, tr, h.Size); err != nil {
					return err
				}
			}
		}
		if err := w.add(&rec); err != nil {
			return err
		}
	}
	// the rest (tar padding) counts towards the uncompressed size
	if _, err := io.Copy(io.Discard, counted); err != nil {
		return err
	}
	if err := w.finish(ctx, dst, counted.n); err != nil {
		return err
	}
	b.Scanned++
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
