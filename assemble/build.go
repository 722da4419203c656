package assemble

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/assemble/attest"
	"github.com/gantry-dev/gantry/assemble/progress"
	"github.com/gantry-dev/gantry/assemble/spec"
	"github.com/gantry-dev/gantry/layers"
	"github.com/gantry-dev/gantry/manifests"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Built is one assembled image, ready for sinks.
type Built struct {
	Spec       spec.ImageSpec
	BaseRef    string
	BaseDigest v1.Hash
	// Image is set for a single-manifest result, Index for a multi-platform one.
	Image     v1.Image
	Index     v1.ImageIndex
	Digest    v1.Hash
	MediaType string
	Platforms []PlatformResult
	// Referrers are the SBOM and provenance artifacts of every platform
	// image, which sinks write after the images and before the tags.
	Referrers []*attest.Artifact
	// BaseIndexes are the cache files indexing the base layers the build
	// read, by layer digest (for a shared cache).
	BaseIndexes map[string]string
}

// PlatformResult describes one platform's image.
type PlatformResult struct {
	Platform         string `json:"platform"`
	Digest           string `json:"digest"`
	CompressedSize   int64  `json:"compressedSize"`
	UncompressedSize int64  `json:"uncompressedSize"`
	// UncompressedSizeExact is false when some base layer's size is only
	// its gzip trailer's, a lower bound (no maxSize asked for it exactly).
	UncompressedSizeExact bool `json:"uncompressedSizeExact"`
	// Referrers are the digests of the platform image's SBOM and
	// provenance artifacts.
	Referrers []string `json:"referrers,omitempty"`
}

// Taggable is what sinks write.
func (b *Built) Taggable() remote.Taggable {
	if b.Index != nil {
		return b.Index
	}
	return b.Image
}

// Build assembles every spec. Nothing is written to a sink here, so a
// failure (a missing directory, a base that does not exist, a size over
// maxSize) leaves no trace anywhere but the layer cache.
func (e *Engine) Build(ctx context.Context, specs []spec.ImageSpec) ([]*Built, error) {
	return e.build(ctx, specs, sinkRoles{})
}

func (e *Engine) build(ctx context.Context, specs []spec.ImageSpec, roles sinkRoles) ([]*Built, error) {
	var out []*Built
	for _, s := range specs {
		b, err := e.buildImage(ctx, s, roles)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", s.Name, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// imageBuild is one image being built: its spec and base, and the new
// layers every platform shares.
type imageBuild struct {
	s         spec.ImageSpec
	gates     gates
	base      *base
	plats     []platformImage
	family    manifests.Family
	layerType types.MediaType
	builder   *layers.Builder
	sinks     sinkRoles
	// content has the layers (one, or its parts when split) of each of
	// s.Layers built once for every platform, nil for one built per
	// platform; entries has its entries.
	content [][]*layers.Layer
	entries [][]layers.Entry
	upper   map[string]layers.Entry // every entry of the shared layers, by name
	// perPlatform is set when some layer is built per platform.
	perPlatform bool
	referrers   []*attest.Artifact
}

func (e *Engine) buildImage(ctx context.Context, s spec.ImageSpec, roles sinkRoles) (*Built, error) {
	start := time.Now()
	ib, err := e.plan(ctx, s)
	if err != nil {
		return nil, err
	}
	ib.sinks = roles
	ready, wait := e.prefetch(ctx, ib)
	defer wait()
	for _, ls := range s.Layers {
		if ls.PerPlatform() {
			ib.perPlatform = true
			ib.content, ib.entries = append(ib.content, nil), append(ib.entries, nil)
			continue
		}
		entries, err := e.walk(ls.Name, ls.Spec)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", ls.Name, err)
		}
		parts, err := e.buildLayers(ctx, ib, ls, entries, ib.upper, "")
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", ls.Name, err)
		}
		ib.content, ib.entries = append(ib.content, parts), append(ib.entries, entries)
	}
	built := &Built{Spec: s, BaseRef: ib.base.ref, BaseDigest: ib.base.digest, BaseIndexes: map[string]string{}}
	var children []manifests.Child
	for i, p := range ib.plats {
		ready(i)
		img, pr, err := e.buildPlatform(ctx, ib, p)
		if err != nil {
			return nil, fmt.Errorf("platform %s: %w", manifests.PlatformString(p.platform), fromRegistry(err, ib.base.ref))
		}
		if bl, err := p.image.Layers(); err == nil {
			e.baseIndexes(bl, built.BaseIndexes)
		}
		built.Platforms = append(built.Platforms, pr)
		e.progress.Event(s.Name+" "+pr.Platform, fmt.Sprintf("%s, %s compressed, %s uncompressed", progress.Short(pr.Digest), progress.Size(pr.CompressedSize), progress.Size(pr.UncompressedSize)))
		children = append(children, manifests.Child{Image: img, Platform: p.platform})
		if ib.base.index == nil {
			built.Image = img
		}
	}
	built.Referrers = ib.referrers
	if ib.base.index != nil {
		idx, err := manifests.NewIndex(ib.base.rawIndex, ib.family, children, e.annotations(s, ib.base.ref, ib.base.digest))
		if err != nil {
			return nil, err
		}
		built.Index = idx
		built.Digest, _ = idx.Digest()
		built.MediaType = string(ib.family.IndexType())
	} else {
		built.Digest, _ = built.Image.Digest()
		built.MediaType = string(ib.family.ManifestType())
	}
	e.log.Debug("built", "image", s.Name, "digest", built.Digest, "platforms", len(ib.plats), "took", time.Since(start).Round(time.Millisecond))
	return built, nil
}

