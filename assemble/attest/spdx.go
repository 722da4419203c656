package attest

import (
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/manifests"
	"github.com/google/go-containerregistry/pkg/name"
)

// SPDXMediaType is the SBOM's media type and its artifact type.
const SPDXMediaType = "application/spdx+json"

// The SPDX 2.3 JSON document, as much of it as gantry fills.
type spdxDoc struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreation       `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Files             []spdxFile         `json:"files,omitempty"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreation struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	SPDXID           string         `json:"SPDXID"`
	Name             string         `json:"name"`
	VersionInfo      string         `json:"versionInfo,omitempty"`
	DownloadLocation string         `json:"downloadLocation"`
	FilesAnalyzed    bool           `json:"filesAnalyzed"`
	LicenseConcluded string         `json:"licenseConcluded"`
	LicenseDeclared  string         `json:"licenseDeclared"`
	CopyrightText    string         `json:"copyrightText"`
	Checksums        []spdxChecksum `json:"checksums,omitempty"`
	ExternalRefs     []spdxRef      `json:"externalRefs,omitempty"`
	Purpose          string         `json:"primaryPackagePurpose,omitempty"`
	Comment          string         `json:"comment,omitempty"`
}

type spdxFile struct {
	SPDXID           string         `json:"SPDXID"`
	FileName         string         `json:"fileName"`
	Checksums        []spdxChecksum `json:"checksums"`
	LicenseConcluded string         `json:"licenseConcluded"`
	CopyrightText    string         `json:"copyrightText"`
}

type spdxChecksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type spdxRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

const noAssertion = "NOASSERTION"

// WriteSBOM writes the SPDX 2.3 JSON document of one platform image: the
// image as a package (pkg:oci purl and digest) that descends from its base (another
// pkg:oci package, containing the distribution and its OS packages) and
// contains each new layer, which contains its files (with SHA-256) and the
// packages its installer put there. Its bytes depend only on img.
func WriteSBOM(w io.Writer, img Image) error {
	d := &spdxDoc{
		SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT",
		Name:              img.Name + " " + manifests.PlatformString(&img.Platform),
		DocumentNamespace: "https://gantry.dev/spdx/" + img.Name + "/" + img.Digest.Hex,
		CreationInfo: spdxCreation{
			Created:  img.Created.UTC().Format(time.RFC3339),
			Creators: []string{"Tool: " + img.Tool.Name + "-" + img.Tool.Version},
		},
		Packages: []spdxPackage{}, Relationships: []spdxRelationship{},
	}
	const imageID = "SPDXRef-Image"
	d.Packages = append(d.Packages, pkg(imageID, img.Name, img.Digest.String(), "CONTAINER",
		sha256Sum(img.Digest.Hex), OCI(img.Name, img.Digest, img.Platform, "")))
	d.relate("SPDXRef-DOCUMENT", "DESCRIBES", imageID)
	d.addBase(imageID, img)
	for i, l := range img.Layers {
		d.addLayer(imageID, i, l)
	}
	// compact: indenting a layer of 9k files costs a quarter of a no-change
	// rebuild (gantry sbom indents what it prints). Encode writes what
	// Marshal and a newline would, streaming (37 MB for 220k files).
	if err := json.NewEncoder(w).Encode(d); err != nil {
		return fmt.Errorf("writing the SBOM of %s: %w", d.Name, err)
	}
	return nil
}

func (d *spdxDoc) relate(a, typ, b string) {
	d.Relationships = append(d.Relationships, spdxRelationship{a, typ, b})
}

func pkg(id, name, version, purpose string, sums []spdxChecksum, purl string) spdxPackage {
	p := spdxPackage{
		SPDXID: id, Name: name, VersionInfo: version, DownloadLocation: noAssertion,
		LicenseConcluded: noAssertion, LicenseDeclared: noAssertion, CopyrightText: noAssertion,
		Checksums: sums, Purpose: purpose,
	}
	if purl != "" {
		p.ExternalRefs = []spdxRef{{"PACKAGE-MANAGER", "purl", purl}}
	}
	return p
}

