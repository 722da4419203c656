package layers

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

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
