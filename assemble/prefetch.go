package assemble

import (
	"context"

	"github.com/gantry-dev/gantry/layers"
	"golang.org/x/sync/errgroup"
)

// prefetch indexes the base layers of every platform of ib (downloading
// those the cache has no index of) while the new layers are built, when
// the build will read the base's files: a user to merge into /etc/passwd,
// a Python layer, or the SBOM (the base's package database). Each platform's build waits for its own prefetch
// before it reads the base (so no layer is read twice); wait stops and
// joins every prefetch, and must be called before the image's build
// returns. A prefetch failure is not an error: the build reads the layer
// itself and reports what went wrong.
func (e *Engine) prefetch(ctx context.Context, ib *imageBuild) (ready func(i int), wait func()) {
	needed := ib.s.User != nil || !ib.s.NoSBOM // the SBOM reads the base's package database
	for _, ls := range ib.s.Layers {
		needed = needed || ls.Python != nil
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
			e.prefetchPlatform(ctx, ib.s.Name, p)
			close(done[i])
		}
		return nil
	})
	return func(i int) { <-done[i] }, func() { cancel(); g.Wait() }
}

func (e *Engine) prefetchPlatform(ctx context.Context, image string, p platformImage) {
	if ctx.Err() != nil {
		return
	}
	bl, err := p.image.Layers()
	if err == nil {
		err = layers.NewBaseFS(e.cache, bl).Prefetch(ctx)
	}
	if err != nil && ctx.Err() == nil {
		e.log.Debug("prefetching base layers failed; the build reads them itself", "image", image, "error", err)
	}
}
