package assemble

import (
	"context"

	"github.com/gantry-dev/gantry/layers"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"
)

// prefetch indexes the base layers of every platform of ib (downloading
// those the cache has no index of) while the new layers are built, when
// the build will read the base's files: a user to merge into /etc/passwd,
// a Python or Debian layer, or the SBOM (os-release and the package
// database, usually in the bottom layer, so every layer is read anyway).
// Each platform's build waits for its own prefetch before it reads the
// base (so no layer is read twice); wait stops and joins every prefetch,
// and must be called before the image's build returns. A prefetch failure
// is not an error: the build reads the layer itself and reports what went
// wrong.
func (e *Engine) prefetch(ctx context.Context, ib *imageBuild) (ready func(i int), wait func()) {
	needed := ib.s.User != nil || !ib.s.NoSBOM // the SBOM reads the base's package database
	for _, ls := range ib.s.Layers {
		needed = needed || ls.Python != nil || ls.Debian != nil
	}
	if !needed {
		return func(int) {}, func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make([]chan struct{}, len(ib.plats))
	for i := range done {
		done[i] = make(chan struct{})
	}
	var g errgroup.Group
	g.Go(func() error {
		for i, p := range ib.plats {
			e.prefetchPlatform(ctx, ib, p)
			close(done[i])
		}
		return nil
	})
	return func(i int) { <-done[i] }, func() { cancel(); g.Wait() }
}

func (e *Engine) prefetchPlatform(ctx context.Context, ib *imageBuild, p platformImage) {
	if ctx.Err() != nil {
		return
	}
	bl, err := p.image.Layers()
	if err == nil {
		err = e.baseFS(bl, ib.sinks.indexes).Prefetch(ctx)
	}
	if err != nil && ctx.Err() == nil {
		e.log.Debug("prefetching base layers failed; the build reads them itself", "image", ib.s.Name, "error", err)
	}
}

// baseFS is the filesystem of base layers bl, which reads layer sizes by
// range and asks the index sources (sinks that may have them) before
// downloading a layer.
func (e *Engine) baseFS(bl []v1.Layer, indexes []IndexSource) *layers.BaseFS {
	fsys := layers.NewBaseFS(e.cache, bl)
	fsys.Tail = e.registry.Tail
	fsys.FetchIndex = fetchIndex(indexes)
	return fsys
}

// baseIndexes adds the cached index files of bl's layers to into.
func (e *Engine) baseIndexes(bl []v1.Layer, into map[string]string) {
	for _, l := range bl {
		if d, err := l.Digest(); err == nil {
			if p, ok := e.cache.BaseIndexFile(d); ok {
				into[d.String()] = p
			}
		}
	}
}
