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
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// BaseFile is the metadata of one path in a base layer.
type BaseFile struct {
	Type     byte
	Mode     int64
	UID      int
	GID      int
	Linkname string
	Size     int64 // of a regular file's content
}

// contentPath reports the files whose contents a base index keeps, so that
// reading them needs no second pass over their layer: the account files and
// what tells the distribution and its installed packages.
func contentPath(name string) bool {
	switch name {
	case "etc/passwd", "etc/group", "etc/os-release", "usr/lib/os-release",
		"var/lib/dpkg/status", "lib/apk/db/installed":
		return true
	}
	return false
}

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
	// (e.g. with an HTTP range request), so UncompressedSizeHint can give
	// a lower bound of a gzip layer's size from its trailer without
	// downloading it. UncompressedSize does not use it.
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
// opaque directories, without following symlinks (see Resolve). Only paths
// with a tar entry of their own are found: a directory that only its
// contents imply is listed by ReadDir but not found here.
func (b *BaseFS) Lookup(ctx context.Context, name string) (f BaseFile, ok bool, err error) {
	rec, _, ok, err := b.lookup(ctx, cleanName(name))
	return rec.f, ok, err
}

// maxSymlinkHops is how many symlinks Resolve follows (as Linux's MAXSYMLINKS).
const maxSymlinkHops = 40

// Resolve returns the path name really is in the image: every symlink on
// the way (in a parent or at the end, relative or absolute, for at most 40
// hops) is followed against the image root, as a container sees it. A link
// that climbs above the root, a loop and a file used as a directory are
// errors. The result need not exist (Lookup tells); its parents are no
// symlinks, so writing it in a new layer writes what name shows.
func (b *BaseFS) Resolve(ctx context.Context, name string) (string, error) {
	// not path.Clean: "a/.." is where a's target's parent is, not "."
	start := strings.Trim(name, "/")
	todo := strings.Split(start, "/")
	resolved, hops := "", 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if resolved == "" {
				return "", fmt.Errorf("resolving /%s in the base image: a symlink on the way climbs above the image root", start)
			}
			resolved = parentDir(resolved)
			continue
		}
		next := c
		if resolved != "" {
			next = resolved + "/" + c
		}
		rec, _, ok, err := b.lookup(ctx, next)
		if err != nil {
			return "", err
		}
		switch {
		case ok && rec.f.Type == tar.TypeSymlink:
			if hops++; hops > maxSymlinkHops {
				return "", fmt.Errorf("resolving /%s in the base image: more than %d symlinks on the way (a loop at /%s -> %s?)", start, maxSymlinkHops, next, rec.f.Linkname)
			}
			if rec.f.Linkname == "" {
				return "", fmt.Errorf("resolving /%s in the base image: /%s is a symlink to nothing", start, next)
			}
			if strings.HasPrefix(rec.f.Linkname, "/") {
				resolved = ""
			}
			todo = append(strings.Split(rec.f.Linkname, "/"), todo...)
			continue
		case ok && rec.f.Type != tar.TypeDir && len(todo) > 0:
			return "", fmt.Errorf("resolving /%s in the base image: /%s is not a directory", start, next)
		}
		resolved = next
	}
	return resolved, nil
}

// ReadFile returns the content of file name in the base, following
// symlinks (Resolve) and hard links. The file must be regular and at most
// MaxBaseFileSize. The files contentPath names come from the index; any
// other is read from its layer once and then kept in the cache.
func (b *BaseFS) ReadFile(ctx context.Context, name string) ([]byte, error) {
	data, _, _, err := b.readFile(ctx, name)
	return data, err
}

// readFile is ReadFile that also returns the file's metadata and the path
// that holds its content.
func (b *BaseFS) readFile(ctx context.Context, name string) ([]byte, BaseFile, string, error) {
	real, err := b.Resolve(ctx, name)
	if err != nil {
		return nil, BaseFile{}, "", err
	}
	for hop := 0; ; hop++ {
		rec, layer, ok, err := b.lookup(ctx, real)
		if err != nil {
			return nil, BaseFile{}, "", err
		}
		if !ok {
			return nil, BaseFile{}, "", fmt.Errorf("base image has no /%s: %w", real, fs.ErrNotExist)
		}
		switch rec.f.Type {
		case tar.TypeLink: // a hard link names its target from the root
			if hop >= maxSymlinkHops {
				return nil, BaseFile{}, "", fmt.Errorf("reading /%s in the base image: too many hard links", name)
			}
			if real, err = b.Resolve(ctx, rec.f.Linkname); err != nil {
				return nil, BaseFile{}, "", err
			}
			continue
		case tar.TypeReg:
		default:
			return nil, BaseFile{}, "", fmt.Errorf("base /%s is not a regular file", real)
		}
		if rec.size > MaxBaseFileSize {
			return nil, rec.f, real, tooLarge(real, rec.size)
		}
		var data []byte
		if rec.flags&recContent != 0 {
			err = b.withIndex(ctx, layer, func(ix *baseIndex) error {
				data, err = ix.content(rec)
				return err
			})
		} else {
			data, err = b.extract(ctx, layer, real)
		}
		return data, rec.f, real, err
	}
}

