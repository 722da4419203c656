package manifests

import (
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestParsePlatform(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    v1.Platform
		wantErr bool
	}{
		{in: "linux/amd64", want: v1.Platform{OS: "linux", Architecture: "amd64"}},
		{in: "linux/arm64/v8", want: v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}},
		{in: "linux/arm/v7", want: v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}},
		{in: "windows/amd64", want: v1.Platform{OS: "windows", Architecture: "amd64"}},
		{in: "linux", wantErr: true},
		{in: "", wantErr: true},
		{in: "linux/", wantErr: true},
		{in: "/amd64", wantErr: true},
		{in: "linux/arm/v7/extra", wantErr: true},
		{in: "all", wantErr: true},
	} {
		got, err := ParsePlatform(tc.in)
		if tc.wantErr {
			if err == nil {
				t.Errorf("ParsePlatform(%q) = %+v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || !got.Equals(tc.want) {
			t.Errorf("ParsePlatform(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if s := PlatformString(&got); s != tc.in {
			t.Errorf("PlatformString(ParsePlatform(%q)) = %q", tc.in, s)
		}
	}
	if s := PlatformString(nil); s != "unknown" {
		t.Errorf("PlatformString(nil) = %q", s)
	}
}

func TestMatches(t *testing.T) {
	p := func(os, arch, variant string) *v1.Platform {
		return &v1.Platform{OS: os, Architecture: arch, Variant: variant}
	}
	for _, tc := range []struct {
		name string
		have *v1.Platform
		want string
		ok   bool
	}{
		{"same", p("linux", "amd64", ""), "linux/amd64", true},
		{"other arch", p("linux", "arm64", ""), "linux/amd64", false},
		{"other os", p("windows", "amd64", ""), "linux/amd64", false},
		{"nil", nil, "linux/amd64", false},
		{"want without variant takes any", p("linux", "arm", "v7"), "linux/arm", true},
		{"arm64 default variant is v8", p("linux", "arm64", ""), "linux/arm64/v8", true},
		{"arm64 explicit v8", p("linux", "arm64", "v8"), "linux/arm64/v8", true},
		{"arm64 without variant, want without", p("linux", "arm64", "v8"), "linux/arm64", true},
		{"variant mismatch", p("linux", "arm", "v6"), "linux/arm/v7", false},
		{"arm has no default variant", p("linux", "arm", ""), "linux/arm/v7", false},
		{"arm64 v9 is not v8", p("linux", "arm64", "v9"), "linux/arm64/v8", false},
		{"attestation", p("unknown", "unknown", ""), "linux/amd64", false},
	} {
		want, err := ParsePlatform(tc.want)
		if err != nil {
			t.Fatal(err)
		}
		if got := Matches(tc.have, want); got != tc.ok {
			t.Errorf("%s: Matches(%s, %s) = %v, want %v", tc.name, PlatformString(tc.have), tc.want, got, tc.ok)
		}
	}
}

func TestIsAttestation(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    v1.Descriptor
		want bool
	}{
		{"platform image", v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}, false},
		{"no platform", v1.Descriptor{MediaType: types.OCIManifestSchema1}, false},
		{"unknown/unknown", v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"}}, true},
		{"unknown os only", v1.Descriptor{Platform: &v1.Platform{OS: "unknown", Architecture: "amd64"}}, false},
		{"reference type annotation", v1.Descriptor{
			Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": "sha256:x"},
		}, true},
		{"other annotations", v1.Descriptor{Annotations: map[string]string{"org.opencontainers.image.ref.name": "latest"},
			Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}, false},
	} {
		if got := IsAttestation(tc.d); got != tc.want {
			t.Errorf("%s: IsAttestation = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestFamily(t *testing.T) {
	for _, tc := range []struct {
		mt   types.MediaType
		want Family
	}{
		{types.DockerManifestSchema2, Docker},
		{types.DockerManifestList, Docker},
		{types.DockerConfigJSON, Docker},
		{types.OCIManifestSchema1, OCI},
		{types.OCIImageIndex, OCI},
		{types.OCIConfigJSON, OCI},
		{"", OCI},
	} {
		if got := FamilyOf(tc.mt); got != tc.want {
			t.Errorf("FamilyOf(%s) = %v, want %v", tc.mt, got, tc.want)
		}
	}
	for _, tc := range []struct {
		f                       Family
		name                    string
		manifest, index, config types.MediaType
		gzip, zstd              types.MediaType
		zstdErr                 bool
	}{
		{OCI, "oci", types.OCIManifestSchema1, types.OCIImageIndex, types.OCIConfigJSON, types.OCILayer, types.OCILayerZStd, false},
		{Docker, "docker", types.DockerManifestSchema2, types.DockerManifestList, types.DockerConfigJSON, types.DockerLayer, "", true},
	} {
		if tc.f.String() != tc.name || tc.f.ManifestType() != tc.manifest || tc.f.IndexType() != tc.index || tc.f.ConfigType() != tc.config {
			t.Errorf("%v: %s %s %s %s", tc.f, tc.f.String(), tc.f.ManifestType(), tc.f.IndexType(), tc.f.ConfigType())
		}
		if FamilyOf(tc.f.ManifestType()) != tc.f || FamilyOf(tc.f.IndexType()) != tc.f || FamilyOf(tc.f.ConfigType()) != tc.f {
			t.Errorf("%v: FamilyOf does not round-trip", tc.f)
		}
		for _, alg := range []string{"gzip", ""} {
			if mt, err := tc.f.LayerType(alg); err != nil || mt != tc.gzip {
				t.Errorf("%v.LayerType(%q) = %s, %v; want %s", tc.f, alg, mt, err, tc.gzip)
			}
		}
		mt, err := tc.f.LayerType("zstd")
		if tc.zstdErr != (err != nil) || mt != tc.zstd {
			t.Errorf("%v.LayerType(zstd) = %s, %v; want %q (error %v)", tc.f, mt, err, tc.zstd, tc.zstdErr)
		}
	}
}

func TestToOCI(t *testing.T) {
	for in, want := range map[types.MediaType]types.MediaType{
		types.DockerLayer:             types.OCILayer,
		types.DockerUncompressedLayer: types.OCIUncompressedLayer,
		types.DockerForeignLayer:      types.OCIRestrictedLayer,
		types.DockerConfigJSON:        types.OCIConfigJSON,
		types.DockerManifestSchema2:   types.OCIManifestSchema1,
		types.DockerManifestList:      types.OCIImageIndex,
		types.OCILayer:                types.OCILayer,
		types.OCILayerZStd:            types.OCILayerZStd,
		types.OCIConfigJSON:           types.OCIConfigJSON,
		"application/x-other":         "application/x-other",
	} {
		if got := toOCI(in); got != want {
			t.Errorf("toOCI(%s) = %s, want %s", in, got, want)
		}
	}
}
