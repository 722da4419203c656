package layers

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ContextReader is r that stops reading, with ctx's error, once ctx ends:
// for copies of layers and blobs that Ctrl-C must stop.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

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
		return w.addTarEntry(h, tr)
	})
	if err != nil {
		return err
	}
	return w.finish(ctx, dst, n)
}

// addTarEntry adds the record of one tar entry (and of the directories it
// implies), keeping its content if contentPath names it.
func (w *indexWriter) addTarEntry(h *tar.Header, tr io.Reader) error {
	name := cleanName(h.Name)
	if name == "" || strings.IndexByte(name, 0) >= 0 {
		return nil
	}
	if err := w.implyParents(name); err != nil {
		return err
	}
	target, flag := entryTarget(name)
	if flag == 0 {
		return nil
	}
	// the record is built here, not returned by a helper: so its key stays
	// off the heap, as it is encoded into the run and then dropped
	rec := idxRec{key: indexKey(target), flags: flag}
	if flag == recPresent {
		rec.size, rec.f = h.Size, tarBaseFile(h)
		if contentPath(name) && h.Typeflag == tar.TypeReg && h.Size <= MaxBaseFileSize {
			// streamed to the index's contents file, not held
			if err := w.keep(&rec, tr, h.Size); err != nil {
				return err
			}
		}
	}
	return w.add(&rec)
}

// entryTarget is the path the record of tar entry name is for, and the
// record's flag: its directory, recOpaque for an opaque marker; the hidden
// path, recWhiteout for a whiteout; else name itself, recPresent. Other
// AUFS metadata has none (flag 0) and is skipped.
func entryTarget(name string) (target string, flag byte) {
	dir, base := parentDir(name), path.Base(name)
	switch {
	case base == ".wh..wh..opq":
		return dir, recOpaque
	case strings.HasPrefix(base, ".wh..wh."):
		return "", 0 // other AUFS metadata
	case strings.HasPrefix(base, ".wh."):
		return path.Join(dir, strings.TrimPrefix(base, ".wh.")), recWhiteout
	}
	return name, recPresent
}

// tarBaseFile is the metadata of tar entry h.
func tarBaseFile(h *tar.Header) BaseFile {
	f := BaseFile{Type: h.Typeflag, Mode: h.Mode, UID: h.Uid, GID: h.Gid, Linkname: h.Linkname}
	if h.Typeflag == tar.TypeReg {
		f.Size = h.Size
	}
	return f
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
