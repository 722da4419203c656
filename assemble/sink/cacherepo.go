package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/gantry-dev/gantry/assemble"
	"github.com/gantry-dev/gantry/assemble/registry"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// A cache repository (--cache-repo REPO) holds one small artifact at
// REPO:gantry-cache that every build reads and, after its tags, updates:
// the layers gantry made anywhere on that registry (content and
// compression → blob and repository), so branches and images share them,
// and the indexes of base layers (what gantry learnt reading them for
// /etc/passwd and the SBOM), so a fresh runner downloads no base layer
// whose index is there. Like the images it describes, it is only a hint:
// a blob is reused only once its repository is shown to have it, an index
// only if it parses, and a cache that cannot be read or written is a
// warning, never a failed build.

const (
	cacheTag          = "gantry-cache"
	cacheArtifactType = "application/vnd.gantry.cache.v1"
	cacheConfigType   = types.MediaType("application/vnd.gantry.cache.v1+json")
	baseIndexType     = types.MediaType("application/vnd.gantry.base-index.v1")
	baseLayerKey      = "dev.gantry.base-layer"
	// bounds on the artifact: newest entries first
	maxCachedLayers  = 4096
	maxCachedIndexes = 512
	maxIndexBytes    = 256 << 20
)

// CacheRepo keeps the shared cache artifact in repository repo (same
// registry as the destinations for layer reuse; any for base indexes).
func CacheRepo(repo string) RegistryOption {
	return func(s *registrySink) { s.cacheRepoName = repo }
}

type cacheIndex struct {
	Layers []cachedLayer `json:"layers"`
}

type cachedLayer struct {
	DiffID      v1.Hash `json:"diffID"`
	Compression string  `json:"compression"`
	Digest      v1.Hash `json:"digest"`
	Size        int64   `json:"size"`
	Repository  string  `json:"repository"`
}

// cacheState is what the sink read from the cache repository.
type cacheState struct {
	repo    name.Repository
	loaded  bool
	index   cacheIndex
	indexes map[string]v1.Descriptor // base layer digest → its index blob
	built   []*assemble.Built
}

// loadCache reads the cache artifact once; a missing one is an empty cache.
func (s *registrySink) loadCache(ctx context.Context) *cacheState {
	cs := &s.cache
	if cs.repo.Name() == "" || cs.loaded {
		return cs
	}
	cs.loaded = true
	cs.indexes = map[string]v1.Descriptor{}
	if err := s.readCache(ctx, cs); err != nil {
		s.c.Log().Debug("cache repository: nothing read", "repo", cs.repo.String(), "error", err)
	}
	return cs
}

func (s *registrySink) readCache(ctx context.Context, cs *cacheState) error {
	img, err := remote.Image(cs.repo.Tag(cacheTag), s.c.RemoteOptions(ctx)...)
	if err != nil {
		return err
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, &cs.index); err != nil {
		return fmt.Errorf("parsing the cache index: %w", err)
	}
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	for _, d := range m.Layers {
		if d.MediaType == baseIndexType && d.Annotations[baseLayerKey] != "" {
			cs.indexes[d.Annotations[baseLayerKey]] = d
		}
	}
	return nil
}

// addCachedLayers adds the cache artifact's layers to known.
func (s *registrySink) addCachedLayers(ctx context.Context, known map[reuseKey]knownLayer) {
	cs := s.loadCache(ctx)
	for _, l := range cs.index.Layers {
		repo, err := name.NewRepository(l.Repository, s.c.NameOptions()...)
		if err != nil {
			continue
		}
		k := reuseKey{l.DiffID, l.Compression}
		if _, ok := known[k]; !ok {
			known[k] = knownLayer{digest: l.Digest, size: l.Size, repo: repo}
		}
	}
}

// BaseIndex gives the index of base layer dig from the cache repository.
func (s *registrySink) BaseIndex(ctx context.Context, dig v1.Hash) ([]byte, bool) {
	s.reuse.mu.Lock()
	cs := s.loadCache(ctx)
	d, ok := cs.indexes[dig.String()]
	s.reuse.mu.Unlock()
	if !ok || d.Size > maxIndexBytes {
		return nil, false
	}
	l, err := remote.Layer(cs.repo.Digest(d.Digest.String()), s.c.RemoteOptions(ctx)...)
	if err != nil {
		return nil, false
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, false
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, d.Size+1))
	if err != nil || int64(len(b)) != d.Size {
		return nil, false
	}
	if got, _, err := v1.SHA256(bytes.NewReader(b)); err != nil || got != d.Digest {
		return nil, false
	}
	s.c.Log().Debug("base layer index from the cache repository", "layer", dig.String())
	return b, true
}

