// Command mkbase turns root filesystem tarballs made from Debian packages
// into a base image shaped like Docker Hub's official images, and pushes it:
// an OCI index with linux/amd64 and linux/arm64/v8 images followed by one
// BuildKit-style attestation manifest per image (platform unknown/unknown,
// annotated vnd.docker.reference.type=attestation-manifest and
// vnd.docker.reference.digest=<image digest>), as testdata/bases/gen writes.
//
// Usage (e2e/run.sh calls it):
//
//	mkbase -ref 127.0.0.1:5000/library/nginx:bookworm -purl pkg:docker/nginx@bookworm \
//	       -config config.json -layer rootfs.tar.gz='debootstrap ...' -layer extra.tar.gz='COPY ...'
//
// -config holds the image's container config (Cmd, Env, ExposedPorts,
// StopSignal, ...) as Docker writes it. -layer files are tar or tar+gzip
// streams, bottom first; a gzip file is pushed byte for byte.
//
// Only the amd64 root filesystem is real: the arm64 image reuses the same
// layers under an arm64 config (it is never run, only carried through
// gantry's multi-platform path). The summary on stdout says so.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	annRefType   = "vnd.docker.reference.type"
	annRefDigest = "vnd.docker.reference.digest"
	annBashbrew  = "com.docker.official-images.bashbrew.arch"
	annPredicate = "in-toto.io/predicate-type"
	mtInToto     = types.MediaType("application/vnd.in-toto+json")
)

type platform struct {
	v1.Platform
	bashbrew string
	real     bool // built from packages of this architecture
}

var platforms = []platform{
	{v1.Platform{OS: "linux", Architecture: "amd64"}, "amd64", true},
	{v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, "arm64v8", false},
}

type layerFlag []string

func (l *layerFlag) String() string     { return strings.Join(*l, ",") }
func (l *layerFlag) Set(v string) error { *l = append(*l, v); return nil }

type summary struct {
	Ref       string     `json:"ref"`
	Digest    string     `json:"digest"`
	MediaType string     `json:"mediaType"`
	Manifests []manifest `json:"manifests"`
}

type manifest struct {
	Digest     string `json:"digest"`
	Platform   string `json:"platform"`
	Kind       string `json:"kind"` // image or attestation-manifest
	RootfsFrom string `json:"rootfsFrom,omitempty"`
	Subject    string `json:"subject,omitempty"`
}

func main() {
	var layers layerFlag
	ref := flag.String("ref", "", "where to push the index (REGISTRY/REPO:TAG)")
	cfgFile := flag.String("config", "", "JSON file with the container config (Cmd, Env, ...)")
	purl := flag.String("purl", "pkg:docker/base@latest", "package URL named in the provenance attestations")
	created := flag.String("created", "2024-01-01T00:00:00Z", "created time of configs and history")
	flag.Var(&layers, "layer", "FILE=CREATED_BY: a tar or tar+gzip layer, bottom first (repeatable)")
	flag.Parse()
	if *ref == "" || *cfgFile == "" || len(layers) == 0 {
		fmt.Fprintln(os.Stderr, "usage: mkbase -ref REF -config FILE -layer FILE=CREATED_BY...")
		os.Exit(2)
	}
	s, err := run(*ref, *cfgFile, *purl, *created, layers)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkbase:", err)
		os.Exit(1)
	}
	out, _ := json.MarshalIndent(s, "", "  ")
	fmt.Println(string(out))
}

