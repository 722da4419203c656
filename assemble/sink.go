package assemble

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Sink is where built images go. A run calls Prepare once with every image
// (to fail before anything is written), Write for each image, then Commit;
// on any failure it calls Abort, which leaves no partial output behind.
type Sink interface {
	Prepare(ctx context.Context, images []*Built) error
	Write(ctx context.Context, b *Built) (refs []string, err error)
	Commit(ctx context.Context) error
	Abort()
}

// Destinations names where each image is tagged.
type Destinations struct {
	// Prefix: images go to PREFIX/NAME:TAG (gantry build --push).
	Prefix string
	// Ref: the one image goes to this reference (gantry append --push).
	Ref string
	// Tags replace each image's own tags (default "latest").
	Tags []string
}

func (d Destinations) tags(s ImageSpec) []string {
	switch {
	case len(d.Tags) > 0:
		return d.Tags
	case len(s.Tags) > 0:
		return s.Tags
	}
	return []string{"latest"}
}

// registrySink pushes to a registry with the engine's single pusher.
type registrySink struct {
	e       *Engine
	dest    Destinations
	pending []pendingTag
}

type pendingTag struct {
	ref name.Reference
	t   remote.Taggable
}

// RegistrySink pushes every image to dest with one pusher: blobs shared by
// images and platforms are uploaded once, blobs the registry has are skipped
// after a HEAD, base layers on the same registry are mounted, and each tag is
// written only after everything it refers to is in place.
func (e *Engine) RegistrySink(dest Destinations) Sink { return &registrySink{e: e, dest: dest} }

func (s *registrySink) refs(b *Built) ([]name.Reference, error) { return s.refsFor(b.Spec) }

// repoFor is the repository an image's layers are streamed to: that of its
// first reference.
func (s *registrySink) repoFor(spec ImageSpec) (name.Repository, bool) {
	refs, err := s.refsFor(spec)
	if err != nil || len(refs) == 0 {
		return name.Repository{}, false
	}
	return refs[0].Context(), true
}