// plan resolves s's base and platforms and picks the media types.
func (e *Engine) plan(ctx context.Context, s spec.ImageSpec) (*imageBuild, error) {
	bs, err := e.resolveBase(ctx, s.Base, s.Mirrors, s.Pin)
	if err != nil {
		return nil, err
	}
	plats, err := bs.platforms(s.Platforms)
	if err != nil {
		return nil, err
	}
	if s.Pin != nil {
		if err := s.Pin.Check(bs.ref, bs.digest, platformDigests(plats)); err != nil {
			return nil, err
		}
	}
	family := manifests.FamilyOf(types.MediaType(bs.mediaType))
	switch s.Format {
	case "docker":
		family = manifests.Docker
	case "oci":
		family = manifests.OCI
	}
	if s.Compression.Algorithm == layers.Zstd && s.Format == "docker" {
		return nil, fmt.Errorf("format docker cannot hold zstd layers; use format oci or gzip")
	}
	if s.Compression.Algorithm == layers.Zstd && family == manifests.Docker {
		e.log.Info("zstd layers need OCI media types: writing the whole image as OCI; Docker config fields such as Healthcheck are kept", "image", s.Name)
		family = manifests.OCI
	}
	layerType, err := family.LayerType(s.Compression.Algorithm)
	if err != nil {
		return nil, err
	}
	return &imageBuild{
		s: s, gates: gates{policy: s.Policy, userMerged: s.User != nil}, base: bs, plats: plats, family: family, layerType: layerType,
		builder: e.builder(s.Compression), upper: map[string]layers.Entry{},
	}, nil
}

// walk lists the entries of a layer made from host files, leaving out the
// run's own cache and outputs where a source holds them (a build of "."
// would otherwise take in its previous output, growing every time).
func (e *Engine) walk(name string, ls layers.Spec) ([]layers.Entry, error) {
	ls.Log = e.log
	for _, src := range ls.Sources {
		root, err := filepath.Abs(src.From)
		if err != nil {
			continue
		}
		if r, err := filepath.EvalSymlinks(root); err == nil {
			root = r
		}
		for _, own := range e.own {
			if r, err := filepath.EvalSymlinks(own); err == nil {
				own = r
			}
			rel, err := filepath.Rel(root, own)
			if err != nil || rel == "." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || rel == ".." {
				continue
			}
			e.log.Info("leaving gantry's own cache or output out of the layer", "layer", name, "path", own)
			ls.Exclude = append(append([]string(nil), ls.Exclude...), escapePattern(filepath.ToSlash(rel)))
		}
	}
	return layers.Walk(ls)
}