// saveCache writes the cache artifact with this run's layers and base
// indexes first, then what it held before, within its bounds.
func (s *registrySink) saveCache(ctx context.Context) error {
	cs := s.loadCache(ctx)
	if cs.repo.Name() == "" || len(cs.built) == 0 {
		return nil
	}
	idx := cacheIndex{Layers: s.builtLayers(cs.built)}
	seen := map[reuseKey]bool{}
	for _, l := range idx.Layers {
		seen[reuseKey{l.DiffID, l.Compression}] = true
	}
	for _, l := range cs.index.Layers {
		if !seen[reuseKey{l.DiffID, l.Compression}] {
			idx.Layers = append(idx.Layers, l)
		}
	}
	if len(idx.Layers) > maxCachedLayers {
		idx.Layers = idx.Layers[:maxCachedLayers]
	}
	fresh, have := builtIndexes(cs.built)
	return s.pushCache(ctx, cs, idx, fresh, have)
}

// builtLayers are the layers gantry made in this run's images, in order.
func (s *registrySink) builtLayers(built []*assemble.Built) []cachedLayer {
	var out []cachedLayer
	seen := map[reuseKey]bool{}
	for _, b := range built {
		refs, err := s.refs(b.Spec)
		if err != nil || len(refs) == 0 {
			continue
		}
		for _, img := range builtImages(b) {
			m := map[reuseKey]knownLayer{}
			if addLayers(img, refs[0].Context(), m) != nil {
				continue
			}
			for k, v := range m {
				if !seen[k] {
					seen[k] = true
					out = append(out, cachedLayer{DiffID: k.diffID, Compression: k.comp, Digest: v.digest, Size: v.size, Repository: v.repo.String()})
				}
			}
		}
	}
	slices.SortStableFunc(out, func(a, b cachedLayer) int { return strings.Compare(a.Digest.String(), b.Digest.String()) })
	return out
}

// builtIndexes reads the base-layer index files this run's builds used.
func builtIndexes(built []*assemble.Built) ([]indexBlob, map[string]bool) {
	var out []indexBlob
	have := map[string]bool{}
	for _, b := range built {
		for _, layer := range sortedKeys(b.BaseIndexes) {
			if have[layer] || len(have) >= maxCachedIndexes {
				continue
			}
			data, err := os.ReadFile(b.BaseIndexes[layer])
			if err != nil || len(data) > maxIndexBytes {
				continue
			}
			have[layer] = true
			out = append(out, indexBlob{data: data, layer: layer})
		}
	}
	return out, have
}

// pushCache uploads the index blobs the repository lacks (those kept from
// before are there already) and the artifact's manifest.
func (s *registrySink) pushCache(ctx context.Context, cs *cacheState, idx cacheIndex, fresh []indexBlob, have map[string]bool) error {
	cfg, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	var descs []v1.Descriptor
	for _, l := range fresh {
		layer := static.NewLayer(l.data, baseIndexType)
		d, _ := layer.Digest()
		if err := remote.WriteLayer(cs.repo, layer, s.c.RemoteOptions(ctx)...); err != nil {
			return fmt.Errorf("uploading a base index: %w", registry.Classify(err, cs.repo.String()))
		}
		descs = append(descs, v1.Descriptor{MediaType: baseIndexType, Size: int64(len(l.data)), Digest: d, Annotations: map[string]string{baseLayerKey: l.layer}})
	}
	for _, layer := range sortedKeys(cs.indexes) {
		if len(have)+1 > maxCachedIndexes || have[layer] {
			continue
		}
		have[layer] = true
		descs = append(descs, cs.indexes[layer])
	}
	cfgLayer := static.NewLayer(cfg, cacheConfigType)
	if err := remote.WriteLayer(cs.repo, cfgLayer, s.c.RemoteOptions(ctx)...); err != nil {
		return fmt.Errorf("uploading the cache index: %w", registry.Classify(err, cs.repo.String()))
	}
	cfgDigest, _ := cfgLayer.Digest()
	raw, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     types.OCIManifestSchema1,
		"artifactType":  cacheArtifactType,
		"config":        v1.Descriptor{MediaType: cacheConfigType, Size: int64(len(cfg)), Digest: cfgDigest},
		"layers":        nonNil(descs),
	})
	if err != nil {
		return err
	}
	if err := remote.Put(cs.repo.Tag(cacheTag), rawManifest(raw), s.c.RemoteOptions(ctx)...); err != nil {
		return fmt.Errorf("writing %s: %w", cs.repo.Tag(cacheTag), registry.Classify(err, cs.repo.String()))
	}
	return nil
}

// indexBlob is a base layer's index, to upload.
type indexBlob struct {
	data  []byte
	layer string // the base layer's digest
}

// builtImages are b's platform images.
func builtImages(b *assemble.Built) []v1.Image {
	if b.Index == nil {
		return []v1.Image{b.Image}
	}
	im, err := b.Index.IndexManifest()
	if err != nil {
		return nil
	}
	var out []v1.Image
	for _, d := range im.Manifests {
		if img, err := b.Index.Image(d.Digest); err == nil {
			out = append(out, img)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func nonNil(d []v1.Descriptor) []v1.Descriptor {
	if d == nil {
		return []v1.Descriptor{}
	}
	return d
}

// rawManifest is a manifest pushed as it is.
type rawManifest []byte

func (r rawManifest) RawManifest() ([]byte, error)        { return r, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
