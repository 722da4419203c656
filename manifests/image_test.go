package manifests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func sha(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

// withPlatform sets the config's platform (validate.Index checks it).
func withPlatform(t *testing.T, img v1.Image, p v1.Platform) v1.Image {
	t.Helper()
	cf := must[*v1.ConfigFile](t)(img.ConfigFile()).DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	return must[v1.Image](t)(mutate.ConfigFile(img, cf))
}

// dockerBase is random.Image: a Docker schema 2 image with Docker layers.
func dockerBase(t *testing.T, p v1.Platform) v1.Image {
	t.Helper()
	img := withPlatform(t, must[v1.Image](t)(random.Image(300, 2)), p)
	if mt := must[types.MediaType](t)(img.MediaType()); mt != types.DockerManifestSchema2 {
		t.Fatalf("random.Image has media type %s; the tests assume Docker schema 2", mt)
	}
	return img
}

// ociBase is an OCI image with OCI layers, manifest annotations and a subject.
func ociBase(t *testing.T, p v1.Platform) v1.Image {
	t.Helper()
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	for range 2 {
		img = must[v1.Image](t)(mutate.AppendLayers(img, must[v1.Layer](t)(random.Layer(300, types.OCILayer))))
	}
	img = withPlatform(t, img, p)
	img = mutate.Annotations(img, map[string]string{"base.only": "kept", "shared": "base"}).(v1.Image)
	subject := v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: 7, Digest: hash('5')}
	return mutate.Subject(img, subject).(v1.Image)
}

// appendTo builds base + n random layers of family f, with a config patched
// as the engine patches it.
func appendTo(t *testing.T, base v1.Image, f Family, n int, ann map[string]string) (*Image, []v1.Layer, []byte) {
	t.Helper()
	lt := must[types.MediaType](t)(f.LayerType("gzip"))
	var layers []v1.Layer
	var diffIDs []v1.Hash
	var hist []History
	for range n {
		l := must[v1.Layer](t)(random.Layer(200, lt))
		layers = append(layers, l)
		diffIDs = append(diffIDs, must[v1.Hash](t)(l.DiffID()))
		hist = append(hist, History{CreatedBy: "test"})
	}
	cfg := must[[]byte](t)(PatchConfig(must[[]byte](t)(base.RawConfigFile()), ConfigPatch{
		Env: []string{"A=1"}, Created: time.Unix(1700000000, 0), DiffIDs: diffIDs, History: hist,
	}))
	img, err := Append(base, cfg, layers, AppendOptions{Family: f, Annotations: ann})
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return img, layers, cfg
}

