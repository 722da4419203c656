package assemble

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/gantry-dev/gantry/assemble/registry"
	"github.com/gantry-dev/gantry/assemble/spec"
	"github.com/gantry-dev/gantry/layers"
	"github.com/gantry-dev/gantry/manifests"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// base is a resolved base: an index of platform images or a single image.
type base struct {
	ref       string // as given
	digest    v1.Hash
	index     v1.ImageIndex // nil for a single-manifest base
	image     v1.Image      // set for a single-manifest base
	rawIndex  []byte
	mediaType string
}

// platformImage is one platform's image of a base.
type platformImage struct {
	platform *v1.Platform
	image    v1.Image
	digest   v1.Hash
}

// resolveBase reads a base's top manifest: from a registry, or from an OCI
// layout given as oci:DIR[:tag|@digest].
func (e *Engine) resolveBase(ctx context.Context, ref string, mirrors map[string]string, pin *spec.Pin) (*base, error) {
	if dir, ok := strings.CutPrefix(ref, "oci:"); ok {
		if pin != nil {
			dir, _, _ = splitLayoutRef(dir)
			dir += "@" + pin.Digest.String()
		}
		return resolveLayoutBase(ref, dir)
	}
	r, err := e.registry.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("base %q is not a valid image reference: %w", ref, err)
	}
	if pin != nil {
		// by digest: go-containerregistry checks the manifest against it
		r = r.Context().Digest(pin.Digest.String())
	}
	desc, err := e.registry.Get(ctx, r, mirrors)
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", ref, err)
	}
	b := &base{ref: ref, digest: desc.Digest, mediaType: string(desc.MediaType)}
	if desc.MediaType.IsIndex() {
		if b.index, err = desc.ImageIndex(); err != nil {
			return nil, fmt.Errorf("base %s: %w", ref, err)
		}
		b.rawIndex = desc.Manifest
		return b, nil
	}
	if b.image, err = desc.Image(); err != nil {
		return nil, fmt.Errorf("base %s: %w", ref, err)
	}
	return b, nil
}

// fromRegistry makes a failure reading the base's blobs from its registry
// (an HTTP status, a network error) a registry error, which the CLI exits 3
// for; any other error is returned as it is.
func fromRegistry(err error, baseRef string) error {
	var te *transport.Error
	var ne net.Error
	var re *registry.Error
	var se *layers.SourceError // a package source's network failure, not the registry's
	if errors.As(err, &re) || errors.As(err, &se) || !errors.As(err, &te) && !errors.As(err, &ne) {
		return err
	}
	where := baseRef
	if r, perr := name.ParseReference(baseRef); perr == nil {
		where = r.Context().String()
	}
	return registry.Classify(err, where)
}

// splitLayoutRef splits DIR[:tag|@digest].
func splitLayoutRef(spec string) (dir, sel string, byDigest bool) {
	if i := strings.LastIndex(spec, "@sha256:"); i >= 0 {
		return spec[:i], spec[i+1:], true
	}
	if i := strings.LastIndex(spec, ":"); i > strings.LastIndex(spec, "/") {
		return spec[:i], spec[i+1:], false
	}
	return spec, "", false
}

func resolveLayoutBase(ref, spec string) (*base, error) {
	dir, sel, _ := splitLayoutRef(spec)
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("base %s: %s is not an OCI layout: %w", ref, dir, err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", ref, err)
	}
	im, err := top.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", ref, err)
	}
	d, err := selectManifest(im.Manifests, sel)
	if err != nil {
		return nil, fmt.Errorf("base %s: layout %s has %w", ref, dir, err)
	}
	raw, err := p.Blob(d.Digest)
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", ref, err)
	}
	got, _, err := v1.SHA256(raw)
	raw.Close()
	if err != nil || got != d.Digest {
		return nil, fmt.Errorf("base %s: manifest %s in %s is corrupt (its bytes hash to %s)", ref, d.Digest, dir, got)
	}
	b := &base{ref: ref, digest: d.Digest, mediaType: string(d.MediaType)}
	if d.MediaType.IsIndex() {
		if b.index, err = top.ImageIndex(d.Digest); err != nil {
			return nil, fmt.Errorf("base %s: %w", ref, err)
		}
		if b.rawIndex, err = b.index.RawManifest(); err != nil {
			return nil, fmt.Errorf("base %s: %w", ref, err)
		}
		return b, nil
	}
	if b.image, err = top.Image(d.Digest); err != nil {
		return nil, fmt.Errorf("base %s: %w", ref, err)
	}
	return b, nil
}

// selectManifest finds the one manifest of a layout's index that sel (a
// tag, a ref.name, a digest, or nothing) names.
func selectManifest(ds []v1.Descriptor, sel string) (v1.Descriptor, error) {
	var found []v1.Descriptor
	var names []string
	for _, d := range ds {
		rn := d.Annotations["org.opencontainers.image.ref.name"]
		names = append(names, rn)
		switch {
		case sel == "":
			found = append(found, d)
		case strings.HasPrefix(sel, "sha256:") && d.Digest.String() == sel,
			rn == sel || strings.HasSuffix(rn, ":"+sel):
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		what := "no image named " + sel
		if sel == "" {
			what = fmt.Sprintf("%d images; add :tag or @digest", len(found))
		}
		return v1.Descriptor{}, fmt.Errorf("%s (it has %q)", what, names)
	}
	return found[0], nil
}

// platforms lists the base's platform images that want selects (all when
// want is empty), skipping attestation manifests.
func (b *base) platforms(want []v1.Platform) ([]platformImage, error) {
	if b.index == nil {
		return b.single(want)
	}
	im, err := b.index.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", b.ref, err)
	}
	var out []platformImage
	var have []string
	matched := make([]bool, len(want))
	for _, d := range im.Manifests {
		if manifests.IsAttestation(d) {
			continue
		}
		if !d.MediaType.IsImage() {
			return nil, fmt.Errorf("base %s: index entry %s has media type %s; only image manifests are supported", b.ref, d.Digest, d.MediaType)
		}
		have = append(have, manifests.PlatformString(d.Platform))
		take := len(want) == 0
		for i, w := range want {
			if manifests.Matches(d.Platform, w) {
				take, matched[i] = true, true
			}
		}
		if !take {
			continue
		}
		img, err := b.index.Image(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("base %s: platform %s: %w", b.ref, manifests.PlatformString(d.Platform), err)
		}
		out = append(out, platformImage{platform: d.Platform, image: img, digest: d.Digest})
	}
	for i, ok := range matched {
		if !ok {
			return nil, fmt.Errorf("base %s has no platform %s; it has %s", b.ref, manifests.PlatformString(&want[i]), strings.Join(have, ", "))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("base %s has no platform images", b.ref)
	}
	return out, nil
}

// single is the platform of a single-manifest base, if want allows it.
func (b *base) single(want []v1.Platform) ([]platformImage, error) {
	cf, err := b.image.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("base %s: reading config: %w", b.ref, err)
	}
	p := cf.Platform()
	for _, w := range want {
		if !manifests.Matches(p, w) {
			return nil, fmt.Errorf("base %s is a single %s image; it has no platform %s", b.ref, manifests.PlatformString(p), manifests.PlatformString(&w))
		}
	}
	return []platformImage{{platform: p, image: b.image, digest: b.digest}}, nil
}
