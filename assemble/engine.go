// Package assemble plans and runs a build: for each image it resolves the
// base per platform, builds the new layers once, writes each platform's
// config and manifest, checks every gate, and hands the results to sinks.
package assemble

import (
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/assemble/progress"
	"github.com/gantry-dev/gantry/assemble/registry"
	"github.com/gantry-dev/gantry/layers"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Options configure an Engine.
type Options struct {
	// CacheDir holds layer blobs and base-layer indexes (default: the user's
	// cache directory).
	CacheDir string
	// Registry reaches registries for bases (default: a client with the
	// default keychain).
	Registry *registry.Client
	// Epoch is the time written as every mtime and as the config's created
	// (default 1970-01-01T00:00:00Z; the CLI passes $SOURCE_DATE_EPOCH).
	Epoch *time.Time
	// Logger receives log lines (default: discard).
	Logger *slog.Logger
	// Progress receives steps for progress bars or lines (default: none).
	Progress progress.Progress
	// Outputs are host paths the run writes (an OCI layout, a tarball): a
	// layer whose source holds one leaves it out, as it does the cache.
	Outputs []string
	// Attest says who builds, for the images' provenance.
	Attest AttestOptions
}

// Engine builds images. It holds what every run shares — the layer cache,
// one layer builder per compression, the registry client — and nothing of
// any one run, so each layer is built once and runs do not see each other.
type Engine struct {
	cache    *layers.Cache
	registry *registry.Client
	epoch    time.Time
	log      *slog.Logger
	progress progress.Progress
	own      []string // absolute host paths no layer may take in: the cache, the outputs
	attest   AttestOptions
	epochSet bool // Epoch was given (SOURCE_DATE_EPOCH): provenance may carry times

	mu       sync.Mutex
	builders map[string]*layers.Builder
}

// NewEngine opens the cache and prepares an engine.
func NewEngine(o Options) (*Engine, error) {
	if o.CacheDir == "" {
		d, err := layers.DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		o.CacheDir = d
	}
	cache, err := layers.OpenCache(o.CacheDir)
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Progress = progress.Or(o.Progress)
	if o.Registry == nil {
		if o.Registry, err = registry.New(registry.Options{Logger: o.Logger, Progress: o.Progress}); err != nil {
			return nil, err
		}
	}
	epoch := time.Unix(0, 0).UTC()
	if o.Epoch != nil {
		epoch = o.Epoch.UTC()
	}
	own := []string{cache.Dir()}
	for _, p := range o.Outputs {
		if a, err := filepath.Abs(p); err == nil {
			own = append(own, a)
		}
	}
	return &Engine{cache: cache, registry: o.Registry, epoch: epoch, log: o.Logger, progress: o.Progress, own: own, builders: map[string]*layers.Builder{},
		attest: o.Attest, epochSet: o.Epoch != nil}, nil
}

func (e *Engine) builder(c layers.Compression) *layers.Builder {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := c.Key()
	if b, ok := e.builders[k]; ok {
		return b
	}
	b := &layers.Builder{Cache: e.cache, Compression: c, MTime: e.epoch}
	e.builders[k] = b
	return b
}

// LayerStats sums what the layer builders did.
func (e *Engine) LayerStats() layers.Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	var s layers.Stats
	for _, b := range e.builders {
		bs := b.Stats()
		s.FilesRead += bs.FilesRead
		s.Hits += bs.Hits
		s.Misses += bs.Misses
		s.ContentHits += bs.ContentHits
		s.RegistryHits += bs.RegistryHits
		s.Compressed += bs.Compressed
	}
	return s
}

// tracked wraps a new layer so reading its blob (to upload or copy it) is
// reported as progress.
func (e *Engine) tracked(image string, l *layers.Layer) v1.Layer {
	d, _ := l.Digest()
	return progress.Layer(l, image+": blob "+progress.Short(d.Hex), e.progress)
}
