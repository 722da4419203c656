package manifests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Image is an image made from raw manifest and config bytes and its layers.
// Base layers are passed through as the base gave them (for a registry base,
// mountable remote layers), so writing it never reads them unless the
// target lacks them.
type Image struct {
	raw      []byte
	manifest *v1.Manifest
	config   []byte
	layers   []v1.Layer
	byDigest map[v1.Hash]v1.Layer
}

var _ v1.Image = (*Image)(nil)

// AppendOptions says how to turn a base manifest into the new one.
type AppendOptions struct {
	// Family of the result. Converting Docker → OCI rewrites the base's
	// descriptor media types (never their bytes or digests).
	Family Family
	// Annotations are merged into the manifest's (OCI family only; Docker
	// manifests have no annotations).
	Annotations map[string]string
}

// Append builds the image that is base plus layers, with config (the
// patched config bytes).
func Append(base v1.Image, config []byte, layers []v1.Layer, o AppendOptions) (*Image, error) {
	m, descs, all, err := readBase(base)
	if err != nil {
		return nil, err
	}
	switch o.Family {
	case OCI:
		retypeToOCI(descs, all)
	case Docker:
		if err := retypeToDocker(descs, all); err != nil {
			return nil, err
		}
	}
	if descs, all, err = appendLayers(descs, all, layers); err != nil {
		return nil, err
	}
	setJSON(m, "schemaVersion", 2)
	setJSON(m, "mediaType", o.Family.ManifestType())
	setJSON(m, "config", configDescriptor(o.Family, config))
	setJSON(m, "layers", descs)
	if err := setAnnotations(m, o.Family, o.Annotations); err != nil {
		return nil, fmt.Errorf("parsing base manifest annotations: %w", err)
	}
	delete(m, "subject") // the new image refers to nothing the base referred to
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return FromRaw(raw, config, all)
}

// readBase returns base's manifest as raw fields, its layer descriptors and
// (a copy of the list of) its layers, which must agree in number.
func readBase(base v1.Image) (map[string]json.RawMessage, []v1.Descriptor, []v1.Layer, error) {
	rawBase, err := base.RawManifest()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading base manifest: %w", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(rawBase, &m); err != nil {
		return nil, nil, nil, fmt.Errorf("parsing base manifest: %w", err)
	}
	var descs []v1.Descriptor
	if err := json.Unmarshal(m["layers"], &descs); err != nil {
		return nil, nil, nil, fmt.Errorf("parsing base manifest layers: %w", err)
	}
	baseLayers, err := base.Layers()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("listing base layers: %w", err)
	}
	if len(baseLayers) != len(descs) {
		return nil, nil, nil, fmt.Errorf("base manifest lists %d layers but the image has %d", len(descs), len(baseLayers))
	}
	return m, descs, append([]v1.Layer(nil), baseLayers...), nil
}

// retypeToOCI gives each Docker layer descriptor, and its layer, the media
// type of its OCI twin.
func retypeToOCI(descs []v1.Descriptor, layers []v1.Layer) {
	for i := range descs {
		mt := toOCI(descs[i].MediaType)
		if mt != descs[i].MediaType {
			descs[i].MediaType = mt
			layers[i] = withMediaType(layers[i], mt)
		}
	}
}

// retypeToDocker gives an OCI base's layers Docker media types (same
// bytes, same digests); a zstd or non-distributable layer has none.
func retypeToDocker(descs []v1.Descriptor, layers []v1.Layer) error {
	for i := range descs {
		mt, ok := toDocker(descs[i].MediaType)
		if !ok {
			return fmt.Errorf("base layer %s is %s, which a Docker image cannot hold; use format: oci", descs[i].Digest, descs[i].MediaType)
		}
		if mt != descs[i].MediaType {
			descs[i].MediaType = mt
			layers[i] = withMediaType(layers[i], mt)
		}
	}
	return nil
}

// appendLayers adds the new layers and their descriptors after the base's.
func appendLayers(descs []v1.Descriptor, all, layers []v1.Layer) ([]v1.Descriptor, []v1.Layer, error) {
	for _, l := range layers {
		d, err := partial.Descriptor(l)
		if err != nil {
			return nil, nil, fmt.Errorf("describing new layer: %w", err)
		}
		descs = append(descs, v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest})
		all = append(all, l)
	}
	return descs, all, nil
}

// configDescriptor describes config as family f's config blob.
func configDescriptor(f Family, config []byte) v1.Descriptor {
	sum := sha256.Sum256(config)
	return v1.Descriptor{
		MediaType: f.ConfigType(),
		Size:      int64(len(config)),
		Digest:    v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])},
	}
}

// setAnnotations merges add into m's annotations for the OCI family, and
// drops them for Docker, whose manifests and indexes have none. The error
// is the base's annotations failing to parse.
func setAnnotations(m map[string]json.RawMessage, f Family, add map[string]string) error {
	if f == OCI && len(add) > 0 {
		ann := map[string]string{}
		if raw, ok := m["annotations"]; ok {
			if err := json.Unmarshal(raw, &ann); err != nil {
				return err
			}
		}
		if ann == nil { // "annotations": null
			ann = map[string]string{}
		}
		maps.Copy(ann, add)
		setJSON(m, "annotations", ann)
	}
	if f == Docker {
		delete(m, "annotations")
	}
	return nil
}