func rawFields(t *testing.T, raw []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAppend(t *testing.T) {
	amd64 := v1.Platform{OS: "linux", Architecture: "amd64"}
	ann := map[string]string{"org.opencontainers.image.base.digest": "sha256:abc", "shared": "new"}
	for _, tc := range []struct {
		name   string
		base   v1.Image
		family Family
		// wantBaseTypes are the media types the base layers must have.
		wantBaseType types.MediaType
		wantAnn      map[string]string // nil: no "annotations" key
	}{
		{"docker over docker", dockerBase(t, amd64), Docker, types.DockerLayer, nil},
		{"oci over docker converts", dockerBase(t, amd64), OCI, types.OCILayer, ann},
		{"oci over oci merges annotations", ociBase(t, amd64), OCI, types.OCILayer,
			map[string]string{"base.only": "kept", "shared": "new", "org.opencontainers.image.base.digest": "sha256:abc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			baseM := must[*v1.Manifest](t)(tc.base.Manifest())
			img, newLayers, cfg := appendTo(t, tc.base, tc.family, 2, ann)
			raw := must[[]byte](t)(img.RawManifest())
			m := must[*v1.Manifest](t)(img.Manifest())

			if m.SchemaVersion != 2 || m.MediaType != tc.family.ManifestType() || must[types.MediaType](t)(img.MediaType()) != tc.family.ManifestType() {
				t.Errorf("schemaVersion %d mediaType %s, want 2 %s", m.SchemaVersion, m.MediaType, tc.family.ManifestType())
			}
			if m.Config.MediaType != tc.family.ConfigType() || m.Config.Digest != sha(cfg) || m.Config.Size != int64(len(cfg)) {
				t.Errorf("config descriptor %+v, want %s %s %d", m.Config, tc.family.ConfigType(), sha(cfg), len(cfg))
			}
			if got := must[v1.Hash](t)(img.ConfigName()); got != sha(cfg) {
				t.Errorf("ConfigName = %s", got)
			}
			if len(m.Layers) != len(baseM.Layers)+len(newLayers) {
				t.Fatalf("%d layers, want %d base + %d new", len(m.Layers), len(baseM.Layers), len(newLayers))
			}
			for i, bd := range baseM.Layers {
				d := m.Layers[i]
				if d.Digest != bd.Digest || d.Size != bd.Size || d.MediaType != tc.wantBaseType {
					t.Errorf("base layer %d: %s %d %s, want %s %d %s", i, d.Digest, d.Size, d.MediaType, bd.Digest, bd.Size, tc.wantBaseType)
				}
			}
			lt := must[types.MediaType](t)(tc.family.LayerType("gzip"))
			for i, l := range newLayers {
				d := m.Layers[len(baseM.Layers)+i]
				if d.Digest != must[v1.Hash](t)(l.Digest()) || d.Size != must[int64](t)(l.Size()) || d.MediaType != lt {
					t.Errorf("new layer %d: descriptor %+v", i, d)
				}
			}
			ls := must[[]v1.Layer](t)(img.Layers())
			for i, l := range ls {
				if mt := must[types.MediaType](t)(l.MediaType()); mt != m.Layers[i].MediaType {
					t.Errorf("Layers()[%d].MediaType() = %s, manifest says %s", i, mt, m.Layers[i].MediaType)
				}
			}

			fields := rawFields(t, raw)
			if _, ok := fields["subject"]; ok {
				t.Errorf("the base's subject was kept: %s", fields["subject"])
			}
			if tc.wantAnn == nil {
				if a, ok := fields["annotations"]; ok {
					t.Errorf("Docker manifest has annotations: %s", a)
				}
			} else if !maps.Equal(m.Annotations, tc.wantAnn) {
				t.Errorf("annotations = %v, want %v", m.Annotations, tc.wantAnn)
			}

			if err := validate.Image(img); err != nil {
				t.Errorf("validate.Image: %v", err)
			}
			if d := must[v1.Hash](t)(img.Digest()); d != sha(raw) {
				t.Errorf("Digest %s, want sha256 of the manifest %s", d, sha(raw))
			}
			if s := must[int64](t)(img.Size()); s != int64(len(raw)) {
				t.Errorf("Size %d, want %d", s, len(raw))
			}
			if !bytes.Equal(must[[]byte](t)(img.RawConfigFile()), cfg) {
				t.Error("RawConfigFile is not the config given")
			}
			if l, err := img.LayerByDigest(sha(cfg)); err != nil || must[v1.Hash](t)(l.Digest()) != sha(cfg) {
				t.Errorf("LayerByDigest(config) = %v", err)
			}
			if _, err := img.LayerByDigest(hash('9')); err == nil {
				t.Error("LayerByDigest(unknown) succeeded")
			}
			if _, err := img.LayerByDiffID(hash('9')); err == nil {
				t.Error("LayerByDiffID(unknown) succeeded")
			}
			cf := must[*v1.ConfigFile](t)(img.ConfigFile())
			if !reflect.DeepEqual(cf.Config.Env, []string{"A=1"}) {
				t.Errorf("config Env = %q", cf.Config.Env)
			}

			// Same input, same bytes.
			again, err := Append(tc.base, cfg, newLayers, AppendOptions{Family: tc.family, Annotations: ann})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(must[[]byte](t)(again.RawManifest()), raw) {
				t.Error("Append is not deterministic")
			}
		})
	}
}

// mountableBase gives its layers as remote.Write would mount them.
type mountableBase struct {
	v1.Image
	ref name.Reference
}

func (b mountableBase) Layers() ([]v1.Layer, error) {
	ls, err := b.Image.Layers()
	var out []v1.Layer
	for _, l := range ls {
		out = append(out, &remote.MountableLayer{Layer: l, Reference: b.ref})
	}
	return out, err
}

func TestAppendKeepsBaseLayersMountable(t *testing.T) {
	ref := must[name.Reference](t)(name.ParseReference("registry.example.com/library/nginx:alpine"))
	base := mountableBase{dockerBase(t, v1.Platform{OS: "linux", Architecture: "amd64"}), ref}
	for _, f := range []Family{Docker, OCI} {
		img, _, _ := appendTo(t, base, f, 1, nil)
		ls := must[[]v1.Layer](t)(img.Layers())
		for i := range 2 {
			ml, ok := ls[i].(*remote.MountableLayer)
			if !ok {
				t.Errorf("%v: base layer %d is a %T, not mountable", f, i, ls[i])
				continue
			}
			if ml.Reference != ref {
				t.Errorf("%v: base layer %d reference %v", f, i, ml.Reference)
			}
			want := must[types.MediaType](t)(f.LayerType("gzip"))
			if mt := must[types.MediaType](t)(ml.MediaType()); mt != want {
				t.Errorf("%v: base layer %d media type %s, want %s", f, i, mt, want)
			}
		}
		if err := validate.Image(img); err != nil {
			t.Errorf("%v: validate.Image: %v", f, err)
		}
	}
}

// shortBase lists fewer layers than its manifest.
type shortBase struct{ v1.Image }

func (b shortBase) Layers() ([]v1.Layer, error) {
	ls, err := b.Image.Layers()
	return ls[:1], err
}

func TestAppendErrors(t *testing.T) {
	base := dockerBase(t, v1.Platform{OS: "linux", Architecture: "amd64"})
	if _, err := Append(shortBase{base}, []byte("{}"), nil, AppendOptions{}); err == nil {
		t.Error("Append accepted a base whose layers do not match its manifest")
	}
	raw := must[[]byte](t)(base.RawManifest())
	if _, err := FromRaw(raw, []byte("{}"), nil); err == nil {
		t.Error("FromRaw accepted fewer layers than the manifest lists")
	}
	if _, err := FromRaw([]byte("not json"), []byte("{}"), nil); err == nil {
		t.Error("FromRaw accepted a broken manifest")
	}
}

func TestNewIndex(t *testing.T) {
	plats := []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}}
	for _, f := range []Family{OCI, Docker} {
		t.Run(f.String(), func(t *testing.T) {
			var children []Child
			var baseDescs []v1.Descriptor
			for _, p := range plats {
				base := dockerBase(t, p)
				baseDescs = append(baseDescs, v1.Descriptor{
					MediaType: types.DockerManifestSchema2, Size: must[int64](t)(base.Size()),
					Digest: must[v1.Hash](t)(base.Digest()), Platform: &p,
				})
				img, _, _ := appendTo(t, base, f, 1, map[string]string{"a": "b"})
				children = append(children, Child{Image: img, Platform: &p, Annotations: map[string]string{"child": p.Architecture}})
			}
			att := v1.Descriptor{
				MediaType: types.OCIManifestSchema1, Size: 100, Digest: hash('7'),
				Platform:    &v1.Platform{OS: "unknown", Architecture: "unknown"},
				Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": baseDescs[0].Digest.String()},
			}
			baseIndex := must[[]byte](t)(json.Marshal(map[string]any{
				"schemaVersion": 2,
				"mediaType":     types.OCIImageIndex,
				"manifests":     append(baseDescs, att),
				"annotations":   map[string]string{"org.opencontainers.image.title": "base", "shared": "base"},
				"subject":       v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: 1, Digest: hash('8')},
			}))
			idx, err := NewIndex(baseIndex, f, children, map[string]string{"shared": "new", "org.opencontainers.image.created": "1970-01-01T00:00:00Z"})
			if err != nil {
				t.Fatal(err)
			}
			raw := must[[]byte](t)(idx.RawManifest())
			im := must[*v1.IndexManifest](t)(idx.IndexManifest())
			if im.SchemaVersion != 2 || im.MediaType != f.IndexType() || must[types.MediaType](t)(idx.MediaType()) != f.IndexType() {
				t.Errorf("index %d %s, want %s", im.SchemaVersion, im.MediaType, f.IndexType())
			}
			if len(im.Manifests) != len(children) {
				t.Fatalf("%d manifests, want %d (attestations dropped)", len(im.Manifests), len(children))
			}
			for i, d := range im.Manifests {
				c := children[i]
				if IsAttestation(d) {
					t.Errorf("manifests[%d] is an attestation", i)
				}
				if d.Digest != must[v1.Hash](t)(c.Image.Digest()) || d.Size != must[int64](t)(c.Image.Size()) || d.MediaType != f.ManifestType() {
					t.Errorf("manifests[%d] = %+v", i, d)
				}
				if d.Platform == nil || !d.Platform.Equals(*c.Platform) {
					t.Errorf("manifests[%d].platform = %v, want %v", i, d.Platform, c.Platform)
				}
				if f == OCI && !maps.Equal(d.Annotations, c.Annotations) || f == Docker && d.Annotations != nil {
					t.Errorf("manifests[%d].annotations = %v", i, d.Annotations)
				}
				got, err := idx.Image(d.Digest)
				if err != nil || got != c.Image {
					t.Errorf("Image(%s) = %v, %v; want the child", d.Digest, got, err)
				}
			}
			fields := rawFields(t, raw)
			if _, ok := fields["subject"]; ok {
				t.Error("the base index's subject was kept")
			}
			if f == Docker {
				if a, ok := fields["annotations"]; ok {
					t.Errorf("Docker index has annotations: %s", a)
				}
			} else if want := map[string]string{"org.opencontainers.image.title": "base", "shared": "new", "org.opencontainers.image.created": "1970-01-01T00:00:00Z"}; !maps.Equal(im.Annotations, want) {
				t.Errorf("annotations = %v, want %v", im.Annotations, want)
			}
			if _, err := idx.Image(hash('9')); err == nil {
				t.Error("Image(unknown) succeeded")
			}
			if _, err := idx.ImageIndex(hash('9')); err == nil {
				t.Error("ImageIndex succeeded")
			}
			if d := must[v1.Hash](t)(idx.Digest()); d != sha(raw) {
				t.Errorf("Digest = %s, want %s", d, sha(raw))
			}
			if s := must[int64](t)(idx.Size()); s != int64(len(raw)) {
				t.Errorf("Size = %d", s)
			}
			if err := validate.Index(idx); err != nil {
				t.Errorf("validate.Index: %v", err)
			}
			again, err := NewIndex(baseIndex, f, children, map[string]string{"shared": "new", "org.opencontainers.image.created": "1970-01-01T00:00:00Z"})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(must[[]byte](t)(again.RawManifest()), raw) {
				t.Error("NewIndex is not deterministic")
			}
		})
	}
}

func TestNewIndexWithoutBase(t *testing.T) {
	p := v1.Platform{OS: "linux", Architecture: "amd64"}
	img, _, _ := appendTo(t, dockerBase(t, p), OCI, 1, nil)
	idx, err := NewIndex(nil, OCI, []Child{{Image: img, Platform: &p}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fields := rawFields(t, must[[]byte](t)(idx.RawManifest()))
	if _, ok := fields["annotations"]; ok {
		t.Errorf("annotations without any given: %s", fields["annotations"])
	}
	if err := validate.Index(idx); err != nil {
		t.Errorf("validate.Index: %v", err)
	}
	if _, err := NewIndex([]byte("{"), OCI, nil, nil); err == nil {
		t.Error("NewIndex accepted a broken base index")
	}
}

// A base index whose annotations are null gets the new ones (it panicked:
// assignment to entry in nil map).
func TestNewIndexNullAnnotations(t *testing.T) {
	idx, err := NewIndex([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"annotations":null}`), OCI, nil, map[string]string{"a": "b"})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := idx.IndexManifest()
	if m.Annotations["a"] != "b" {
		t.Errorf("annotations %v", m.Annotations)
	}
}
