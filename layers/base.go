package layers

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
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
	// FetchIndex, when set, is asked for the index of a layer the cache
	// has none of (e.g. from a registry shared by CI runners) before the
	// layer is downloaded; an index that does not parse is not used.
	FetchIndex func(ctx context.Context, layer v1.Hash) ([]byte, bool)

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
	if err != nil && b.fetchIndex(ctx, dig, p) {
		ix, closer, err = openIndexFile(p)
	}
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

func cleanName(name string) string { return strings.Trim(path.Clean("/"+name), "/") }
