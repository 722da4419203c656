package attest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/layers"
	"github.com/gantry-dev/gantry/manifests"
)

// In-toto statement and SLSA provenance types and media types.
const (
	InTotoMediaType     = "application/vnd.in-toto+json"
	statementType       = "https://in-toto.io/Statement/v1"
	slsaPredicateType   = "https://slsa.dev/provenance/v1"
	buildType           = "https://gantry.dev/build/v1"
	hostBuilderID       = "https://github.com/gantry-dev/gantry"
	predicateAnnotation = "in-toto.io/predicate-type"
)

// Inputs are what the build read besides the image's base and layers, for
// provenance.
type Inputs struct {
	Config File   // gantry.yaml (empty for gantry append)
	Locks  []File // lock files: gantry.lock, Python requirement locks
	// SourceURI and Revision are the sources' repository and commit
	// (buildenv.Info), when known.
	SourceURI, Revision string
	// BuilderID and InvocationID come from the CI system (buildenv.Run).
	BuilderID, InvocationID string
	// Timestamps says the build's epoch came from SOURCE_DATE_EPOCH, and
	// may be written as the run's start and end.
	Timestamps bool
}

// File is a host file the build read, by its path (relative to the config
// file's directory where it is inside it) and SHA-256.
type File struct {
	Path   string
	SHA256 string
}

type statement struct {
	Type          string    `json:"_type"`
	Subject       []subject `json:"subject"`
	PredicateType string    `json:"predicateType"`
	Predicate     predicate `json:"predicate"`
}

type subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

type predicate struct {
	BuildDefinition buildDefinition `json:"buildDefinition"`
	RunDetails      runDetails      `json:"runDetails"`
}

type buildDefinition struct {
	BuildType            string               `json:"buildType"`
	ExternalParameters   map[string]any       `json:"externalParameters"`
	ResolvedDependencies []resourceDescriptor `json:"resolvedDependencies"`
}

type resourceDescriptor struct {
	URI         string            `json:"uri,omitempty"`
	Name        string            `json:"name,omitempty"`
	Digest      map[string]string `json:"digest,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type runDetails struct {
	Builder  builder   `json:"builder"`
	Metadata *metadata `json:"metadata,omitempty"`
}

type builder struct {
	ID      string            `json:"id"`
	Version map[string]string `json:"version,omitempty"`
}

type metadata struct {
	InvocationID string `json:"invocationId,omitempty"`
	StartedOn    string `json:"startedOn,omitempty"`
	FinishedOn   string `json:"finishedOn,omitempty"`
}

// Provenance is the in-toto statement, with an SLSA v1 predicate, that
// img was built from its base, its layers' sources and in's files by
// gantry. Without a CI run and SOURCE_DATE_EPOCH, its bytes depend only on
// the build's inputs.
func Provenance(img Image, in Inputs) ([]byte, error) {
	plat := manifests.PlatformString(&img.Platform)
	params := map[string]any{"image": img.Name, "platform": plat, "base": img.Base.Ref}
	if in.Config.Path != "" {
		params["config"] = in.Config.Path
	}
	st := statement{
		Type:          statementType,
		Subject:       []subject{{Name: img.Name, Digest: map[string]string{img.Digest.Algorithm: img.Digest.Hex}}},
		PredicateType: slsaPredicateType,
		Predicate: predicate{
			BuildDefinition: buildDefinition{BuildType: buildType, ExternalParameters: params, ResolvedDependencies: dependencies(img, in)},
			RunDetails:      runDetails{Builder: builder{ID: hostBuilderID, Version: map[string]string{img.Tool.Name: img.Tool.Version}}},
		},
	}
	if in.BuilderID != "" {
		st.Predicate.RunDetails.Builder.ID = in.BuilderID
	}
	if in.InvocationID != "" || in.Timestamps {
		m := &metadata{InvocationID: in.InvocationID}
		if in.Timestamps {
			m.StartedOn = img.Created.UTC().Format(time.RFC3339)
			m.FinishedOn = m.StartedOn
		}
		st.Predicate.RunDetails.Metadata = m
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("writing the provenance of %s %s: %w", img.Name, plat, err)
	}
	return append(b, '\n'), nil
}

func dependencies(img Image, in Inputs) []resourceDescriptor {
	b := img.Base
	deps := []resourceDescriptor{{
		URI: b.Ref, Name: "base", Digest: map[string]string{b.Digest.Algorithm: b.Digest.Hex},
		Annotations: map[string]string{"platformDigest": b.PlatformDigest.String()},
	}}
	if in.SourceURI != "" && in.Revision != "" {
		deps = append(deps, resourceDescriptor{URI: "git+" + in.SourceURI + "@" + in.Revision, Name: "source", Digest: map[string]string{"gitCommit": in.Revision}})
	}
	for _, f := range append([]File{in.Config}, in.Locks...) {
		if f.Path != "" {
			deps = append(deps, resourceDescriptor{Name: f.Path, Digest: map[string]string{"sha256": f.SHA256}})
		}
	}
	for _, l := range img.Layers {
		for i, src := range l.Sources {
			deps = append(deps, resourceDescriptor{
				Name: src, Digest: map[string]string{"sha256": sourceDigest(l, i)},
				Annotations: map[string]string{"layer": l.Name, "layerDigest": l.Digest.String()},
			})
		}
		for _, p := range l.Packages {
			rd := resourceDescriptor{URI: p.PURL, Name: p.Name}
			if p.SHA256 != "" {
				rd.Digest = map[string]string{"sha256": p.SHA256}
			}
			deps = append(deps, rd)
		}
	}
	return deps
}

// sourceDigest is the digest of what layer l's source i put in the image:
// a single file's SHA-256, or the TreeDigest of the files under its target.
func sourceDigest(l Layer, i int) string {
	if i >= len(l.Targets) {
		return TreeDigest(l.Files)
	}
	to := strings.Trim(l.Targets[i], "/")
	var under []layers.FileDigest
	for _, f := range l.Files {
		if f.Name == to && !strings.HasSuffix(l.Targets[i], "/") {
			return f.SHA256
		}
		if strings.HasPrefix(f.Name, to+"/") {
			under = append(under, f)
		}
	}
	return TreeDigest(under)
}

// TreeDigest is the hex SHA-256 of a layer's files as Go's dirhash lists
// them: one "SHA256  PATH\n" line per regular file, sorted by path. A
// layer's list is sorted already, and is then hashed as it is.
func TreeDigest(files []layers.FileDigest) string {
	byName := func(a, b layers.FileDigest) int { return strings.Compare(a.Name, b.Name) }
	if !slices.IsSortedFunc(files, byName) {
		files = slices.SortedFunc(slices.Values(files), byName)
	}
	h := sha256.New()
	for _, f := range files {
		io.WriteString(h, f.SHA256)
		io.WriteString(h, "  /")
		io.WriteString(h, f.Name)
		io.WriteString(h, "\n")
	}
	return hex.EncodeToString(h.Sum(nil))
}
