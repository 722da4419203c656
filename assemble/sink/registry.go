package sink

import (
	"context"
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry/assemble"
	"github.com/gantry-dev/gantry/assemble/registry"
	"github.com/gantry-dev/gantry/assemble/spec"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry pushes every image to dest with one pusher: blobs shared by
// images and platforms are uploaded once, blobs the registry has are
// skipped after a HEAD, base layers on the same registry are mounted, and
// each tag is written only after everything it refers to is in place. It
// also takes new layers while they are built (assemble.LayerStreamer),
// into upload sessions committed only when the image is written.
//
// It also reuses, by content, layers the registry already has (see
// CacheFrom): a fresh CI runner neither compresses nor uploads a layer
// another runner pushed before.
func Registry(c *registry.Client, dest Destinations, opts ...RegistryOption) assemble.Sink {
	s := &registrySink{c: c, dest: dest, uploads: c.NewUploads(), reuse: reuseState{
		known: map[string]map[reuseKey]knownLayer{}, blobs: map[string]*registry.Blobs{}, proven: map[string]bool{},
	}}
	for _, o := range opts {
		o(s)
	}
	return s
}

type registrySink struct {
	c         *registry.Client
	dest      Destinations
	uploads   *registry.Uploads
	pusher    *remote.Pusher
	pending   []pendingTag
	cacheFrom []string
	reuse     reuseState
	// the shared cache artifact (--cache-repo)
	cacheRepoName string
	cache         cacheState
}

type pendingTag struct {
	ref name.Reference
	t   remote.Taggable
}

var (
	_ assemble.LayerStreamer = (*registrySink)(nil)
	_ assemble.Checker       = (*registrySink)(nil)
	_ assemble.LayerReuser   = (*registrySink)(nil)
	_ assemble.IndexSource   = (*registrySink)(nil)
)

// Check refuses, before anything is built, destinations that are not
// valid references and repositories the credentials may not push to (a
// token fetch and an upload session started and cancelled per
// repository).
func (s *registrySink) Check(ctx context.Context, specs []spec.ImageSpec) error {
	for _, c := range s.cacheFrom {
		if strings.HasPrefix(c, ":") {
			if _, err := name.NewTag("x" + c); err != nil {
				return &spec.ConfigError{Path: "--cache-from", Msg: fmt.Sprintf("%q is not a valid tag: %v", c, err)}
			}
		} else if _, err := s.c.ParseReference(c); err != nil {
			return &spec.ConfigError{Path: "--cache-from", Msg: fmt.Sprintf("%q is not a valid reference: %v", c, err)}
		}
	}
	seen := map[string]bool{}
	if s.cacheRepoName != "" {
		r, err := name.NewRepository(s.cacheRepoName, s.c.NameOptions()...)
		if err != nil {
			return &spec.ConfigError{Path: "--cache-repo", Msg: fmt.Sprintf("%q is not a valid repository: %v", s.cacheRepoName, err)}
		}
		s.cache.repo, seen[r.String()] = r, true
		if err := s.c.CheckPush(ctx, r); err != nil {
			return fmt.Errorf("cannot push to the cache repository %s: %w", r, err)
		}
	}
	for _, is := range specs {
		refs, err := s.refs(is)
		if err != nil {
			return &spec.ConfigError{Path: "--push", Msg: err.Error()}
		}
		for _, r := range refs {
			repo := r.Context()
			if seen[repo.String()] {
				continue
			}
			seen[repo.String()] = true
			if err := s.c.CheckPush(ctx, repo); err != nil {
				return fmt.Errorf("cannot push to %s: %w", repo, err)
			}
		}
	}
	return nil
}

// StreamLayer streams a layer of image s to the repository of its first
// reference.
func (s *registrySink) StreamLayer(ctx context.Context, is spec.ImageSpec) assemble.LayerStream {
	refs, err := s.refs(is)
	if err != nil || len(refs) == 0 {
		return nil
	}
	return s.uploads.Open(ctx, refs[0].Context())
}

func (s *registrySink) refs(is spec.ImageSpec) ([]name.Reference, error) {
	var out []name.Reference
	if s.dest.Ref != "" {
		r, err := s.c.ParseReference(s.dest.Ref)
		if err != nil {
			return nil, fmt.Errorf("%q is not a valid reference: %w", s.dest.Ref, err)
		}
		if _, ok := r.(name.Digest); ok {
			return nil, fmt.Errorf("%q names a digest; a push writes a tag: give REPOSITORY[:TAG]", s.dest.Ref)
		}
		out = append(out, r)
		for _, t := range s.dest.Tags {
			out = append(out, r.Context().Tag(t))
		}
		return out, nil
	}
	for _, t := range s.dest.tags(is) {
		ref := strings.TrimSuffix(s.dest.Prefix, "/") + "/" + is.Name + ":" + t
		r, err := name.NewTag(ref, s.c.NameOptions()...)
		if err != nil {
			return nil, fmt.Errorf("%q: %s is not a valid reference: %w", s.dest.Prefix, ref, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Prepare makes the one pusher every image shares (push permission was
// checked by Check, before the build).
func (s *registrySink) Prepare(ctx context.Context, images []*assemble.Built) error {
	pusher, err := remote.NewPusher(s.c.RemoteOptions(ctx)...)
	if err != nil {
		return err
	}
	s.pusher = pusher
	return nil
}

// Write uploads every blob and manifest of b by digest; its tags are
// written by Commit, after every image of the run is in place, so a failure
// or an interrupt never leaves a tag pointing at something incomplete.
func (s *registrySink) Write(ctx context.Context, b *assemble.Built) ([]string, error) {
	refs, err := s.refs(b.Spec)
	if err != nil {
		return nil, err
	}
	done := map[string]bool{}
	var out []string
	for _, r := range refs {
		repo := r.Context()
		if !done[repo.String()] {
			done[repo.String()] = true
			s.uploads.Commit(ctx, repo)
			if err := s.pushByDigest(ctx, repo, b); err != nil {
				return nil, fmt.Errorf("pushing %s: %w", repo, registry.Classify(err, repo.String()))
			}
		}
		s.pending = append(s.pending, pendingTag{r, b.Taggable()})
		if len(s.cache.built) == 0 || s.cache.built[len(s.cache.built)-1] != b {
			s.cache.built = append(s.cache.built, b)
		}
		out = append(out, r.String())
	}
	return out, nil
}

// pushByDigest uploads b's blobs and manifests by digest. An index's
// platform images go one at a time: go-containerregistry shares an upload
// between the platforms that have the layer, and when one platform's push
// fails it cancels that upload, so another platform would report "context
// canceled" instead of what the registry answered.
func (s *registrySink) pushByDigest(ctx context.Context, repo name.Repository, b *assemble.Built) error {
	if b.Index != nil {
		im, err := b.Index.IndexManifest()
		if err != nil {
			return err
		}
		for _, d := range im.Manifests {
			img, err := b.Index.Image(d.Digest)
			if err != nil {
				return err
			}
			if err := s.pusher.Push(ctx, repo.Digest(d.Digest.String()), img); err != nil {
				return err
			}
		}
	}
	if err := s.pusher.Push(ctx, repo.Digest(b.Digest.String()), b.Taggable()); err != nil {
		return err
	}
	return pushReferrers(ctx, s.pusher, repo, b)
}

func (s *registrySink) Commit(ctx context.Context) error {
	defer s.Abort() // sessions no image used
	for i, p := range s.pending {
		if err := s.pusher.Push(ctx, p.ref, p.t); err != nil {
			var tagged []string
			for _, q := range s.pending[:i] {
				tagged = append(tagged, q.ref.String())
			}
			what := "no tag was written"
			if len(tagged) > 0 {
				what = "tagged before the failure: " + strings.Join(tagged, ", ")
			}
			return fmt.Errorf("tagging %s (%s): %w", p.ref, what, registry.Classify(err, p.ref.Context().String()))
		}
		s.c.Progress().Event("tag "+p.ref.String(), "pushed")
	}
	if err := s.saveCache(ctx); err != nil {
		s.c.Log().Warn("the cache repository was not updated (the images are pushed)", "repo", s.cache.repo.String(), "error", err)
	}
	return nil
}

// Abort cancels the upload sessions not committed.
func (s *registrySink) Abort() {
	if err := s.uploads.Abort(); err != nil {
		s.c.Log().Warn("upload sessions left in the registry (it expires them)", "error", err)
	}
}
