package attest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/gantry-dev/gantry/manifests"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ErrNoSBOM is the error of an image that has no SBOM attached.
var ErrNoSBOM = errors.New("no SBOM attached")

// ErrNoImage is the error of a layout without the image, or an index
// without the platform, asked for.
var ErrNoImage = errors.New("no such image")

// maxSBOM bounds the SBOM read (a layer of 100k files makes ~30 MB).
const maxSBOM = 256 << 20

// ReadSBOM finds the SPDX SBOM attached to ref's image for platform (nil:
// the only one, else the host's architecture) through the referrers API
// or the referrers tag schema, and returns it.
func ReadSBOM(ctx context.Context, ref name.Reference, platform *v1.Platform, opts ...remote.Option) ([]byte, error) {
	opts = append(opts, remote.WithContext(ctx))
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return nil, err
	}
	digest, plat, err := pickPlatform(desc.MediaType, desc.Digest, desc.ImageIndex, platform)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	subject := ref.Context().Digest(digest.String())
	idx, err := remote.Referrers(subject, opts...)
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range im.Manifests {
		doc, ok, err := readSPDX(subject.Context(), d, opts)
		if err != nil || ok {
			return doc, err
		}
	}
	return nil, fmt.Errorf("%s (%s, %s): %w; build it with gantry, whose SBOM is on unless sbom: false", ref, plat, digest, ErrNoSBOM)
}

// pickPlatform is the manifest for platform want of the manifest or index
// of media type mt and digest dig (index reads it): an index's child, or a
// single manifest (whatever platform is asked).
func pickPlatform(mt types.MediaType, dig v1.Hash, index func() (v1.ImageIndex, error), want *v1.Platform) (v1.Hash, string, error) {
	if !mt.IsIndex() {
		return dig, "its platform", nil
	}
	idx, err := index()
	if err != nil {
		return v1.Hash{}, "", err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return v1.Hash{}, "", err
	}
	return pickFrom(im, want)
}

// pickFrom is the child of an index for platform want (nil: the only one,
// else the host's architecture).
func pickFrom(im *v1.IndexManifest, want *v1.Platform) (v1.Hash, string, error) {
	var have []string
	var only []v1.Descriptor
	for _, d := range im.Manifests {
		if d.Platform == nil || d.Platform.OS == "unknown" {
			continue
		}
		have = append(have, manifests.PlatformString(d.Platform))
		only = append(only, d)
		if want != nil && manifests.Matches(d.Platform, *want) || want == nil && d.Platform.Architecture == runtime.GOARCH && d.Platform.OS == "linux" {
			return d.Digest, manifests.PlatformString(d.Platform), nil
		}
	}
	if want == nil && len(only) == 1 {
		return only[0].Digest, have[0], nil
	}
	asked := "linux/" + runtime.GOARCH
	if want != nil {
		asked = manifests.PlatformString(want)
	}
	return v1.Hash{}, "", fmt.Errorf("%w: no %s image (it has %s); pick one with --platform", ErrNoImage, asked, strings.Join(have, ", "))
}

// blobOf reads the one blob of an SPDX artifact manifest, or says it is
// none.
func blobOf(img v1.Image) ([]byte, bool, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, false, err
	}
	if m.ArtifactType != SPDXMediaType || len(m.Layers) != 1 {
		return nil, false, nil
	}
	l, err := img.LayerByDigest(m.Layers[0].Digest)
	if err != nil {
		return nil, false, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, false, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxSBOM))
	return b, err == nil, err
}

// readSPDX reads referrer d's SPDX document, if it is one. The artifact
// manifest decides: some registries list the config's media type as the
// artifactType.
func readSPDX(repo name.Repository, d v1.Descriptor, opts []remote.Option) ([]byte, bool, error) {
	if d.ArtifactType != "" && d.ArtifactType != SPDXMediaType && d.ArtifactType != string(emptyMediaType) {
		return nil, false, nil
	}
	img, err := remote.Image(repo.Digest(d.Digest.String()), opts...)
	if err != nil {
		return nil, false, err
	}
	return blobOf(img)
}
