package assemble

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gantry-dev/gantry/assemble/attest"
	"github.com/gantry-dev/gantry/assemble/spec"
	"github.com/gantry-dev/gantry/layers"
	"github.com/gantry-dev/gantry/layers/python"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// AttestOptions are what the engine's attestations say of the build
// besides the images: who built them and from which sources.
type AttestOptions struct {
	Version string // gantry's
	// BuilderID and InvocationID name the CI run (see attest.Inputs); the
	// sources' repository and commit are the image's source and revision
	// annotations.
	BuilderID, InvocationID string
}

// noteLayer records a new layer of the platform for its SBOM and
// provenance: its name, targets, sources and files, and the packages its
// installer reported in pb.installed. An installer layer (Python wheels,
// Debian packages) sets pb.installed while it makes its entries, with
// purls from attest.PyPI or attest.Deb and each artifact's SHA-256. part
// names the part of a split layer.
func (pb *platformBuild) noteLayer(ls spec.LayerSpec, part string, l *layers.Layer) {
	d, _ := l.Digest()
	diff, _ := l.DiffID()
	al := attest.Layer{Name: ls.Name + part, Digest: d, DiffID: diff, Files: l.Files(), Packages: pb.installed}
	pb.installed = nil
	if ls.Python != nil {
		if ls.Python.Target != "" {
			al.Targets = []string{ls.Python.Target}
		}
	} else if lspec, ok, err := ls.ForPlatform(*pb.p.platform); err == nil && ok {
		for _, src := range lspec.Sources {
			al.Targets = append(al.Targets, src.To)
			al.Sources = append(al.Sources, relativeTo(pb.s.ConfigFile, src.From))
		}
	}
	pb.made = append(pb.made, al)
}

// attach makes the platform image's SBOM and provenance artifacts, as the
// spec asks.
func (e *Engine) attach(ctx context.Context, pb *platformBuild, img v1.Image) ([]*attest.Artifact, error) {
	s := pb.s
	if s.NoSBOM && s.NoProvenance {
		return nil, nil
	}
	raw, err := img.RawManifest()
	if err != nil {
		return nil, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, err
	}
	d, _ := img.Digest()
	ai := attest.Image{
		Name: s.Name, Platform: *pb.p.platform, Digest: d, MediaType: string(mt), Size: int64(len(raw)),
		Base:    attest.Base{Ref: qualified(pb.base.ref), Digest: pb.base.digest, PlatformDigest: pb.p.digest},
		Layers:  pb.made,
		Created: e.epoch, Tool: attest.Tool{Name: "gantry", Version: e.attest.Version},
	}
	var sbom v1.Layer
	if !s.NoSBOM {
		if sbom, err = e.sbom(ctx, pb, ai); err != nil {
			return nil, err
		}
	}
	in, err := e.inputs(s)
	if err != nil {
		return nil, err
	}
	return attest.Attach(ai, in, sbom, !s.NoProvenance)
}

// sbomFormat names what attest.SBOM writes: change it with the document,
// so that no SBOM recorded by an earlier gantry is reused.
const sbomFormat = "spdx-2.3/gantry-1"

// sbom is the SBOM of the platform image ai, from the cache when a build
// of the same image made it: the image digest names the layers (and so
// their files) and the base platform digest the base's packages, so a
// rebuild with nothing changed neither reads the base's package database
// nor encodes the document again.
func (e *Engine) sbom(ctx context.Context, pb *platformBuild, ai attest.Image) (v1.Layer, error) {
	keyed := ai
	keyed.Layers = nil
	for _, l := range ai.Layers {
		l.Files = nil // the diffID names them
		keyed.Layers = append(keyed.Layers, l)
	}
	b, err := json.Marshal(struct {
		Format string
		Image  attest.Image
	}{sbomFormat, keyed})
	if err != nil {
		return nil, err
	}
	key := sha256.Sum256(b)
	doc, err := e.cache.Memo("sbom-"+hex.EncodeToString(key[:]), func(w io.Writer) error {
		if ai.Base.OS, ai.Base.Packages, err = attest.ReadOS(ctx, pb.fs); err != nil {
			return err
		}
		return attest.WriteSBOM(w, ai)
	})
	if err != nil {
		return nil, err
	}
	return docLayer{doc}, nil
}

// docLayer is an SBOM recorded in the cache as an artifact's blob: it is
// read only if a sink writes it (a registry that has it is not sent it).
type docLayer struct{ doc layers.Doc }

func (d docLayer) Digest() (v1.Hash, error)             { return d.doc.Digest, nil }
func (d docLayer) DiffID() (v1.Hash, error)             { return d.doc.Digest, nil }
func (d docLayer) Size() (int64, error)                 { return d.doc.Size, nil }
func (d docLayer) MediaType() (types.MediaType, error)  { return attest.SPDXMediaType, nil }
func (d docLayer) Compressed() (io.ReadCloser, error)   { return os.Open(d.doc.Path) }
func (d docLayer) Uncompressed() (io.ReadCloser, error) { return os.Open(d.doc.Path) }

// inputs are the files and the run the provenance names.
func (e *Engine) inputs(s spec.ImageSpec) (attest.Inputs, error) {
	a := e.attest
	in := attest.Inputs{
		SourceURI: s.Annotations["org.opencontainers.image.source"], Revision: s.Annotations["org.opencontainers.image.revision"],
		BuilderID: a.BuilderID, InvocationID: a.InvocationID,
		Timestamps: e.epochSet,
	}
	var err error
	if s.ConfigFile != "" {
		if in.Config, err = hostFile(s.ConfigFile, s.ConfigFile); err != nil {
			return in, err
		}
		if s.Pin != nil {
			lock, err := hostFile(s.ConfigFile, spec.LockPath(s.ConfigFile))
			if err != nil {
				return in, err
			}
			in.Locks = append(in.Locks, lock)
		}
	}
	for _, ls := range s.Layers {
		if ls.Python != nil && ls.Python.Lock != "" {
			lock, err := hostFile(s.ConfigFile, ls.Python.Lock)
			if err != nil {
				return in, err
			}
			in.Locks = append(in.Locks, lock)
		}
	}
	return in, nil
}

// hostFile hashes a file the build read, naming it relative to the config
// file's directory.
func hostFile(config, name string) (attest.File, error) {
	f, err := os.Open(name)
	if err != nil {
		return attest.File{}, fmt.Errorf("provenance: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return attest.File{}, fmt.Errorf("provenance: reading %s: %w", name, err)
	}
	return attest.File{Path: relativeTo(config, name), SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// relativeTo names a host path relative to the config file's directory
// when it is inside it (so provenance does not depend on the checkout's
// place), else as it is.
func relativeTo(config, name string) string {
	if config == "" {
		return filepath.ToSlash(name)
	}
	dir, err1 := filepath.Abs(filepath.Dir(config))
	abs, err2 := filepath.Abs(name)
	if err1 != nil || err2 != nil {
		return filepath.ToSlash(name)
	}
	rel, err := filepath.Rel(dir, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return filepath.ToSlash(abs)
	}
	return filepath.ToSlash(rel)
}

// wheelPackages are the wheels a Python layer installs, for its SBOM.
func wheelPackages(wheels []python.Wheel) []attest.Package {
	var out []attest.Package
	for _, w := range wheels {
		r := w.Requirement
		out = append(out, attest.Package{Name: r.Name, Version: r.Version, PURL: attest.PyPI(r.Name, r.Version), SHA256: w.SHA256})
	}
	return out
}
