// Command mkbase turns root filesystem tarballs made from Debian packages
// into a base image shaped like Docker Hub's official images, and pushes it:
// an OCI index with one image per platform (linux/amd64, linux/arm64/v8),
// each with its own layers and config, followed by one BuildKit-style
// attestation manifest per image (platform unknown/unknown, annotated
// vnd.docker.reference.type=attestation-manifest and
// vnd.docker.reference.digest=<image digest>), as testdata/bases/gen writes.
//
// Usage (e2e/run.sh calls it):
//
//	mkbase -ref 127.0.0.1:5000/library/nginx:bookworm -purl pkg:docker/nginx@bookworm \
//	       -platform linux/amd64 -config amd64.json \
//	           -layer rootfs-amd64.tar.gz='mmdebstrap ...' -layer shape-amd64.tar.gz='COPY ...' \
//	       -platform linux/arm64/v8 -config arm64.json \
//	           -layer rootfs-arm64.tar.gz='mmdebstrap ...' -layer shape-arm64.tar.gz='COPY ...'
//
// Each -platform starts an image; the -config and -layer flags after it are
// that image's. -config holds the image's container config (Cmd, Env,
// ExposedPorts, StopSignal, ...) as Docker writes it. -layer files are tar or
// tar+gzip streams, bottom first; a gzip file is pushed byte for byte. The
// images are indexed in the order given.
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

// bashbrew names Docker Hub's com.docker.official-images.bashbrew.arch of
// each platform mkbase knows.
var bashbrew = map[string]string{
	"linux/amd64":    "amd64",
	"linux/arm64/v8": "arm64v8",
}

// image is one -platform group of flags.
type image struct {
	platform v1.Platform
	config   string
	layers   []string // FILE=CREATED_BY, bottom first
}

// images collects -platform, -config and -layer in command-line order.
type images []*image

func (im *images) platform(v string) error {
	if _, ok := bashbrew[v]; !ok {
		return fmt.Errorf("unknown platform %q (want one of linux/amd64, linux/arm64/v8)", v)
	}
	p, err := v1.ParsePlatform(v)
	if err != nil {
		return err
	}
	for _, i := range *im {
		if i.platform.String() == p.String() {
			return fmt.Errorf("platform %s given twice", v)
		}
	}
	*im = append(*im, &image{platform: *p})
	return nil
}

func (im *images) last(flagName string) (*image, error) {
	if len(*im) == 0 {
		return nil, fmt.Errorf("-%s before any -platform", flagName)
	}
	return (*im)[len(*im)-1], nil
}

func (im *images) config(v string) error {
	i, err := im.last("config")
	if err != nil {
		return err
	}
	if i.config != "" {
		return fmt.Errorf("two -config for %s", i.platform.String())
	}
	i.config = v
	return nil
}

func (im *images) layer(v string) error {
	i, err := im.last("layer")
	if err != nil {
		return err
	}
	i.layers = append(i.layers, v)
	return nil
}

type summary struct {
	Ref       string     `json:"ref"`
	Digest    string     `json:"digest"`
	MediaType string     `json:"mediaType"`
	Manifests []manifest `json:"manifests"`
}

type manifest struct {
	Digest   string   `json:"digest"`
	Platform string   `json:"platform"`
	Kind     string   `json:"kind"` // image or attestation-manifest
	Layers   []string `json:"layers,omitempty"`
	Subject  string   `json:"subject,omitempty"`
}