// withMediaType returns l reporting media type mt (a layer whose Docker
// descriptor became its OCI twin: same bytes, same digest), so that Layers()
// agrees with the manifest. A remote layer stays mountable.
func withMediaType(l v1.Layer, mt types.MediaType) v1.Layer {
	if ml, ok := l.(*remote.MountableLayer); ok {
		return &remote.MountableLayer{Layer: typedLayer{ml.Layer, mt}, Reference: ml.Reference}
	}
	return typedLayer{l, mt}
}

type typedLayer struct {
	v1.Layer
	mt types.MediaType
}

func (l typedLayer) MediaType() (types.MediaType, error) { return l.mt, nil }

func setJSON(m map[string]json.RawMessage, k string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called with marshalable values
	}
	m[k] = b
}

// FromRaw makes an Image from its manifest and config bytes and its layers
// in manifest order.
func FromRaw(rawManifest, config []byte, layers []v1.Layer) (*Image, error) {
	m, err := v1.ParseManifest(bytes.NewReader(rawManifest))
	if err != nil {
		return nil, fmt.Errorf("parsing manifest: %w", err)
	}
	if len(layers) != len(m.Layers) {
		return nil, fmt.Errorf("manifest lists %d layers but %d were given", len(m.Layers), len(layers))
	}
	img := &Image{raw: rawManifest, manifest: m, config: config, layers: layers, byDigest: map[v1.Hash]v1.Layer{}}
	for i, l := range layers {
		img.byDigest[m.Layers[i].Digest] = l
	}
	return img, nil
}

func (i *Image) Layers() ([]v1.Layer, error)         { return i.layers, nil }
func (i *Image) MediaType() (types.MediaType, error) { return i.manifest.MediaType, nil }
func (i *Image) Size() (int64, error)                { return int64(len(i.raw)), nil }
func (i *Image) ConfigName() (v1.Hash, error)        { return i.manifest.Config.Digest, nil }
func (i *Image) RawConfigFile() ([]byte, error)      { return i.config, nil }
func (i *Image) RawManifest() ([]byte, error)        { return i.raw, nil }
func (i *Image) Manifest() (*v1.Manifest, error)     { return i.manifest.DeepCopy(), nil }
func (i *Image) Digest() (v1.Hash, error) {
	sum := sha256.Sum256(i.raw)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}, nil
}

func (i *Image) ConfigFile() (*v1.ConfigFile, error) {
	return v1.ParseConfigFile(bytes.NewReader(i.config))
}

func (i *Image) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	if l, ok := i.byDigest[h]; ok {
		return l, nil
	}
	if h == i.manifest.Config.Digest {
		return partial.ConfigLayer(i)
	}
	return nil, fmt.Errorf("image has no layer %s", h)
}

func (i *Image) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	cf, err := i.ConfigFile()
	if err != nil {
		return nil, err
	}
	for n, d := range cf.RootFS.DiffIDs {
		if d == h && n < len(i.layers) {
			return i.layers[n], nil
		}
	}
	return nil, fmt.Errorf("image has no layer with diffID %s", h)
}

// Child is one platform's image in an index.
type Child struct {
	Image    v1.Image
	Platform *v1.Platform
	// Annotations of the base index's entry that are still true.
	Annotations map[string]string
}

// Index is an image index made from its children.
type Index struct {
	raw      []byte
	manifest *v1.IndexManifest
	images   map[v1.Hash]v1.Image
}

var _ v1.ImageIndex = (*Index)(nil)

// NewIndex builds an index of children. base is the base index's raw
// manifest (its other fields and annotations are kept) or nil.
func NewIndex(base []byte, f Family, children []Child, annotations map[string]string) (*Index, error) {
	m := map[string]json.RawMessage{}
	if base != nil {
		if err := json.Unmarshal(base, &m); err != nil {
			return nil, fmt.Errorf("parsing base index: %w", err)
		}
	}
	idx := &Index{images: map[v1.Hash]v1.Image{}}
	var descs []v1.Descriptor
	for _, c := range children {
		d, err := partial.Descriptor(c.Image)
		if err != nil {
			return nil, err
		}
		desc := v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest, Platform: c.Platform}
		if len(c.Annotations) > 0 && f == OCI {
			desc.Annotations = c.Annotations
		}
		descs = append(descs, desc)
		idx.images[d.Digest] = c.Image
	}
	setJSON(m, "schemaVersion", 2)
	setJSON(m, "mediaType", f.IndexType())
	setJSON(m, "manifests", descs)
	if err := setAnnotations(m, f, annotations); err != nil {
		return nil, fmt.Errorf("parsing base index annotations: %w", err)
	}
	delete(m, "subject")
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	idx.raw, idx.manifest = raw, im
	return idx, nil
}

func (x *Index) MediaType() (types.MediaType, error)       { return x.manifest.MediaType, nil }
func (x *Index) Size() (int64, error)                      { return int64(len(x.raw)), nil }
func (x *Index) RawManifest() ([]byte, error)              { return x.raw, nil }
func (x *Index) IndexManifest() (*v1.IndexManifest, error) { return x.manifest.DeepCopy(), nil }
func (x *Index) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	return nil, fmt.Errorf("index has no child index %s", h)
}
func (x *Index) Digest() (v1.Hash, error) {
	sum := sha256.Sum256(x.raw)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}, nil
}

func (x *Index) Image(h v1.Hash) (v1.Image, error) {
	if img, ok := x.images[h]; ok {
		return img, nil
	}
	return nil, fmt.Errorf("index has no image %s", h)
}
