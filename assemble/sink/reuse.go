package sink

import (
	"context"
	"io"
	"strings"
	"sync"

	"github.com/gantry-dev/gantry/assemble/registry"
	"github.com/gantry-dev/gantry/assemble/spec"
	"github.com/gantry-dev/gantry/layers"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The registry is the shared layer cache of every CI runner: the images
// already at an image's destination tags, and at --cache-from, map each
// layer's content (diffID) to a blob the registry has. gantry's history
// comment says how a layer was compressed, so a blob is reused only when
// it is the one this build would make. A stale or missing image is a miss,
// never an error, and a blob is reused only once a HEAD (or a mount from
// another repository) has shown the destination repository has it.

// RegistryOption configures the registry sink.
type RegistryOption func(*registrySink)

// CacheFrom adds images whose layers may be reused: references, or :TAG
// for that tag of each image's own repository (a pull request reusing
// main's layers: --cache-from :main).
func CacheFrom(refs ...string) RegistryOption {
	return func(s *registrySink) { s.cacheFrom = append(s.cacheFrom, refs...) }
}

type reuseKey struct {
	diffID v1.Hash
	comp   string
}

type knownLayer struct {
	digest v1.Hash
	size   int64
	repo   name.Repository
}

// reuseState is what the sink learnt about the registry's layers.
type reuseState struct {
	mu     sync.Mutex
	known  map[string]map[reuseKey]knownLayer // by image name
	blobs  map[string]*registry.Blobs         // by repository
	proven map[string]bool                    // repository@digest present
}

// Reusable reports whether the images at is's destination tags and
// --cache-from hold any layer gantry made.
func (s *registrySink) Reusable(ctx context.Context, is spec.ImageSpec) bool {
	refs, err := s.refs(is)
	if err != nil || len(refs) == 0 {
		return false
	}
	s.reuse.mu.Lock()
	defer s.reuse.mu.Unlock()
	return len(s.knownLayers(ctx, is, refs)) > 0
}

// ReuseLayer finds a layer of image is by content in the images its
// destination tags and --cache-from name, and proves the blob is in the
// image's repository.
func (s *registrySink) ReuseLayer(ctx context.Context, is spec.ImageSpec, diffID v1.Hash, comp string) (*layers.RemoteBlob, bool) {
	refs, err := s.refs(is)
	if err != nil || len(refs) == 0 {
		return nil, false
	}
	target := refs[0].Context()
	s.reuse.mu.Lock()
	defer s.reuse.mu.Unlock()
	k, ok := s.knownLayers(ctx, is, refs)[reuseKey{diffID, comp}]
	if !ok {
		return nil, false
	}
	blobs, err := s.blobsOf(ctx, target)
	if err != nil {
		s.c.Log().Debug("registry cache: cannot ask the repository", "repo", target.String(), "error", err)
		return nil, false
	}
	if !s.present(ctx, blobs, target, k) {
		return nil, false
	}
	s.c.Log().Info("layer found in the registry by content: not compressed nor uploaded again", "image", is.Name, "digest", k.digest.String(), "from", k.repo.String())
	d := k.digest
	return &layers.RemoteBlob{Digest: d, Size: k.size, Open: func() (io.ReadCloser, error) { return blobs.Open(ctx, d) }}, true
}

// present proves k's blob is in repository target: a HEAD there, or a
// mount from the repository it was found in (same registry only).
func (s *registrySink) present(ctx context.Context, blobs *registry.Blobs, target name.Repository, k knownLayer) bool {
	key := target.String() + "@" + k.digest.String()
	if s.reuse.proven[key] {
		return true
	}
	ok, err := blobs.Has(ctx, k.digest, k.size)
	if err == nil && !ok && k.repo.String() != target.String() && registry.SameRegistry(k.repo.RegistryStr(), target.RegistryStr()) {
		ok, err = blobs.Mount(ctx, k.digest, k.repo)
	}
	if err != nil {
		s.c.Log().Debug("registry cache: blob not reusable", "repo", target.String(), "digest", k.digest.String(), "error", err)
		return false
	}
	s.reuse.proven[key] = ok
	return ok
}

func (s *registrySink) blobsOf(ctx context.Context, repo name.Repository) (*registry.Blobs, error) {
	if b, ok := s.reuse.blobs[repo.String()]; ok {
		return b, nil
	}
	b, err := s.c.Blobs(ctx, repo)
	if err != nil {
		return nil, err
	}
	s.reuse.blobs[repo.String()] = b
	return b, nil
}

// knownLayers reads, once per image, the layers of the images at its
// destination tags and --cache-from.
func (s *registrySink) knownLayers(ctx context.Context, is spec.ImageSpec, refs []name.Reference) map[reuseKey]knownLayer {
	if k, ok := s.reuse.known[is.Name]; ok {
		return k
	}
	known := map[reuseKey]knownLayer{}
	for _, r := range s.cacheRefs(refs) {
		if err := s.readLayers(ctx, r, known); err != nil {
			s.c.Log().Debug("registry cache: nothing to reuse from", "ref", r.String(), "error", err)
		}
	}
	s.addCachedLayers(ctx, known)
	s.reuse.known[is.Name] = known
	return known
}

// cacheRefs are the destination tags and the --cache-from references.
func (s *registrySink) cacheRefs(refs []name.Reference) []name.Reference {
	out := append([]name.Reference(nil), refs...)
	for _, c := range s.cacheFrom {
		if tag, ok := strings.CutPrefix(c, ":"); ok {
			if t, err := name.NewTag(refs[0].Context().String()+":"+tag, s.c.NameOptions()...); err == nil {
				out = append(out, t)
			}
			continue
		}
		if r, err := s.c.ParseReference(c); err == nil {
			out = append(out, r)
		}
	}
	return out
}

// readLayers adds the layers gantry made in the image (or every platform
// image of the index) at r.
func (s *registrySink) readLayers(ctx context.Context, r name.Reference, known map[reuseKey]knownLayer) error {
	desc, err := s.c.Get(ctx, r, nil)
	if err != nil {
		return err
	}
	if !desc.MediaType.IsIndex() {
		img, err := desc.Image()
		if err != nil {
			return err
		}
		return addLayers(img, r.Context(), known)
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, m := range im.Manifests {
		if !m.MediaType.IsImage() || (m.Platform != nil && m.Platform.OS == "unknown") {
			continue // attestations and nested indexes
		}
		img, err := idx.Image(m.Digest)
		if err != nil {
			return err
		}
		if err := addLayers(img, r.Context(), known); err != nil {
			return err
		}
	}
	return nil
}

// addLayers maps the diffID and compression of each layer gantry made in
// img (its history comment says how it was compressed) to its blob. The
// history is matched to the layers from the end, where gantry's are.
func addLayers(img v1.Image, repo name.Repository, known map[reuseKey]knownLayer) error {
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		return nil
	}
	var withLayer []v1.History
	for _, h := range cf.History {
		if !h.EmptyLayer {
			withLayer = append(withLayer, h)
		}
	}
	off := len(m.Layers) - len(withLayer)
	for j, h := range withLayer {
		comp, ok := layers.CompressionOfComment(h.Comment)
		if i := off + j; ok && i >= 0 && m.Layers[i].MediaType != types.DockerForeignLayer {
			known[reuseKey{cf.RootFS.DiffIDs[i], comp}] = knownLayer{digest: m.Layers[i].Digest, size: m.Layers[i].Size, repo: repo}
		}
	}
	return nil
}