func main() {
	var ims images
	ref := flag.String("ref", "", "where to push the index (REGISTRY/REPO:TAG)")
	purl := flag.String("purl", "pkg:docker/base@latest", "package URL named in the provenance attestations")
	created := flag.String("created", "2024-01-01T00:00:00Z", "created time of configs and history")
	flag.Func("platform", "OS/ARCH[/VARIANT]: starts an image; the -config and -layer flags after it are its own", ims.platform)
	flag.Func("config", "JSON file with the image's container config (Cmd, Env, ...)", ims.config)
	flag.Func("layer", "FILE=CREATED_BY: a tar or tar+gzip layer of the image, bottom first (repeatable)", ims.layer)
	flag.Parse()
	usage := "usage: mkbase -ref REF [-purl PURL] (-platform OS/ARCH[/VARIANT] -config FILE -layer FILE=CREATED_BY...)..."
	if *ref == "" || len(ims) == 0 || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	for _, i := range ims {
		if i.config == "" || len(i.layers) == 0 {
			fmt.Fprintf(os.Stderr, "mkbase: %s needs a -config and at least one -layer\n%s\n", i.platform.String(), usage)
			os.Exit(2)
		}
	}
	s, err := run(*ref, *purl, *created, ims)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkbase:", err)
		os.Exit(1)
	}
	out, _ := json.MarshalIndent(s, "", "  ")
	fmt.Println(string(out))
}

func readConfig(file string) (v1.Config, error) {
	var cfg v1.Config
	raw, err := os.ReadFile(file)
	if err != nil {
		return cfg, err
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("%s: %w", file, err)
	}
	return cfg, nil
}

func run(refStr, purl, createdStr string, ims images) (*summary, error) {
	ref, err := name.ParseReference(refStr, name.Insecure)
	if err != nil {
		return nil, err
	}
	ts, err := time.Parse(time.RFC3339, createdStr)
	if err != nil {
		return nil, err
	}
	created := v1.Time{Time: ts}

	s := &summary{Ref: ref.String()}
	var imgs, attestations []mutate.IndexAddendum
	var imgSums, attSums []manifest
	for _, im := range ims {
		plat := im.platform
		cfg, err := readConfig(im.config)
		if err != nil {
			return nil, err
		}
		img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
		img, err = mutate.ConfigFile(img, &v1.ConfigFile{
			Architecture: plat.Architecture,
			Variant:      plat.Variant,
			OS:           plat.OS,
			Created:      created,
			Config:       cfg,
			RootFS:       v1.RootFS{Type: "layers"},
		})
		if err != nil {
			return nil, err
		}
		var adds []mutate.Addendum
		for _, a := range im.layers {
			file, createdBy, _ := strings.Cut(a, "=")
			l, err := tarball.LayerFromFile(file, tarball.WithMediaType(types.OCILayer))
			if err != nil {
				return nil, fmt.Errorf("%s layer %s: %w", plat.String(), file, err)
			}
			adds = append(adds, mutate.Addendum{
				Layer:   l,
				History: v1.History{Created: created, CreatedBy: createdBy, Comment: "gantry e2e (Debian packages)"},
			})
		}
		if img, err = mutate.Append(img, adds...); err != nil {
			return nil, err
		}
		dig, err := img.Digest()
		if err != nil {
			return nil, err
		}
		ls, err := img.Layers()
		if err != nil {
			return nil, err
		}
		m := manifest{Digest: dig.String(), Platform: plat.String(), Kind: "image"}
		for _, l := range ls {
			d, err := l.Digest()
			if err != nil {
				return nil, err
			}
			m.Layers = append(m.Layers, d.String())
		}
		imgSums = append(imgSums, m)
		imgs = append(imgs, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform:    &plat,
			Annotations: map[string]string{annBashbrew: bashbrew[plat.String()]},
		}})

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
				annBashbrew:  bashbrew[plat.String()],
				annRefDigest: dig.String(),
				annRefType:   "attestation-manifest",
			},
		}})
		attSums = append(attSums, manifest{Digest: attDig.String(), Platform: "unknown/unknown", Kind: "attestation-manifest", Subject: dig.String()})
	}
	// Docker Hub's order: every image first, then every attestation.
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx, append(imgs, attestations...)...)
	if err := remote.WriteIndex(ref, idx); err != nil {
		return nil, fmt.Errorf("push %s: %w", ref, err)
	}
	dig, err := idx.Digest()
	if err != nil {
		return nil, err
	}
	s.Digest, s.MediaType = dig.String(), string(types.OCIImageIndex)
	s.Manifests = append(imgSums, attSums...)
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
