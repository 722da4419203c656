package assemble_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/assemble"
	"github.com/gantry-dev/gantry/assemble/attest"
	"github.com/gantry-dev/gantry/assemble/attest/spdxtest"
	"github.com/gantry-dev/gantry/assemble/registrytest"
	"github.com/gantry-dev/gantry/assemble/sink"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// artifactBlob reads the one blob of the artifact manifest d in repo.
func artifactBlob(t *testing.T, repo name.Repository, d v1.Descriptor) []byte {
	t.Helper()
	img, err := remote.Image(repo.Digest(d.Digest.String()))
	if err != nil {
		t.Fatalf("artifact %s: %v", d.Digest, err)
	}
	ls, err := img.Layers()
	if err != nil || len(ls) != 1 {
		t.Fatalf("artifact %s: %d blobs, %v", d.Digest, len(ls), err)
	}
	rc, err := ls[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// artifactType is the artifactType of the manifest d, from the manifest:
// go-containerregistry's pkg/registry lists the config's media type
// instead, which the spec gives only when the manifest has none.
func artifactType(t *testing.T, repo name.Repository, d v1.Descriptor) string {
	t.Helper()
	img, err := remote.Image(repo.Digest(d.Digest.String()))
	if err != nil {
		t.Fatalf("artifact %s: %v", d.Digest, err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if d.ArtifactType != m.ArtifactType && d.ArtifactType != string(m.Config.MediaType) {
		t.Errorf("referrer %s listed with artifactType %s, its manifest says %s", d.Digest, d.ArtifactType, m.ArtifactType)
	}
	return m.ArtifactType
}

// checkReferrers lists each platform image's referrers with
// go-containerregistry (referrers API, else the tag schema) and checks
// that they are the SBOM and provenance the build reported, the SBOM valid
// SPDX 2.3 naming want.
func checkReferrers(t *testing.T, host string, results []assemble.Result, want map[string][]string) {
	t.Helper()
	schema := spdxtest.Schema(t)
	for _, r := range results {
		repo, err := name.NewRepository(host + "/taskflow/" + r.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range r.Platforms {
			idx, err := remote.Referrers(repo.Digest(p.Digest))
			if err != nil {
				t.Fatalf("%s %s: listing referrers: %v", r.Name, p.Platform, err)
			}
			im, _ := idx.IndexManifest()
			types := map[string]v1.Descriptor{}
			for _, d := range im.Manifests {
				types[artifactType(t, repo, d)] = d
			}
			sbom, okS := types[attest.SPDXMediaType]
			prov, okP := types[attest.InTotoMediaType]
			if len(im.Manifests) != 2 || !okS || !okP {
				t.Fatalf("%s %s: referrers %+v, want an SBOM and a provenance", r.Name, p.Platform, im.Manifests)
			}
			if strings.Join(p.Referrers, " ") != sbom.Digest.String()+" "+prov.Digest.String() {
				t.Errorf("%s %s: reported referrers %v, registry lists %s %s", r.Name, p.Platform, p.Referrers, sbom.Digest, prov.Digest)
			}
			doc := artifactBlob(t, repo, sbom)
			if err := spdxtest.Validate(schema, doc); err != nil {
				t.Errorf("%s %s: SBOM is not valid SPDX 2.3: %v", r.Name, p.Platform, err)
			}
			for _, w := range append(want[r.Name], `"pkg:oci/`+r.Name+`@sha256%3A`+strings.TrimPrefix(p.Digest, "sha256:")) {
				if !bytes.Contains(doc, []byte(w)) {
					t.Errorf("%s %s: SBOM lacks %s", r.Name, p.Platform, w)
				}
			}
			var st struct {
				Subject []struct{ Digest map[string]string }
			}
			if err := json.Unmarshal(artifactBlob(t, repo, prov), &st); err != nil || len(st.Subject) != 1 || "sha256:"+st.Subject[0].Digest["sha256"] != p.Digest {
				t.Errorf("%s %s: provenance subject %+v (%v), want %s", r.Name, p.Platform, st.Subject, err, p.Digest)
			}
		}
	}
}

var taskflowWants = map[string][]string{
	"taskflow-frontend": {`"name":"site"`, `"fileName":"/usr/share/nginx/html/index.html"`, `"OPERATING_SYSTEM"`,
		`"pkg:apk/alpine/musl@1.2.5-r0?arch=`, `"pkg:apk/alpine/nginx@1.27.3-r1?arch=`},
	"taskflow-backend": {`"pkg:deb/debian/libc6@2.36-9%2Bdeb12u9?arch=`, `"pkg:pypi/tfnative@1.0.0"`, `"name":"python-packages"`,
		`"fileName":"/app/server.py"`},
}

// TestReferrersPushed: the TaskFlow images pushed to a registry with the
// referrers API and to one without (CNCF distribution: the sha256-<hex>
// tag schema) both carry an SBOM and a provenance per platform image, which
// go-containerregistry's client lists.
func TestReferrersPushed(t *testing.T) {
	for _, tc := range []struct {
		name string
		host func(t *testing.T) string
		api  bool
	}{
		{"tag schema", func(t *testing.T) string { return registrytest.New(t).Host }, false},
		{"referrers API", func(t *testing.T) string {
			return registrytest.Serve(t, ggcrregistry.New(ggcrregistry.WithReferrersSupport(true), ggcrregistry.Logger(log.New(io.Discard, "", 0))), nil)
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := tc.host(t)
			e := newTestEngine(t, "")
			specs := loadExample(t, map[string]string{"taskflow-frontend": "oci:" + nginxBase + ":alpine", "taskflow-backend": "oci:" + pythonBase + ":3.13-slim"})
			res, err := e.Run(context.Background(), specs, e.RegistrySink(sink.Destinations{Prefix: host + "/taskflow", Tags: []string{"v1"}}))
			if err != nil {
				t.Fatal(err)
			}
			checkReferrers(t, host, res, taskflowWants)
			tags := registrytest.Tags(t, host+"/taskflow/taskflow-backend")
			schemaTags := 0
			for _, tag := range tags {
				if strings.HasPrefix(tag, "sha256-") {
					schemaTags++
				}
			}
			if tc.api && schemaTags != 0 || !tc.api && schemaTags != len(res[1].Platforms) {
				t.Errorf("tags %v: %d of the referrers tag schema (referrers API: %v)", tags, schemaTags, tc.api)
			}
			// a rebuild pushes the same artifacts: still two per image
			reg := e.RegistrySink(sink.Destinations{Prefix: host + "/taskflow", Tags: []string{"v1"}})
			if res, err = e.Run(context.Background(), specs, reg); err != nil {
				t.Fatal(err)
			}
			checkReferrers(t, host, res, taskflowWants)
		})
	}
}

// TestReferrersRealRegistry: Debian's docker-registry (distribution 2.8,
// no referrers API) takes the artifacts and the tag schema's index, which
// crane reads back.
func TestReferrersRealRegistry(t *testing.T) {
	host := registrytest.RealRegistry(t)
	crane := registrytest.LookPath(t, "crane")
	e := newTestEngine(t, "")
	specs := loadExample(t, map[string]string{"taskflow-frontend": "oci:" + nginxBase + ":alpine", "taskflow-backend": "oci:" + pythonBase + ":3.13-slim"})
	res, err := e.Run(context.Background(), specs, e.RegistrySink(sink.Destinations{Prefix: host + "/taskflow"}))
	if err != nil {
		t.Fatal(err)
	}
	checkReferrers(t, host, res, taskflowWants)
	p := res[0].Platforms[0]
	out, err := exec.Command(crane, "manifest", "--insecure", host+"/taskflow/"+res[0].Name+":"+strings.Replace(p.Digest, ":", "-", 1)).Output()
	if err != nil {
		t.Fatalf("crane manifest: %v", err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(out, &idx); err != nil || len(idx.Manifests) != 2 {
		t.Fatalf("crane read the referrers index %s (%v)", out, err)
	}
	for _, d := range idx.Manifests {
		if d.ArtifactType != attest.SPDXMediaType && d.ArtifactType != attest.InTotoMediaType {
			t.Errorf("referrer %s has artifactType %q", d.Digest, d.ArtifactType)
		}
	}
	// and oras, which people use to find them
	oras := registrytest.LookPath(t, "oras")
	out, err = exec.Command(oras, "discover", "--plain-http", "--format", "json", host+"/taskflow/"+res[0].Name+"@"+p.Digest).Output()
	if err != nil {
		t.Fatalf("oras discover: %v", err)
	}
	var found struct {
		Referrers []struct {
			ArtifactType string `json:"artifactType"`
		} `json:"referrers"`
	}
	if err := json.Unmarshal(out, &found); err != nil {
		t.Fatalf("oras discover printed %s: %v", out, err)
	}
	var types []string
	for _, r := range found.Referrers {
		types = append(types, r.ArtifactType)
	}
	slices.Sort(types)
	if want := []string{attest.SPDXMediaType, attest.InTotoMediaType}; !slices.Equal(types, []string{min(want[0], want[1]), max(want[0], want[1])}) {
		t.Errorf("oras discover found %q, want the SBOM and the provenance; it printed %s", types, out)
	}
}

// TestReferrersInLayout: an OCI layout lists each platform image's SBOM and
// provenance once, unnamed, however often it is written; sbom: false
// leaves the SBOM out; and the SBOM reads the base once per cache.
func TestReferrersInLayout(t *testing.T) {
	cache := t.TempDir()
	out := t.TempDir() + "/out"
	bases := map[string]string{"taskflow-frontend": "oci:" + nginxBase + ":alpine", "taskflow-backend": "oci:" + pythonBase + ":3.13-slim"}
	count := func() map[string]int {
		idx, err := layout.ImageIndexFromPath(out)
		if err != nil {
			t.Fatal(err)
		}
		im, _ := idx.IndexManifest()
		n := map[string]int{}
		subjects := map[v1.Hash]bool{}
		images := map[v1.Hash]bool{}
		for _, d := range im.Manifests {
			if child, err := idx.ImageIndex(d.Digest); err == nil && d.ArtifactType == "" {
				cm, _ := child.IndexManifest()
				for _, c := range cm.Manifests {
					images[c.Digest] = true
				}
			}
		}
		for _, d := range im.Manifests {
			n[d.ArtifactType]++
			if d.ArtifactType != "" {
				img, err := idx.Image(d.Digest)
				if err != nil {
					t.Fatalf("referrer %s: %v", d.Digest, err)
				}
				m, _ := img.Manifest()
				subjects[m.Subject.Digest] = true
				if !images[m.Subject.Digest] {
					t.Errorf("referrer %s: subject %s is no image of the layout", d.Digest, m.Subject.Digest)
				}
			}
		}
		n["subjects"] = len(subjects)
		return n
	}
	for range 2 {
		e := newTestEngine(t, cache)
		if _, err := e.Run(context.Background(), loadExample(t, bases), sink.Layout(out, sink.Destinations{})); err != nil {
			t.Fatal(err)
		}
		if n := count(); n[attest.SPDXMediaType] != 4 || n[attest.InTotoMediaType] != 4 || n[""] != 2 || n["subjects"] != 4 {
			t.Errorf("index.json: %v, want 4 SBOMs and 4 provenances of 4 images, and the 2 named indexes", n)
		}
	}
	specs := loadExample(t, bases)
	for i := range specs {
		specs[i].NoSBOM = true
	}
	e := newTestEngine(t, cache)
	if _, err := e.Run(context.Background(), specs, sink.Layout(t.TempDir()+"/nosbom", sink.Destinations{})); err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(context.Background(), specs[:1], sink.Layout(t.TempDir()+"/nosbom", sink.Destinations{}))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res[0].Platforms[0].Referrers); n != 1 {
		t.Errorf("sbom: false: %d referrers, want the provenance alone", n)
	}
}

// TestSBOMReadsBaseOnce: the SBOM reads the base's package database from
// its layers once per cache; a rebuild downloads no base blob.
func TestSBOMReadsBaseOnce(t *testing.T) {
	reg := registrytest.New(t)
	registrytest.PushLayout(t, pythonBase, reg.Host+"/library/python:3.13-slim")
	cache, out := t.TempDir(), t.TempDir()+"/out"
	specs := loadExample(t, map[string]string{"taskflow-frontend": "oci:" + nginxBase + ":alpine", "taskflow-backend": reg.Host + "/library/python:3.13-slim"})
	for i := range 2 {
		reg.Reset()
		e := newTestEngine(t, cache)
		if _, err := e.Run(context.Background(), specs[1:], sink.Layout(out, sink.Destinations{})); err != nil {
			t.Fatal(err)
		}
		whole := reg.Count("GET", "/v2/library/python/blobs/") - reg.Count("GET", "/v2/library/python/blobs/", "range=")
		if i == 1 && whole != 0 {
			t.Errorf("rebuild downloaded %d base blobs: %q", whole, reg.Requests())
		}
	}
}

// TestSBOMRecordedForRebuilds: a rebuild with nothing changed takes each
// platform's SBOM from the cache, byte for byte; a damaged recorded
// document is made anew (TestMemo has the rest).
func TestSBOMRecordedForRebuilds(t *testing.T) {
	cache := t.TempDir()
	specs := loadExample(t, map[string]string{"taskflow-frontend": "oci:" + nginxBase + ":alpine", "taskflow-backend": "oci:" + pythonBase + ":3.13-slim"})[:1]
	sboms := func() []string {
		t.Helper()
		out := t.TempDir() + "/out"
		e := newTestEngine(t, cache)
		if _, err := e.Run(context.Background(), specs, sink.Layout(out, sink.Destinations{})); err != nil {
			t.Fatal(err)
		}
		idx, err := layout.ImageIndexFromPath(out)
		if err != nil {
			t.Fatal(err)
		}
		im, _ := idx.IndexManifest()
		var docs []string
		for _, d := range im.Manifests {
			if d.ArtifactType != attest.SPDXMediaType {
				continue
			}
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			m, _ := img.Manifest()
			docs = append(docs, m.Layers[0].Digest.String())
		}
		slices.Sort(docs)
		if len(docs) != 2 {
			t.Fatalf("%d SBOMs, want one per platform", len(docs))
		}
		return docs
	}
	first := sboms()
	memo, _ := filepath.Glob(filepath.Join(cache, "memo", "sbom-*"))
	if len(memo) != 2 {
		t.Fatalf("%d SBOMs recorded, want 2", len(memo))
	}
	if again := sboms(); !slices.Equal(again, first) {
		t.Errorf("the rebuild's SBOMs %v, the build's %v", again, first)
	}
	// a damaged recorded document is made again, the same
	h, _ := v1.NewHash(first[0])
	os.WriteFile(filepath.Join(cache, "blobs", h.Algorithm, h.Hex), []byte("{}"), 0o644)
	if again := sboms(); !slices.Equal(again, first) {
		t.Errorf("after damage, SBOMs %v, want %v", again, first)
	}
}
