package assemble

import (
	"context"
	"io"
	"sync"

	"github.com/gantry-dev/gantry/assemble/spec"
	"github.com/gantry-dev/gantry/layers"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Sink is where built images go (package sink has the registry, OCI
// layout and tarball). A run calls Prepare once with every image (to fail
// before anything is written), Write for each image, then Commit; on any
// failure it calls Abort, which leaves no partial output behind. Abort may
// come before Prepare.
type Sink interface {
	Prepare(ctx context.Context, images []*Built) error
	Write(ctx context.Context, b *Built) (refs []string, err error)
	Commit(ctx context.Context) error
	Abort()
}

// Checker is a Sink that can refuse the run's images before anything is
// built: a destination that is not a valid reference, or one it may not
// write (credentials, push permission), so a 401 costs a second, not a
// build.
type Checker interface {
	Sink
	Check(ctx context.Context, specs []spec.ImageSpec) error
}

// LayerStreamer is a Sink that can take a new layer's compressed bytes
// while the layer is built, so that building and uploading overlap.
type LayerStreamer interface {
	Sink
	// StreamLayer returns where to write a new layer of image s, or nil.
	StreamLayer(ctx context.Context, s spec.ImageSpec) LayerStream
}

// LayerReuser is a Sink that may hold a new layer already: found by its
// content (diffID) and compression in what the sink has (for a registry:
// the images at the destination tags and --cache-from), and proven there
// (a HEAD or a mount) for image s. A reused layer is neither compressed
// nor uploaded.
type LayerReuser interface {
	Sink
	// Reusable reports whether the sink knows any layer image s might
	// reuse (else a layer is built in one pass, without asking first).
	Reusable(ctx context.Context, s spec.ImageSpec) bool
	ReuseLayer(ctx context.Context, s spec.ImageSpec, diffID v1.Hash, compression string) (*layers.RemoteBlob, bool)
}

// IndexSource is a Sink that may have the index of a base layer (what
// reading it for /etc/passwd and the SBOM learnt), so that the layer need
// not be downloaded; an index that does not parse is not used.
type IndexSource interface {
	Sink
	BaseIndex(ctx context.Context, layer v1.Hash) ([]byte, bool)
}

// fetchIndex is the base filesystem's hook asking each source in turn.
func fetchIndex(sources []IndexSource) func(context.Context, v1.Hash) ([]byte, bool) {
	if len(sources) == 0 {
		return nil
	}
	return func(ctx context.Context, layer v1.Hash) ([]byte, bool) {
		for _, s := range sources {
			if b, ok := s.BaseIndex(ctx, layer); ok {
				return b, true
			}
		}
		return nil, false
	}
}

// reuseHooks adds to h the builder's hooks asking each reuser that knows
// layers for s in turn. What the reusers know is read only when the
// builder first asks (a layer the cache has, the usual rebuild, reads
// nothing from them).
func reuseHooks(reusers []LayerReuser, s spec.ImageSpec, h layers.Hooks) layers.Hooks {
	if len(reusers) == 0 {
		return h
	}
	var (
		once sync.Once
		some []LayerReuser
	)
	h.Reusable = func(ctx context.Context) bool {
		once.Do(func() {
			for _, r := range reusers {
				if r.Reusable(ctx, s) {
					some = append(some, r)
				}
			}
		})
		return len(some) > 0
	}
	h.Reuse = func(ctx context.Context, diffID v1.Hash, comp string) (*layers.RemoteBlob, bool) {
		h.Reusable(ctx)
		for _, r := range some {
			if rb, ok := r.ReuseLayer(ctx, s, diffID, comp); ok {
				return rb, true
			}
		}
		return nil, false
	}
	return h
}

// LayerStream takes one layer's compressed bytes. A stream whose Write
// fails is dropped; the build goes on and the sink writes the layer as
// usual.
type LayerStream interface {
	io.Writer
	// Finish ends the stream with the layer's digest, or nil when the
	// layer failed to build or nothing was streamed (a cached layer). It
	// returns only when the stream's own work is done.
	Finish(digest *v1.Hash)
}

// streams fans a layer out to every sink that takes it while it is built.
type streams []LayerStream

func openStreams(ctx context.Context, streamers []LayerStreamer, s spec.ImageSpec) streams {
	var out streams
	for _, st := range streamers {
		if ls := st.StreamLayer(ctx, s); ls != nil {
			out = append(out, ls)
		}
	}
	return out
}

// writer is the builder's tee: nil when nothing streams.
func (ss streams) writer() io.Writer {
	switch len(ss) {
	case 0:
		return nil
	case 1:
		return ss[0]
	}
	return &fanOut{ss: ss, failed: make([]bool, len(ss))}
}

func (ss streams) finish(d *v1.Hash) {
	for _, s := range ss {
		s.Finish(d)
	}
}

// fanOut writes to every stream that has not failed; one failing does not
// stop the others.
type fanOut struct {
	ss     streams
	failed []bool
}

func (f *fanOut) Write(p []byte) (int, error) {
	for i, s := range f.ss {
		if !f.failed[i] {
			if _, err := s.Write(p); err != nil {
				f.failed[i] = true
			}
		}
	}
	return len(p), nil
}
