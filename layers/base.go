package layers

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
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

// contentPaths are the files whose contents a base index keeps.
var contentPaths = map[string]bool{"etc/passwd": true, "etc/group": true}

// baseIndex is what one base layer holds, read once and cached by the
// layer's digest: entries' metadata, whiteouts, /etc/passwd and /etc/group.
type baseIndex struct {
	UncompressedSize int64               `json:"size"`
	Files            map[string]BaseFile `json:"files"`
	Whiteouts        []string            `json:"whiteouts,omitempty"`
	Opaque           []string            `json:"opaque,omitempty"`
	Contents         map[string][]byte   `json:"contents,omitempty"`
}

// BaseFS answers questions about a base image's filesystem by reading its
// layers from the top down, only as far as needed, each at most once per
// cache (indexes are cached by layer digest, so a rebuild reads no layer).
type BaseFS struct {
	cache  *Cache
	layers []v1.Layer // bottom first
	index  []*baseIndex
	// Scanned counts layers read from their blobs (not from the cache).
	Scanned int
	// Tail, when set, reads the last n bytes of a layer's compressed blob
	// (e.g. with an HTTP range request), so the uncompressed size of a gzip
	// layer is known from its trailer without downloading it.
	Tail func(ctx context.Context, l v1.Layer, n int64) ([]byte, error)
}

// NewBaseFS returns a BaseFS over layers (bottom first).
func NewBaseFS(c *Cache, layers []v1.Layer) *BaseFS {
	return &BaseFS{cache: c, layers: layers, index: make([]*baseIndex, len(layers))}
}

// Lookup finds name (relative to "/") in the base, honouring whiteouts and
// opaque directories. data holds the file's contents for /etc/passwd and
// /etc/group.
func (b *BaseFS) Lookup(ctx context.Context, name string) (f BaseFile, data []byte, ok bool, err error) {
	name = strings.Trim(path.Clean("/"+name), "/")
	for i := len(b.layers) - 1; i >= 0; i-- {
		ix, err := b.layerIndex(ctx, i)
		if err != nil {
			return f, nil, false, err
		}
		if f, ok := ix.Files[name]; ok {
			return f, ix.Contents[name], true, nil
		}
		if ix.hides(name) {
			return f, nil, false, nil
		}
	}
	return f, nil, false, nil
}

// hides reports whether this layer deletes name from the layers below it.
func (ix *baseIndex) hides(name string) bool {
	for _, w := range ix.Whiteouts {
		if name == w || strings.HasPrefix(name, w+"/") {
			return true
		}
	}
	for _, o := range ix.Opaque {
		if o == "" || strings.HasPrefix(name, o+"/") {
			return true
		}
	}
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		if f, ok := ix.Files[d]; ok && f.Type != tar.TypeDir {
			return true // an ancestor replaced by a non-directory
		}
	}
	return false
}

// UncompressedSize is the size of layer i's tar stream. It comes from the
// layer's cached index, else from the gzip trailer (ISIZE, via Tail), else
// from reading the layer.
func (b *BaseFS) UncompressedSize(ctx context.Context, i int) (int64, error) {
	if b.index[i] == nil && b.Tail != nil {
		if n, ok := b.trailerSize(ctx, b.layers[i]); ok {
			return n, nil
		}
	}
	ix, err := b.layerIndex(ctx, i)
	if err != nil {
		return 0, err
	}
	return ix.UncompressedSize, nil
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
	if _, err := os.Stat(filepath.Join(b.cache.Dir(), "base", dig.Hex+".json.gz")); err == nil {
		return 0, false // an index is cached: exact, and read once by layerIndex
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

func (b *BaseFS) layerIndex(ctx context.Context, i int) (*baseIndex, error) {
	if b.index[i] != nil {
		return b.index[i], nil
	}
	l := b.layers[i]
	dig, err := l.Digest()
	if err != nil {
		return nil, fmt.Errorf("base layer %d: %w", i, err)
	}
	file := filepath.Join(b.cache.Dir(), "base", dig.Hex+".json.gz")
	if raw, err := b.cache.readFile(file); err == nil && raw != nil {
		if ix, err := decodeIndex(raw); err == nil {
			b.index[i] = ix
			return ix, nil
		}
	}
	ix, err := scanLayer(ctx, l)
	if err != nil {
		return nil, fmt.Errorf("reading base layer %s: %w", dig, err)
	}
	b.Scanned++
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(ix); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if err := b.cache.writeFile(file, buf.Bytes()); err != nil {
		return nil, err
	}
	b.index[i] = ix
	return ix, nil
}

func decodeIndex(raw []byte) (*baseIndex, error) {
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	var ix baseIndex
	if err := json.NewDecoder(zr).Decode(&ix); err != nil {
		return nil, err
	}
	return &ix, nil
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

func scanLayer(ctx context.Context, l v1.Layer) (*baseIndex, error) {
	raw, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	dig, err := l.Digest()
	if err != nil {
		return nil, err
	}
	size, err := l.Size()
	if err != nil {
		return nil, err
	}
	// verified as read, whatever the layer's source (an OCI layout does not
	// check its blobs)
	rc := &verifier{rc: raw, h: sha256.New(), want: dig, size: size, name: "base layer " + dig.String()}
	zr, err := decompress(ctxReader{ctx, rc})
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	counted := &countingReader{r: zr}
	tr := tar.NewReader(counted)
	ix := &baseIndex{Files: map[string]BaseFile{}, Contents: map[string][]byte{}}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		name := strings.Trim(path.Clean("/"+h.Name), "/")
		if name == "" {
			continue
		}
		dir, base := path.Dir(name), path.Base(name)
		if dir == "." {
			dir = ""
		}
		switch {
		case base == ".wh..wh..opq":
			ix.Opaque = append(ix.Opaque, dir)
			continue
		case strings.HasPrefix(base, ".wh."):
			ix.Whiteouts = append(ix.Whiteouts, path.Join(dir, strings.TrimPrefix(base, ".wh.")))
			continue
		}
		ix.Files[name] = BaseFile{Type: h.Typeflag, Mode: h.Mode, UID: h.Uid, GID: h.Gid, Linkname: h.Linkname}
		if contentPaths[name] && h.Typeflag == tar.TypeReg {
			data, err := io.ReadAll(io.LimitReader(tr, 4<<20))
			if err != nil {
				return nil, err
			}
			ix.Contents[name] = data
		}
	}
	// the rest (tar padding) counts towards the uncompressed size
	if _, err := io.Copy(io.Discard, counted); err != nil {
		return nil, err
	}
	ix.UncompressedSize = counted.n
	return ix, nil
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
