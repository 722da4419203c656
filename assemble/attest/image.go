package attest

import (
	"time"

	"github.com/gantry-dev/gantry/layers"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Image is what one platform image holds, as the build knows it.
type Image struct {
	Name     string // the image's name in gantry.yaml (its repository's last part)
	Platform v1.Platform
	// Digest is the platform image's manifest digest, the attestations'
	// subject; MediaType and Size describe that manifest.
	Digest    v1.Hash
	MediaType string
	Size      int64
	Base      Base
	Layers    []Layer // the new layers, bottom first
	// Created is the build's epoch (SOURCE_DATE_EPOCH, else 1970).
	Created time.Time
	Tool    Tool
}

// Tool is the program that built the image.
type Tool struct {
	Name    string // "gantry"
	Version string
}

// Base is the image the new layers were appended to.
type Base struct {
	Ref    string  // as resolved: docker.io/library/nginx:alpine, or oci:DIR[:tag]
	Digest v1.Hash // of what Ref names (an index or a manifest)
	// PlatformDigest is this platform's manifest in the base.
	PlatformDigest v1.Hash
	OS             OSRelease
	Packages       []Package // the base's own OS packages
}

// Layer is one new layer.
type Layer struct {
	Name    string   // as gantry.yaml names it
	Targets []string // absolute paths in the image it writes
	Digest  v1.Hash  // of the compressed blob
	DiffID  v1.Hash
	Files   []layers.FileDigest
	// Packages are what an installer layer installed (Python wheels,
	// Debian packages): an installer fills them from what it picked.
	Packages []Package
	// Sources are the host paths the layer was made from, relative to the
	// config file's directory where they are inside it, for provenance;
	// Targets[i] is where Sources[i] went.
	Sources []string
}

// Package is a software package in the image.
type Package struct {
	Name    string
	Version string
	PURL    string
	// SHA256 is the hex digest of the artifact installed (a wheel, a
	// .deb), when known.
	SHA256 string
	// Arch is the package's architecture where it has one (dpkg, apk).
	Arch string
	// License is the license the package declares, as its metadata gives
	// it (apk's L:), or "".
	License string
	// Purpose is SPDX's primaryPackagePurpose (default LIBRARY).
	Purpose string
}