// escapePattern makes a path a .dockerignore pattern matching just it.
func escapePattern(p string) string {
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`).Replace(p)
}

// buildLayers builds the layer ls of entries: one layer, or the parts its
// split: asks for, in order.
func (e *Engine) buildLayers(ctx context.Context, ib *imageBuild, ls spec.LayerSpec, entries []layers.Entry, upper map[string]layers.Entry, what string) ([]*layers.Layer, error) {
	parts := layers.Split(entries, ls.Split)
	var out []*layers.Layer
	for k, part := range parts {
		name := ls.Name + partOf(k, len(parts))
		l, err := e.buildLayer(ctx, ib, name, part, upper, what)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// partOf names part k of n of a split layer ("" when there is one).
func partOf(k, n int) string {
	if n == 1 {
		return ""
	}
	return fmt.Sprintf(" (part %d of %d)", k+1, n)
}

// buildLayer checks the gates on a new layer's entries (upper: the entries
// of the new layers below it, which it then joins) and builds it,
// streaming it to the sinks that take layers while they are built. what
// names the platform for a per-platform layer.
func (e *Engine) buildLayer(ctx context.Context, ib *imageBuild, name string, entries []layers.Entry, upper map[string]layers.Entry, what string) (*layers.Layer, error) {
	if err := ib.gates.entries(name, entries, upper); err != nil {
		return nil, err
	}
	var total int64
	for _, en := range entries {
		total += en.Size
	}
	label := ib.s.Name + ": layer " + name
	if what != "" {
		label += " (" + what + ")"
	}
	task := e.progress.Task(label, total)
	stream := openStreams(ctx, ib.sinks.streamers, ib.s)
	l, err := ib.builder.BuildWith(ctx, entries, reuseHooks(ib.sinks.reusers, ib.s, layers.Hooks{Progress: task.Add, Tee: stream.writer()}))
	if err != nil {
		task.Done("failed")
		stream.finish(nil)
		return nil, err
	}
	d, _ := l.Digest()
	stream.finish(&d)
	for _, en := range entries {
		upper[en.Name] = en
	}
	size, _ := l.Size()
	verb := "built"
	switch {
	case l.Remote():
		verb = "in the registry already:"
	case l.Cached():
		verb = "cached"
	}
	task.Done(fmt.Sprintf("%s %s (%s compressed, %d entries)", verb, progress.Short(d.Hex), progress.Size(size), len(entries)))
	e.log.Debug("layer", "image", ib.s.Name, "layer", name, "platform", what, "digest", d, "size", size, "entries", len(entries), "cached", l.Cached())
	return l.WithMediaType(ib.layerType), nil
}

// qualified is a registry reference written out in full, as puller and
// regctl image check-base compare it: nginx:alpine is
// docker.io/library/nginx:alpine.
func qualified(ref string) string {
	r, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil || strings.HasPrefix(ref, "oci:") {
		return ref
	}
	reg := r.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	sep := ":"
	if _, ok := r.(name.Digest); ok {
		sep = "@"
	}
	return reg + "/" + r.Context().RepositoryStr() + sep + r.Identifier()
}

func (e *Engine) annotations(s spec.ImageSpec, ref string, dig v1.Hash) map[string]string {
	a := map[string]string{
		"org.opencontainers.image.base.name":   qualified(ref),
		"org.opencontainers.image.base.digest": dig.String(),
		"org.opencontainers.image.created":     e.epoch.Format(time.RFC3339),
	}
	if strings.HasPrefix(ref, "oci:") {
		delete(a, "org.opencontainers.image.base.name") // a local path means nothing to a puller
	}
	maps.Copy(a, s.Annotations)
	return a
}