func (s *registrySink) refsFor(spec ImageSpec) ([]name.Reference, error) {
	var out []name.Reference
	if s.dest.Ref != "" {
		r, err := name.ParseReference(s.dest.Ref, s.e.nameOptions()...)
		if err != nil {
			return nil, fmt.Errorf("--push %q is not a valid reference: %w", s.dest.Ref, err)
		}
		out = append(out, r)
		for _, t := range s.dest.Tags {
			out = append(out, r.Context().Tag(t))
		}
		return out, nil
	}
	for _, t := range s.dest.tags(spec) {
		ref := strings.TrimSuffix(s.dest.Prefix, "/") + "/" + spec.Name + ":" + t
		r, err := name.NewTag(ref, s.e.nameOptions()...)
		if err != nil {
			return nil, fmt.Errorf("--push %q: %s is not a valid reference: %w", s.dest.Prefix, ref, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func (s *registrySink) Prepare(ctx context.Context, images []*Built) error {
	seen := map[string]bool{}
	for _, b := range images {
		refs, err := s.refs(b)
		if err != nil {
			return err
		}
		for _, r := range refs {
			repo := r.Context().String()
			if seen[repo] {
				continue
			}
			seen[repo] = true
			if err := remote.CheckPushPermission(r, s.e.opts.Keychain, s.e.opts.Transport); err != nil {
				return fmt.Errorf("cannot push to %s: %w", repo, registryError(err, repo))
			}
		}
	}
	pusher, err := remote.NewPusher(s.e.remoteOptions(ctx)...)
	if err != nil {
		return err
	}
	s.e.pusher = pusher
	return nil
}

// Write uploads every blob and manifest of b by digest; its tags are
// written by Commit, after every image of the run is in place, so a failure
// or an interrupt never leaves a tag pointing at something incomplete.
func (s *registrySink) Write(ctx context.Context, b *Built) ([]string, error) {
	refs, err := s.refs(b)
	if err != nil {
		return nil, err
	}
	done := map[string]bool{}
	var out []string
	for _, r := range refs {
		repo := r.Context()
		if !done[repo.String()] {
			done[repo.String()] = true
			s.e.stream.commit(ctx, repo)
			if err := s.pushByDigest(ctx, repo, b); err != nil {
				return nil, fmt.Errorf("pushing %s: %w", repo, registryError(err, repo.String()))
			}
		}
		s.pending = append(s.pending, pendingTag{r, b.Taggable()})
		out = append(out, r.String())
	}
	return out, nil
}

// pushByDigest uploads b's blobs and manifests by digest. An index's
// platform images go one at a time: go-containerregistry shares an upload
// between the platforms that have the layer, and when one platform's push
// fails it cancels that upload, so another platform would report "context
// canceled" instead of what the registry answered.
func (s *registrySink) pushByDigest(ctx context.Context, repo name.Repository, b *Built) error {
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
			if err := s.e.pusher.Push(ctx, repo.Digest(d.Digest.String()), img); err != nil {
				return err
			}
		}
	}
	return s.e.pusher.Push(ctx, repo.Digest(b.Digest.String()), b.Taggable())
}

func (s *registrySink) Commit(ctx context.Context) error {
	for i, p := range s.pending {
		if err := s.e.pusher.Push(ctx, p.ref, p.t); err != nil {
			var tagged []string
			for _, q := range s.pending[:i] {
				tagged = append(tagged, q.ref.String())
			}
			what := "no tag was written"
			if len(tagged) > 0 {
				what = "tagged before the failure: " + strings.Join(tagged, ", ")
			}
			return fmt.Errorf("tagging %s (%s): %w", p.ref, what, registryError(err, p.ref.Context().String()))
		}
		s.e.opts.Progress.Event("tag "+p.ref.String(), "pushed")
	}
	return nil
}

func (s *registrySink) Abort() {}

// layoutSink writes every image into one OCI image layout. A new layout is
// written beside its final path and renamed into place; an existing one gets
// its blobs first and its index.json replaced atomically last.
type layoutSink struct {
	dir     string
	work    string // where blobs go: dir itself, or a temporary sibling
	fresh   bool
	dest    Destinations
	entries []v1.Descriptor
	names   map[string]bool
}

// LayoutSink writes an OCI layout at dir, one index.json entry per image
// and tag, named NAME:TAG in org.opencontainers.image.ref.name.
func LayoutSink(dir string, dest Destinations) Sink {
	return &layoutSink{dir: dir, dest: dest, names: map[string]bool{}}
}

func (s *layoutSink) Prepare(ctx context.Context, images []*Built) error {
	fi, err := os.Stat(s.dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(s.dir), 0o755); err != nil {
			return fmt.Errorf("output %s: %w", s.dir, err)
		}
		work, err := os.MkdirTemp(filepath.Dir(s.dir), "."+filepath.Base(s.dir)+".tmp-*")
		if err != nil {
			return fmt.Errorf("output %s: %w", s.dir, err)
		}
		s.work, s.fresh = work, true
	case err != nil:
		return fmt.Errorf("output %s: %w", s.dir, err)
	case !fi.IsDir():
		return fmt.Errorf("output %s exists and is not a directory", s.dir)
	default:
		if _, err := os.Stat(filepath.Join(s.dir, "oci-layout")); err != nil {
			if entries, _ := os.ReadDir(s.dir); len(entries) > 0 {
				return fmt.Errorf("output %s exists and is not an OCI layout; choose another directory", s.dir)
			}
		}
		s.work = s.dir
	}
	if _, err := os.Stat(filepath.Join(s.work, "oci-layout")); err != nil {
		if err := os.WriteFile(filepath.Join(s.work, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
			return fmt.Errorf("output %s: %w", s.dir, err)
		}
	}
	return os.MkdirAll(filepath.Join(s.work, "blobs", "sha256"), 0o755)
}

func (s *layoutSink) Write(ctx context.Context, b *Built) ([]string, error) {
	if err := s.writeTaggable(ctx, b.Taggable()); err != nil {
		return nil, fmt.Errorf("writing %s to %s: %w", b.Spec.Name, s.dir, err)
	}
	raw, err := b.Taggable().RawManifest()
	if err != nil {
		return nil, err
	}
	var refs []string
	for _, t := range s.dest.tags(b.Spec) {
		rn := b.Spec.Name + ":" + t
		s.entries = append(s.entries, v1.Descriptor{
			MediaType:   types.MediaType(b.MediaType),
			Size:        int64(len(raw)),
			Digest:      b.Digest,
			Annotations: map[string]string{"org.opencontainers.image.ref.name": rn},
		})
		s.names[rn] = true
		refs = append(refs, "oci:"+s.dir+":"+rn)
	}
	return refs, nil
}

func (s *layoutSink) writeTaggable(ctx context.Context, t remote.Taggable) error {
	if idx, ok := t.(v1.ImageIndex); ok {
		im, err := idx.IndexManifest()
		if err != nil {
			return err
		}
		for _, d := range im.Manifests {
			img, err := idx.Image(d.Digest)
			if err != nil {
				return err
			}
			if err := s.writeTaggable(ctx, img); err != nil {
				return err
			}
		}
	} else if img, ok := t.(v1.Image); ok {
		ls, err := img.Layers()
		if err != nil {
			return err
		}
		for _, l := range ls {
			if err := s.writeLayer(ctx, l); err != nil {
				return err
			}
		}
		cfg, err := img.RawConfigFile()
		if err != nil {
			return err
		}
		if err := s.writeBytes(cfg); err != nil {
			return err
		}
	}
	raw, err := t.RawManifest()
	if err != nil {
		return err
	}
	return s.writeBytes(raw)
}

func (s *layoutSink) blobPath(h v1.Hash) string {
	return filepath.Join(s.work, "blobs", h.Algorithm, h.Hex)
}

func (s *layoutSink) writeBytes(b []byte) error {
	h, _, err := v1.SHA256(bytes.NewReader(b))
	if err != nil {
		return err
	}
	return s.writeBlob(h, int64(len(b)), func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

func (s *layoutSink) writeLayer(ctx context.Context, l v1.Layer) error {
	h, err := l.Digest()
	if err != nil {
		return err
	}
	size, err := l.Size()
	if err != nil {
		return err
	}
	return s.writeBlob(h, size, func() (io.ReadCloser, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return l.Compressed()
	})
}

// writeBlob writes a blob by temp file and rename, checking its size and
// digest, so a corrupt source never lands in the layout.
func (s *layoutSink) writeBlob(h v1.Hash, size int64, open func() (io.ReadCloser, error)) error {
	dst := s.blobPath(h)
	if fi, err := os.Stat(dst); err == nil && fi.Size() == size {
		return nil
	}
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.CreateTemp(filepath.Dir(dst), ".tmp-"+h.Hex[:12]+"-*")
	if err != nil {
		return err
	}
	hasher := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, hasher), rc)
	cerr := f.Close()
	if err == nil && n != size {
		err = fmt.Errorf("blob %s: got %d bytes, want %d", h, n, size)
	}
	if got := hex.EncodeToString(hasher.Sum(nil)); err == nil && got != h.Hex {
		err = fmt.Errorf("blob %s: its bytes hash to sha256:%s; the source is corrupt", h, got)
	}
	if err = errors.Join(err, cerr); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), dst)
}