// extract reads the content of regular file name from layer i (the last
// entry of that name) and keeps it in the cache, by layer and name.
func (b *BaseFS) extract(ctx context.Context, i int, name string) ([]byte, error) {
	l := b.layers[i]
	dig, err := l.Digest()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(name))
	file := filepath.Join(b.cache.Dir(), "base", dig.Hex+"-"+hex.EncodeToString(sum[:16])+".file")
	if data, err := b.cache.readFile(file); err == nil && data != nil {
		return data, nil
	}
	var data []byte
	found := false
	_, err = b.readLayer(ctx, l, func(h *tar.Header, r io.Reader) error {
		if h.Typeflag != tar.TypeReg || cleanName(h.Name) != name {
			return nil
		}
		if h.Size > MaxBaseFileSize {
			return tooLarge(name, h.Size)
		}
		d, err := io.ReadAll(r)
		data, found = d, true
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading /%s from base layer %s: %w", name, dig, err)
	}
	if !found {
		return nil, fmt.Errorf("base layer %s has no regular file /%s, though its index says so; delete %s (or use an empty --cache-dir)", dig, name, indexPath(b.cache, dig.Hex))
	}
	if err := b.cache.writeFile(file, data); err != nil {
		return nil, err
	}
	return data, nil
}

// ReadDir lists the names in directory dir of the base (following
// symlinks to it), sorted, honouring whiteouts and opaque directories
// across layers. A directory that only its contents imply is listed too.
func (b *BaseFS) ReadDir(ctx context.Context, dir string) ([]string, error) {
	real, err := b.Resolve(ctx, dir)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{} // names decided by an upper layer
	var names []string
	exists := real == ""
	for i := len(b.layers) - 1; i >= 0; i-- {
		stop := false
		err := b.withIndex(ctx, i, func(ix *baseIndex) error {
			r, ok, err := ix.get(real)
			if err != nil {
				return err
			}
			if real != "" && ok && r.flags&recPresent != 0 && r.f.Type != tar.TypeDir {
				if !exists {
					return fmt.Errorf("base /%s is not a directory", real)
				}
				stop = true // replaced by a file here: nothing below counts
				return nil
			}
			if ok && r.flags&(recPresent|recImplied) != 0 {
				exists = true
			}
			var whiteouts []string
			err = ix.children(real, func(base string, c idxRec) error {
				if c.flags&(recPresent|recImplied) != 0 && !seen[base] {
					seen[base] = true
					names = append(names, base)
				}
				if c.flags&recWhiteout != 0 {
					whiteouts = append(whiteouts, base)
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, w := range whiteouts { // they hide the layers below only
				seen[w] = true
			}
			hidden, err := ix.hides(real)
			stop = hidden || ok && r.flags&recOpaque != 0
			return err
		})
		if err != nil {
			return nil, err
		}
		if stop {
			break
		}
	}
	if !exists {
		return nil, fmt.Errorf("base image has no directory /%s: %w", real, fs.ErrNotExist)
	}
	sort.Strings(names)
	return names, nil
}

func cleanName(name string) string { return strings.Trim(path.Clean("/"+name), "/") }

// UncompressedSize is the exact size of layer i's tar stream, for size
// gates: from the layer's cached index, else by reading the layer once
// (which caches its index, by digest, for every later question and build).
//
// It never comes from the gzip trailer alone: ISIZE is the size mod 2^32
// of the last gzip member only, so a layer of 4 GiB or more, or made of
// several members (concatenated gzip, pigz-style blocks, eStargz), has a
// trailer that under-reports it, and no read of the blob's ends can tell
// a single member from several with ordinary headers. A gate that needs
// sizes may therefore read the base layers (once per cache).
func (b *BaseFS) UncompressedSize(ctx context.Context, i int) (int64, error) {
	if b.sizes[i] < 0 {
		if err := b.withIndex(ctx, i, func(*baseIndex) error { return nil }); err != nil {
			return 0, err
		}
	}
	return b.sizes[i], nil
}

// UncompressedSizeHint is layer i's size without reading the layer when
// that can be helped: exact (true) if the layer's index is cached; else, for
// a gzip layer and with Tail set, its trailer's ISIZE, which is only a lower
// bound (false): the true size is never smaller for a valid gzip stream, and
// may be larger by any amount. Without a cheaper way it is UncompressedSize.
// Use it for display, or to fail a size gate early (a sum of lower bounds
// over the limit is over it); never to pass one.
func (b *BaseFS) UncompressedSizeHint(ctx context.Context, i int) (n int64, exact bool, err error) {
	if b.sizes[i] >= 0 {
		return b.sizes[i], true, nil
	}
	l := b.layers[i]
	dig, err := l.Digest()
	if err != nil {
		return 0, false, fmt.Errorf("base layer %d: %w", i, err)
	}
	if ix, closer, err := openIndexFile(indexPath(b.cache, dig.Hex)); err == nil {
		closer()
		return ix.uncompressedSize, true, nil
	}
	if b.Tail != nil {
		if n, ok := b.trailerSize(ctx, l, dig); ok {
			return n, false, nil
		}
	}
	n, err = b.UncompressedSize(ctx, i)
	return n, err == nil, err
}

// trailerSize reads a gzip layer's ISIZE, cached by digest: a lower bound
// of its uncompressed size (see UncompressedSizeHint).
func (b *BaseFS) trailerSize(ctx context.Context, l v1.Layer, dig v1.Hash) (int64, bool) {
	file := filepath.Join(b.cache.Dir(), "base", dig.Hex+".isize")
	if raw, err := b.cache.readFile(file); err == nil && raw != nil {
		if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			return n, true
		}
	}
	mt, err := l.MediaType()
	size, serr := l.Size()
	if err != nil || serr != nil || !strings.HasSuffix(string(mt), "gzip") || size < 20 {
		return 0, false
	}
	tail, err := b.Tail(ctx, l, 4)
	if err != nil || len(tail) != 4 {
		return 0, false
	}
	n := int64(binary.LittleEndian.Uint32(tail))
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

// readLayer reads layer l's tar stream once, verified against its digest,
// calling fn for each entry, and returns the stream's size.
func (b *BaseFS) readLayer(ctx context.Context, l v1.Layer, fn func(*tar.Header, io.Reader) error) (int64, error) {
	dig, err := l.Digest()
	if err != nil {
		return 0, err
	}
	raw, err := l.Compressed()
	if err != nil {
		return 0, err
	}
	defer raw.Close()
	size, err := l.Size()
	if err != nil {
		return 0, err
	}
	// verified as read, whatever the layer's source (an OCI layout does not
	// check its blobs)
	rc := &verifier{rc: raw, h: sha256.New(), want: dig, size: size, name: "base layer " + dig.String()}
	zr, err := decompress(ctxReader{ctx, rc})
	if err != nil {
		return 0, err
	}
	defer zr.Close()
	counted := &countingReader{r: zr}
	tr := tar.NewReader(counted)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
		if err := fn(h, tr); err != nil {
			return 0, err
		}
	}
	// the rest (tar padding) counts towards the uncompressed size, and the
	// digest is checked at the end of the blob
	if _, err := io.Copy(io.Discard, counted); err != nil {
		return 0, err
	}
	b.Scanned++
	return counted.n, nil
}

// scan reads layer i once and writes its index to dst.
func (b *BaseFS) scan(ctx context.Context, i int, dig v1.Hash, dst string) error {
	w := newIndexWriter(filepath.Join(b.cache.Dir(), "tmp"), b.runBytes)
	defer w.close()
	maxEntries := int64(b.MaxEntries)
	if maxEntries <= 0 {
		maxEntries = MaxBaseEntries
	}
	n, err := b.readLayer(ctx, b.layers[i], func(h *tar.Header, tr io.Reader) error {
		if w.entries++; w.entries > maxEntries {
			return fmt.Errorf("it has more than %d entries, gantry's limit for a base layer (an entry bomb?); use another base image", maxEntries)
		}
		name := cleanName(h.Name)
		if name == "" || strings.IndexByte(name, 0) >= 0 {
			return nil
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
			return nil // other AUFS metadata
		case strings.HasPrefix(base, ".wh."):
			rec = idxRec{key: indexKey(path.Join(dir, strings.TrimPrefix(base, ".wh."))), flags: recWhiteout}
		default:
			rec = idxRec{key: indexKey(name), flags: recPresent, size: h.Size,
				f: BaseFile{Type: h.Typeflag, Mode: h.Mode, UID: h.Uid, GID: h.Gid, Linkname: h.Linkname}}
			if h.Typeflag == tar.TypeReg {
				rec.f.Size = h.Size
			}
			if contentPath(name) && h.Typeflag == tar.TypeReg && h.Size <= MaxBaseFileSize {
				// streamed to the index's contents file, not held
				if err := w.keep(&rec, tr, h.Size); err != nil {
					return err
				}
			}
		}
		return w.add(&rec)
	})
	if err != nil {
		return err
	}
	return w.finish(ctx, dst, n)
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