func run(refStr, cfgFile, purl, createdStr string, layerArgs []string) (*summary, error) {
	ref, err := name.ParseReference(refStr, name.Insecure)
	if err != nil {
		return nil, err
	}
	ts, err := time.Parse(time.RFC3339, createdStr)
	if err != nil {
		return nil, err
	}
	created := v1.Time{Time: ts}
	raw, err := os.ReadFile(cfgFile)
	if err != nil {
		return nil, err
	}
	var cfg v1.Config
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", cfgFile, err)
	}

	// The layers are opened once and shared by both platforms, so each is
	// hashed once and uploaded once.
	var adds []mutate.Addendum
	for _, a := range layerArgs {
		file, createdBy, _ := strings.Cut(a, "=")
		l, err := tarball.LayerFromFile(file, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", file, err)
		}
		adds = append(adds, mutate.Addendum{
			Layer:   l,
			History: v1.History{Created: created, CreatedBy: createdBy, Comment: "gantry e2e (Debian packages)"},
		})
	}

	s := &summary{Ref: ref.String()}
	var images, attestations []mutate.IndexAddendum
	for _, p := range platforms {
		img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
		img, err = mutate.ConfigFile(img, &v1.ConfigFile{
			Architecture: p.Architecture,
			Variant:      p.Variant,
			OS:           p.OS,
			Created:      created,
			Config:       cfg,
			RootFS:       v1.RootFS{Type: "layers"},
		})
		if err != nil {
			return nil, err
		}
		if img, err = mutate.Append(img, adds...); err != nil {
			return nil, err
		}
		dig, err := img.Digest()
		if err != nil {
			return nil, err
		}
		plat := p.Platform
		images = append(images, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform:    &plat,
			Annotations: map[string]string{annBashbrew: p.bashbrew},
		}})
		m := manifest{Digest: dig.String(), Platform: plat.String(), Kind: "image"}
		if !p.real {
			m.RootfsFrom = platforms[0].Platform.String()
		}
		s.Manifests = append(s.Manifests, m)

		att, err := attestation(dig, purl+"?platform="+strings.ReplaceAll(plat.String(), "/", "%2F"), created)
		if err != nil {
			return nil, err
		}
		attDig, err := att.Digest()
		if err != nil {
			return nil, err
		}
		attestations = append(attestations, mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"},
			Annotations: map[string]string{
				annBashbrew:  p.bashbrew,
				annRefDigest: dig.String(),
				annRefType:   "attestation-manifest",
			},
		}})
		s.Manifests = append(s.Manifests, manifest{Digest: attDig.String(), Platform: "unknown/unknown", Kind: "attestation-manifest", Subject: dig.String()})
	}
	// Docker Hub's order: every image first, then every attestation.
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx, append(images, attestations...)...)
	if err := remote.WriteIndex(ref, idx); err != nil {
		return nil, fmt.Errorf("push %s: %w", ref, err)
	}
	dig, err := idx.Digest()
	if err != nil {
		return nil, err
	}
	s.Digest, s.MediaType = dig.String(), string(types.OCIImageIndex)
	// Keep the summary in index order (images, then attestations).
	var ordered []manifest
	for _, kind := range []string{"image", "attestation-manifest"} {
		for _, m := range s.Manifests {
			if m.Kind == kind {
				ordered = append(ordered, m)
			}
		}
	}
	s.Manifests = ordered
	return s, nil
}

// attestation is a BuildKit-style provenance attestation manifest whose
// subject is the image manifest dig.
func attestation(dig v1.Hash, purl string, created v1.Time) (v1.Image, error) {
	stmt, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v0.1",
		"predicateType": "https://slsa.dev/provenance/v0.2",
		"subject":       []map[string]any{{"name": purl, "digest": map[string]string{"sha256": dig.Hex}}},
		"predicate": map[string]any{
			"builder":   map[string]string{"id": ""},
			"buildType": "https://mobyproject.org/buildkit@v1",
			"metadata": map[string]any{
				"buildStartedOn":  created.Format(time.RFC3339),
				"buildFinishedOn": created.Format(time.RFC3339),
				"completeness":    map[string]bool{"parameters": false, "environment": true, "materials": false},
				"reproducible":    false,
			},
		},
	})
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: "unknown",
		OS:           "unknown",
		RootFS:       v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{
		Layer:       static.NewLayer(stmt, mtInToto),
		Annotations: map[string]string{annPredicate: "https://slsa.dev/provenance/v0.2"},
	})
}
