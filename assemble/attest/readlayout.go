package attest

import (
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

const refNameAnnotation = "org.opencontainers.image.ref.name"

// ReadSBOMLayout is ReadSBOM for an OCI layout as gantry writes it
// (--output oci:DIR): the image named name (NAME:TAG, or "" when the
// layout names one image) for platform, and the SBOM listed beside it.
func ReadSBOMLayout(dir, name string, platform *v1.Platform) ([]byte, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("oci:%s: %w", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("oci:%s: %w", dir, err)
	}
	d, err := named(im, name)
	if err != nil {
		return nil, fmt.Errorf("oci:%s: %w", dir, err)
	}
	digest, plat, err := pickPlatform(d.MediaType, d.Digest, func() (v1.ImageIndex, error) { return idx.ImageIndex(d.Digest) }, platform)
	if err != nil {
		return nil, fmt.Errorf("oci:%s:%s: %w", dir, d.Annotations[refNameAnnotation], err)
	}
	for _, r := range im.Manifests {
		if r.ArtifactType != SPDXMediaType {
			continue
		}
		img, err := idx.Image(r.Digest)
		if err != nil {
			return nil, fmt.Errorf("oci:%s: %w", dir, err)
		}
		if m, err := img.Manifest(); err != nil || m.Subject == nil || m.Subject.Digest != digest {
			continue
		}
		if doc, ok, err := blobOf(img); err != nil || ok {
			return doc, err
		}
	}
	return nil, fmt.Errorf("oci:%s:%s (%s, %s): %w; build it with gantry, whose SBOM is on unless sbom: false", dir, d.Annotations[refNameAnnotation], plat, digest, ErrNoSBOM)
}

// named is the layout's entry named name, or its only named entry.
func named(im *v1.IndexManifest, name string) (v1.Descriptor, error) {
	var names []string
	var only v1.Descriptor
	for _, d := range im.Manifests {
		n, ok := d.Annotations[refNameAnnotation]
		if !ok {
			continue
		}
		if n == name {
			return d, nil
		}
		names, only = append(names, n), d
	}
	if name == "" && len(names) == 1 {
		return only, nil
	}
	return v1.Descriptor{}, fmt.Errorf("%w: no image named %q (it has %s); give oci:DIR:NAME:TAG", ErrNoImage, name, strings.Join(names, ", "))
}