func sha256Sum(hex string) []spdxChecksum {
	if hex == "" {
		return nil
	}
	return []spdxChecksum{{"SHA256", hex}}
}

func (d *spdxDoc) addBase(imageID string, img Image) {
	b := img.Base
	repo, tag := baseRepository(b.Ref)
	const baseID = "SPDXRef-Base"
	p := pkg(baseID, repo, b.PlatformDigest.String(), "CONTAINER", sha256Sum(b.PlatformDigest.Hex), OCI(repo, b.PlatformDigest, img.Platform, tag))
	p.Comment = "base image " + b.Ref + " (" + b.Digest.String() + ")"
	d.Packages = append(d.Packages, p)
	d.relate(imageID, "DESCENDANT_OF", baseID)
	if b.OS.ID == "" && len(b.Packages) == 0 {
		return
	}
	owner := baseID
	if b.OS.ID != "" {
		// scanners (Trivy) take the distribution from this package
		owner = "SPDXRef-OperatingSystem"
		d.Packages = append(d.Packages, pkg(owner, b.OS.ID, b.OS.VersionID, "OPERATING_SYSTEM", nil, ""))
		d.relate(baseID, "CONTAINS", owner)
	}
	for i, bp := range b.Packages {
		id := fmt.Sprintf("SPDXRef-OSPackage-%d", i+1)
		d.Packages = append(d.Packages, packageOf(id, bp))
		d.relate(owner, "CONTAINS", id)
	}
}

func packageOf(id string, p Package) spdxPackage {
	purpose := p.Purpose
	if purpose == "" {
		purpose = "LIBRARY"
	}
	sp := pkg(id, p.Name, p.Version, purpose, sha256Sum(p.SHA256), p.PURL)
	if p.License != "" {
		sp.Comment = "declared license: " + p.License
	}
	return sp
}

func (d *spdxDoc) addLayer(imageID string, i int, l Layer) {
	id := fmt.Sprintf("SPDXRef-Layer-%d", i+1)
	p := pkg(id, l.Name, l.Digest.String(), "ARCHIVE", sha256Sum(l.Digest.Hex), "")
	p.Comment = "layer " + l.Digest.String() + " (diffID " + l.DiffID.String() + ")"
	if len(l.Targets) > 0 {
		p.Comment += " written to " + strings.Join(l.Targets, ", ")
	}
	d.Packages = append(d.Packages, p)
	d.relate(imageID, "CONTAINS", id)
	for j, f := range l.Files {
		fid := fmt.Sprintf("SPDXRef-File-%d-%d", i+1, j+1)
		d.Files = append(d.Files, spdxFile{
			SPDXID: fid, FileName: "/" + f.Name, Checksums: []spdxChecksum{{"SHA256", f.SHA256}},
			LicenseConcluded: noAssertion, CopyrightText: noAssertion,
		})
		d.relate(id, "CONTAINS", fid)
	}
	for j, ip := range l.Packages {
		pid := fmt.Sprintf("SPDXRef-Package-%d-%d", i+1, j+1)
		d.Packages = append(d.Packages, packageOf(pid, ip))
		d.relate(id, "CONTAINS", pid)
	}
}

// baseRepository is the base's repository and tag for its purl: a
// registry reference's, or a layout directory's name.
func baseRepository(ref string) (repo, tag string) {
	if rest, ok := strings.CutPrefix(ref, "oci:"); ok {
		dir, t, _ := strings.Cut(rest, ":")
		if i := strings.Index(dir, "@"); i >= 0 {
			dir = dir[:i]
		}
		return path.Base(strings.TrimSuffix(dir, "/")), t
	}
	r, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		return ref, ""
	}
	repo = r.Context().RegistryStr() + "/" + r.Context().RepositoryStr()
	if repo, ok := strings.CutPrefix(repo, name.DefaultRegistry+"/"); ok {
		return "docker.io/" + repo, tagOf(r)
	}
	return repo, tagOf(r)
}

func tagOf(r name.Reference) string {
	if t, ok := r.(name.Tag); ok {
		return t.TagStr()
	}
	return ""
}
