package attest

import (
	"bytes"
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// emptyJSON is the OCI 1.1 empty descriptor's content, an artifact's
// config.
var emptyJSON = []byte("{}")

const emptyMediaType types.MediaType = "application/vnd.oci.empty.v1+json"

// Artifact is an OCI 1.1 artifact manifest (an image manifest with an
// artifactType, the empty config and one blob) whose subject is a platform
// image: what registries list as that image's referrers.
type Artifact struct {
	Image        v1.Image
	Digest       v1.Hash
	ArtifactType string
	Subject      v1.Descriptor
	// Descriptor is the artifact manifest's own, with its artifactType and
	// annotations, as a referrers index lists it.
	Descriptor v1.Descriptor
}

// NewArtifact wraps blob (of media type artifactType, named title) in an
// artifact manifest referring to subject.
func NewArtifact(subject v1.Descriptor, artifactType string, layer v1.Layer, title string, annotations map[string]string) (*Artifact, error) {
	ld, err := partial.Descriptor(layer)
	if err != nil {
		return nil, err
	}
	ld.Annotations = map[string]string{"org.opencontainers.image.title": title}
	cd, _, err := v1.SHA256(bytes.NewReader(emptyJSON))
	if err != nil {
		return nil, err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        v1.Descriptor{MediaType: emptyMediaType, Size: int64(len(emptyJSON)), Digest: cd, Data: emptyJSON},
		Layers:        []v1.Descriptor{*ld},
		Subject:       &v1.Descriptor{MediaType: subject.MediaType, Size: subject.Size, Digest: subject.Digest},
		Annotations:   annotations,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("writing the %s artifact manifest: %w", artifactType, err)
	}
	img, err := partial.CompressedToImage(artifactCore{raw: raw, layer: layer})
	if err != nil {
		return nil, err
	}
	d, size, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	return &Artifact{
		Image: img, Digest: d, ArtifactType: artifactType, Subject: *m.Subject,
		Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: size, Digest: d, ArtifactType: artifactType, Annotations: annotations},
	}, nil
}

type artifactCore struct {
	raw   []byte
	layer v1.Layer
}

func (a artifactCore) RawConfigFile() ([]byte, error)      { return emptyJSON, nil }
func (a artifactCore) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a artifactCore) RawManifest() ([]byte, error)        { return a.raw, nil }

func (a artifactCore) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if d, _ := a.layer.Digest(); d == h {
		return a.layer, nil
	}
	return nil, fmt.Errorf("artifact has no blob %s", h)
}

// Attach makes the artifact manifests referring to img: of sbom (the
// document WriteSBOM wrote for img, of media type SPDXMediaType; nil
// leaves it out) and of img's provenance, if asked.
func Attach(img Image, in Inputs, sbom v1.Layer, provenance bool) ([]*Artifact, error) {
	subject := v1.Descriptor{MediaType: types.MediaType(img.MediaType), Size: img.Size, Digest: img.Digest}
	created := map[string]string{"org.opencontainers.image.created": img.Created.UTC().Format("2006-01-02T15:04:05Z")}
	var out []*Artifact
	if sbom != nil {
		a, err := NewArtifact(subject, SPDXMediaType, sbom, "sbom.spdx.json", created)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if provenance {
		doc, err := Provenance(img, in)
		if err != nil {
			return nil, err
		}
		ann := map[string]string{predicateAnnotation: slsaPredicateType}
		for k, v := range created {
			ann[k] = v
		}
		a, err := NewArtifact(subject, InTotoMediaType, static.NewLayer(doc, InTotoMediaType), "provenance.intoto.json", ann)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}
