package layers

import (
	"bytes"
	"context"
	"fmt"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Prefetch indexes every layer whose index the cache lacks, so that later
// lookups (the user merge's /etc/passwd, a Python layer's interpreter)
// find them cached. It is meant to run beside the build of the new layers,
// on a BaseFS of its own (a BaseFS is not safe for concurrent use).
func (b *BaseFS) Prefetch(ctx context.Context) error {
	for i := range b.layers {
		if err := b.withIndex(ctx, i, func(*baseIndex) error { return nil }); err != nil {
			return fmt.Errorf("prefetching base layer %d: %w", i, err)
		}
	}
	return nil
}

// fetchIndex stores the index FetchIndex gives for layer dig at p, if it
// parses.
func (b *BaseFS) fetchIndex(ctx context.Context, dig v1.Hash, p string) bool {
	if b.FetchIndex == nil {
		return false
	}
	data, ok := b.FetchIndex(ctx, dig)
	if !ok {
		return false
	}
	if _, err := openIndex(bytes.NewReader(data), int64(len(data))); err != nil {
		return false
	}
	return b.cache.writeFile(p, data) == nil
}

// BaseIndexFile is where the cache keeps the index of base layer dig, and
// whether it is there.
func (c *Cache) BaseIndexFile(dig v1.Hash) (string, bool) {
	p := indexPath(c, dig.Hex)
	_, err := os.Stat(p)
	return p, err == nil
}
