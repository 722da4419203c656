package attest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/assemble/attest/spdxtest"
	"github.com/gantry-dev/gantry/layers"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
)

// mapFS is a base filesystem in memory.
type mapFS map[string]string

func (m mapFS) ReadFile(_ context.Context, name string) ([]byte, error) {
	if s, ok := m[name]; ok {
		return []byte(s), nil
	}
	return nil, fmt.Errorf("no /%s: %w", name, fs.ErrNotExist)
}

func (m mapFS) ReadDir(_ context.Context, dir string) ([]string, error) {
	var out []string
	for k := range m {
		if rest, ok := strings.CutPrefix(k, dir+"/"); ok && !strings.Contains(rest, "/") {
			out = append(out, rest)
		}
	}
	if out == nil {
		return nil, fmt.Errorf("no /%s: %w", dir, fs.ErrNotExist)
	}
	sort.Strings(out)
	return out, nil
}

const debianOS = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n"

const dpkgStatus = `Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Version: 2.36-9+deb12u9
Description: GNU C Library
 continued description: Version: 9.9

Package: removed
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: perl-base
Status: install ok installed
Architecture: amd64
Version: 1:5.36.0-7+deb12u1
`

func TestReadOSDebian(t *testing.T) {
	fsys := mapFS{
		"etc/os-release":                       debianOS,
		"var/lib/dpkg/status":                  dpkgStatus,
		"var/lib/dpkg/status.d/tzdata":         "Package: tzdata\nArchitecture: all\nVersion: 2024a-0+deb12u1\n",
		"var/lib/dpkg/status.d/tzdata.md5sums": "d41d8cd98f00b204e9800998ecf8427e  usr/share/zoneinfo/UTC\n",
	}
	osr, pkgs, err := ReadOS(context.Background(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	if osr != (OSRelease{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)"}) {
		t.Errorf("os-release: %+v", osr)
	}
	var got []string
	for _, p := range pkgs {
		got = append(got, p.PURL)
	}
	want := []string{
		"pkg:deb/debian/libc6@2.36-9%2Bdeb12u9?arch=amd64&distro=debian-12",
		"pkg:deb/debian/perl-base@1%3A5.36.0-7%2Bdeb12u1?arch=amd64&distro=debian-12",
		"pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("purls:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestReadOSAlpine(t *testing.T) {
	fsys := mapFS{
		"etc/os-release": "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\n",
		"lib/apk/db/installed": "C:Q1abc=\nP:musl\nV:1.2.5-r0\nA:aarch64\nL:MIT\no:musl\n\n" +
			"C:Q1def=\nP:busybox\nV:1.36.1-r29\nA:aarch64\nL:GPL-2.0-only\n",
	}
	_, pkgs, err := ReadOS(context.Background(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 2 || pkgs[0].PURL != "pkg:apk/alpine/busybox@1.36.1-r29?arch=aarch64&distro=alpine-3.20.3" || pkgs[1].License != "MIT" {
		t.Fatalf("packages: %+v", pkgs)
	}
	// no database at all: no packages, no error
	if _, pkgs, err := ReadOS(context.Background(), mapFS{}); err != nil || len(pkgs) != 0 {
		t.Fatalf("empty base: %v %v", pkgs, err)
	}
}

func hash(s string) v1.Hash {
	h, _, _ := v1.SHA256(strings.NewReader(s))
	return h
}

func testImage() Image {
	return Image{
		Name: "taskflow-backend", Platform: v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"},
		Digest: hash("manifest"), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 1234,
		Base: Base{
			Ref: "docker.io/library/python:3.13-slim", Digest: hash("index"), PlatformDigest: hash("base"),
			OS:       OSRelease{ID: "debian", VersionID: "12"},
			Packages: []Package{{Name: "libc6", Version: "2.36-9+deb12u9", Arch: "arm64", PURL: "pkg:deb/debian/libc6@2.36-9%2Bdeb12u9?arch=arm64&distro=debian-12"}},
		},
		Layers: []Layer{
			{
				Name: "python-packages", Targets: []string{"/usr/local/lib/python3.13/site-packages"},
				Digest: hash("l1"), DiffID: hash("d1"),
				Files:    []layers.FileDigest{{Name: "usr/local/lib/python3.13/site-packages/six.py", SHA256: hash("six").Hex}},
				Packages: []Package{{Name: "six", Version: "1.16.0", PURL: PyPI("six", "1.16.0"), SHA256: hash("wheel").Hex}},
			},
			{
				Name: "app", Targets: []string{"/app"}, Digest: hash("l2"), DiffID: hash("d2"),
				Files: []layers.FileDigest{
					{Name: "app/main.py", SHA256: hash("main").Hex},
					{Name: "app/lib/util.py", SHA256: hash("util").Hex},
				},
				Sources: []string{"backend/src"},
			},
		},
		Created: time.Unix(1700000000, 0),
		Tool:    Tool{Name: "gantry", Version: "v0.9.0"},
	}
}

// sbom is WriteSBOM's document of img.
func sbom(img Image) ([]byte, error) {
	var b bytes.Buffer
	err := WriteSBOM(&b, img)
	return b.Bytes(), err
}

func TestSBOM(t *testing.T) {
	img := testImage()
	doc, err := sbom(img)
	if err != nil {
		t.Fatal(err)
	}
	schema := spdxtest.Schema(t)
	if err := spdxtest.Validate(schema, doc); err != nil {
		t.Fatalf("SBOM is not valid SPDX 2.3: %v\n%s", err, doc)
	}
	again, _ := sbom(img)
	if !bytes.Equal(doc, again) {
		t.Error("two SBOMs of the same image differ")
	}
	for _, want := range []string{
		`"created":"2023-11-14T22:13:20Z"`,
		`"Tool: gantry-v0.9.0"`,
		`"referenceLocator":"pkg:oci/taskflow-backend@sha256%3A` + img.Digest.Hex + `?arch=arm64"`,
		`"referenceLocator":"pkg:oci/python@sha256%3A` + img.Base.PlatformDigest.Hex + `?arch=arm64\u0026repository_url=docker.io/library/python\u0026tag=3.13-slim"`,
		`"referenceLocator":"pkg:deb/debian/libc6@2.36-9%2Bdeb12u9?arch=arm64\u0026distro=debian-12"`,
		`"referenceLocator":"pkg:pypi/six@1.16.0"`,
		`"primaryPackagePurpose":"OPERATING_SYSTEM"`,
		`"fileName":"/app/lib/util.py"`,
		`"checksumValue":"` + hash("util").Hex + `"`,
	} {
		if !bytes.Contains(doc, []byte(want)) {
			t.Errorf("SBOM lacks %s", want)
		}
	}
	var d spdxDoc
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	rels := map[string]bool{}
	for _, r := range d.Relationships {
		rels[r.Element+" "+r.Type+" "+r.Related] = true
	}
	for _, want := range []string{
		"SPDXRef-DOCUMENT DESCRIBES SPDXRef-Image",
		"SPDXRef-Image DESCENDANT_OF SPDXRef-Base",
		"SPDXRef-Base CONTAINS SPDXRef-OperatingSystem",
		"SPDXRef-OperatingSystem CONTAINS SPDXRef-OSPackage-1",
		"SPDXRef-Image CONTAINS SPDXRef-Layer-2",
		"SPDXRef-Layer-1 CONTAINS SPDXRef-Package-1-1",
		"SPDXRef-Layer-2 CONTAINS SPDXRef-File-2-2",
	} {
		if !rels[want] {
			t.Errorf("no relationship %s", want)
		}
	}
	// the schema check can fail
	broken := bytes.Replace(doc, []byte(`"spdxVersion"`), []byte(`"spdxversion"`), 1)
	if err := spdxtest.Validate(schema, broken); err == nil {
		t.Error("a document without spdxVersion passed the schema")
	}
}

func TestProvenance(t *testing.T) {
	img := testImage()
	img.Layers = append(img.Layers, Layer{
		Name: "config", Targets: []string{"/etc/app.conf", "/etc/extra/"}, Sources: []string{"app.conf", "extra.conf"},
		Files: []layers.FileDigest{{Name: "etc/app.conf", SHA256: hash("conf").Hex}, {Name: "etc/extra/extra.conf", SHA256: hash("extra").Hex}},
	})
	in := Inputs{
		Config: File{Path: "gantry.yaml", SHA256: hash("yaml").Hex},
		Locks:  []File{{Path: "backend/requirements.lock", SHA256: hash("lock").Hex}},
	}
	doc, err := Provenance(img, in)
	if err != nil {
		t.Fatal(err)
	}
	var st statement
	if err := json.Unmarshal(doc, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != statementType || st.PredicateType != slsaPredicateType || st.Subject[0].Digest["sha256"] != img.Digest.Hex {
		t.Fatalf("statement header: %+v", st)
	}
	rd := st.Predicate.RunDetails
	if rd.Builder.ID != hostBuilderID || rd.Builder.Version["gantry"] != "v0.9.0" || rd.Metadata != nil {
		t.Errorf("host run details: %+v", rd)
	}
	names := map[string]string{}
	for _, d := range st.Predicate.BuildDefinition.ResolvedDependencies {
		names[d.Name] = d.Digest["sha256"]
	}
	tree := TreeDigest(img.Layers[1].Files)
	for n, want := range map[string]string{
		"base": img.Base.Digest.Hex, "gantry.yaml": hash("yaml").Hex, "backend/requirements.lock": hash("lock").Hex,
		"backend/src": tree, "six": hash("wheel").Hex,
		"app.conf": hash("conf").Hex, "extra.conf": TreeDigest([]layers.FileDigest{{Name: "etc/extra/extra.conf", SHA256: hash("extra").Hex}}),
	} {
		if names[n] != want {
			t.Errorf("dependency %s: digest %q, want %q", n, names[n], want)
		}
	}
	// the tree digest is the files' list, whatever their order
	swapped := []layers.FileDigest{img.Layers[1].Files[1], img.Layers[1].Files[0]}
	if TreeDigest(swapped) != tree || TreeDigest(img.Layers[0].Files) == tree {
		t.Error("TreeDigest depends on order, or not on content")
	}
	listed := sha256.Sum256([]byte(hash("2").Hex + "  /a\n" + hash("1").Hex + "  /a b\n" + hash("3").Hex + "  /b\n"))
	if got := TreeDigest([]layers.FileDigest{{Name: "b", SHA256: hash("3").Hex}, {Name: "a b", SHA256: hash("1").Hex}, {Name: "a", SHA256: hash("2").Hex}}); got != hex.EncodeToString(listed[:]) {
		t.Errorf("TreeDigest %s, want the SHA-256 of the sorted list, %x", got, listed)
	}
	in.BuilderID, in.InvocationID, in.Timestamps = "https://github.com/actions/runner/github-hosted", "https://github.com/acme/app/actions/runs/1/attempts/1", true
	doc, _ = Provenance(img, in)
	for _, want := range []string{`"id": "https://github.com/actions/runner/github-hosted"`, `"invocationId": "https://github.com/acme/app/actions/runs/1/attempts/1"`, `"startedOn": "2023-11-14T22:13:20Z"`} {
		if !bytes.Contains(doc, []byte(want)) {
			t.Errorf("CI provenance lacks %s", want)
		}
	}
}

func TestAttach(t *testing.T) {
	img := testImage()
	doc, err := sbom(img)
	if err != nil {
		t.Fatal(err)
	}
	arts, err := Attach(img, Inputs{}, static.NewLayer(doc, SPDXMediaType), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(arts) != 2 || arts[0].ArtifactType != SPDXMediaType || arts[1].ArtifactType != InTotoMediaType {
		t.Fatalf("artifacts: %+v", arts)
	}
	for _, a := range arts {
		m, err := a.Image.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject == nil || m.Subject.Digest != img.Digest || m.Subject.Size != img.Size || m.ArtifactType != a.ArtifactType {
			t.Errorf("%s: subject %+v artifactType %s", a.ArtifactType, m.Subject, m.ArtifactType)
		}
		if d, _ := a.Image.Digest(); d != a.Digest || a.Descriptor.Digest != d {
			t.Errorf("%s: digest %s, Artifact says %s", a.ArtifactType, d, a.Digest)
		}
		if m.Config.MediaType != emptyMediaType || m.Config.Digest.Hex != "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" {
			t.Errorf("%s: config %+v", a.ArtifactType, m.Config)
		}
		ls, err := a.Image.Layers()
		if err != nil || len(ls) != 1 {
			t.Fatalf("%s: layers %v %v", a.ArtifactType, ls, err)
		}
	}
	only, _ := Attach(img, Inputs{}, nil, true)
	if len(only) != 1 || only[0].ArtifactType != InTotoMediaType || only[0].Digest != arts[1].Digest {
		t.Errorf("provenance alone: %+v", only)
	}
}
