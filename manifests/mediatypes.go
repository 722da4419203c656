// Package manifests writes image configs, manifests and indexes: media-type
// families, platforms, annotations and Docker's HEALTHCHECK.
package manifests

import (
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Family is a set of media types that belong together: a registry should
// never see a Docker manifest with OCI layers or the other way round.
type Family int

const (
	OCI Family = iota
	Docker
)

func (f Family) String() string {
	if f == Docker {
		return "docker"
	}
	return "oci"
}

// FamilyOf returns the family of a manifest or index media type.
func FamilyOf(mt types.MediaType) Family {
	switch mt {
	case types.DockerManifestSchema2, types.DockerManifestList, types.DockerConfigJSON:
		return Docker
	}
	return OCI
}

// ManifestType is the image manifest media type of f.
func (f Family) ManifestType() types.MediaType {
	if f == Docker {
		return types.DockerManifestSchema2
	}
	return types.OCIManifestSchema1
}

// IndexType is the index (manifest list) media type of f.
func (f Family) IndexType() types.MediaType {
	if f == Docker {
		return types.DockerManifestList
	}
	return types.OCIImageIndex
}

// ConfigType is the image config media type of f.
func (f Family) ConfigType() types.MediaType {
	if f == Docker {
		return types.DockerConfigJSON
	}
	return types.OCIConfigJSON
}

// LayerType is the media type of a layer compressed with algorithm ("gzip"
// or "zstd"). zstd exists only in the OCI family.
func (f Family) LayerType(algorithm string) (types.MediaType, error) {
	switch {
	case algorithm == "zstd" && f == Docker:
		return "", fmt.Errorf("zstd layers need OCI media types; the Docker family has none")
	case algorithm == "zstd":
		return types.OCILayerZStd, nil
	case f == Docker:
		return types.DockerLayer, nil
	default:
		return types.OCILayer, nil
	}
}

// toOCI maps a Docker layer or config media type to its OCI twin (same
// bytes, same digest). Other types are returned unchanged.
func toOCI(mt types.MediaType) types.MediaType {
	switch mt {
	case types.DockerLayer:
		return types.OCILayer
	case types.DockerUncompressedLayer:
		return types.OCIUncompressedLayer
	case types.DockerForeignLayer:
		return types.OCIRestrictedLayer
	case types.DockerConfigJSON:
		return types.OCIConfigJSON
	case types.DockerManifestSchema2:
		return types.OCIManifestSchema1
	case types.DockerManifestList:
		return types.OCIImageIndex
	}
	return mt
}

// toDocker is mt's Docker v2 counterpart; false when it has none (zstd).
func toDocker(mt types.MediaType) (types.MediaType, bool) {
	switch mt {
	case types.OCILayer, types.DockerLayer:
		return types.DockerLayer, true
	case types.OCIUncompressedLayer, types.DockerUncompressedLayer:
		return types.DockerUncompressedLayer, true
	case types.OCIRestrictedLayer, types.DockerForeignLayer:
		return types.DockerForeignLayer, true
	}
	return mt, false
}

// IsAttestation reports whether an index entry is a BuildKit attestation
// (or another non-platform artifact) rather than a platform's image.
func IsAttestation(d v1.Descriptor) bool {
	if d.Annotations["vnd.docker.reference.type"] != "" {
		return true
	}
	return d.Platform != nil && d.Platform.OS == "unknown" && d.Platform.Architecture == "unknown"
}

// ParsePlatform parses "os/arch[/variant]".
func ParsePlatform(s string) (v1.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return v1.Platform{}, fmt.Errorf("platform %q: want os/arch or os/arch/variant, e.g. linux/arm64/v8", s)
	}
	p := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// PlatformString formats p as os/arch[/variant].
func PlatformString(p *v1.Platform) string {
	if p == nil {
		return "unknown"
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// Matches reports whether have satisfies want: same OS and architecture, and
// the same variant when want names one (arm64's "v8" is the default).
func Matches(have *v1.Platform, want v1.Platform) bool {
	if have == nil || have.OS != want.OS || have.Architecture != want.Architecture {
		return false
	}
	if want.Variant == "" {
		return true
	}
	hv := have.Variant
	if hv == "" && have.Architecture == "arm64" {
		hv = "v8"
	}
	return hv == want.Variant
}