func (s *layoutSink) Commit(ctx context.Context) error {
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	if raw, err := os.ReadFile(filepath.Join(s.work, "index.json")); err == nil {
		old, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("output %s: reading index.json: %w", s.dir, err)
		}
		for _, d := range old.Manifests {
			if !s.names[d.Annotations["org.opencontainers.image.ref.name"]] {
				index.Manifests = append(index.Manifests, d)
			}
		}
	}
	index.Manifests = append(index.Manifests, s.entries...)
	raw, err := json.MarshalIndent(index, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.work, ".index.json.tmp")
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		return fmt.Errorf("output %s: %w", s.dir, err)
	}
	if err := os.Rename(tmp, filepath.Join(s.work, "index.json")); err != nil {
		return fmt.Errorf("output %s: %w", s.dir, err)
	}
	if s.fresh {
		if err := os.Rename(s.work, s.dir); err != nil {
			return fmt.Errorf("output %s: %w", s.dir, err)
		}
	}
	return nil
}

func (s *layoutSink) Abort() {
	if s.fresh && s.work != "" {
		os.RemoveAll(s.work)
	}
}

// tarballSink writes a `docker load` tarball of one image and platform.
type tarballSink struct {
	file string
	dest Destinations
	tmp  string
}

// TarballSink writes a docker-loadable tarball to file.
func TarballSink(file string, dest Destinations) Sink { return &tarballSink{file: file, dest: dest} }

func (s *tarballSink) Prepare(ctx context.Context, images []*Built) error {
	if len(images) != 1 {
		return fmt.Errorf("--output tar: holds one image; this build has %d (pick one with --image)", len(images))
	}
	if n := len(images[0].Platforms); n != 1 {
		return fmt.Errorf("--output tar: holds one platform; image %s has %d (pick one with --platform, e.g. linux/amd64)", images[0].Spec.Name, n)
	}
	return nil
}

func (s *tarballSink) Write(ctx context.Context, b *Built) ([]string, error) {
	img := b.Image
	if img == nil {
		im, err := b.Index.IndexManifest()
		if err != nil {
			return nil, err
		}
		if img, err = b.Index.Image(im.Manifests[0].Digest); err != nil {
			return nil, err
		}
	}
	refs := map[name.Reference]v1.Image{}
	var out []string
	for _, t := range s.dest.tags(b.Spec) {
		r, err := name.NewTag(b.Spec.Name + ":" + t)
		if err != nil {
			return nil, err
		}
		refs[r] = img
		out = append(out, b.Spec.Name+":"+t)
	}
	f, err := os.CreateTemp(filepath.Dir(s.file), "."+filepath.Base(s.file)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", s.file, err)
	}
	s.tmp = f.Name()
	err = tarball.MultiRefWrite(refs, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", s.file, err)
	}
	return out, nil
}

func (s *tarballSink) Commit(ctx context.Context) error {
	if s.tmp == "" {
		return nil
	}
	if err := os.Rename(s.tmp, s.file); err != nil {
		return fmt.Errorf("output %s: %w", s.file, err)
	}
	return nil
}

func (s *tarballSink) Abort() {
	if s.tmp != "" {
		os.Remove(s.tmp)
	}
}
