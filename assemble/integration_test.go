package assemble_test

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/assemble/registrytest"
	"github.com/gantry-dev/gantry/assemble/sink"
	"github.com/gantry-dev/gantry/assemble/spec"
	"github.com/gantry-dev/gantry/layers"
	"github.com/gantry-dev/gantry/manifests"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	exampleFile = "../testdata/taskflow/gantry.yaml"
	nginxBase   = "../testdata/bases/nginx-alpine"
	pythonBase  = "../testdata/bases/python-slim"
	dockerBase  = "../testdata/bases/docker-v2"
)

func noEnv(string) (string, bool) { return "", false }

func newTestEngine(t *testing.T, cacheDir string) testEngine {
	t.Helper()
	if cacheDir == "" {
		cacheDir = t.TempDir()
	}
	e, err := NewEngine(testOptions{CacheDir: cacheDir})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func loadExample(t *testing.T, bases map[string]string) []spec.ImageSpec {
	t.Helper()
	specs, err := spec.Load(exampleFile, noEnv, spec.Options{Bases: bases})
	if err != nil {
		t.Fatal(err)
	}
	return specs
}

// layerFiles reads every entry of a layer.
func layerFiles(t *testing.T, l v1.Layer) map[string]*tar.Header {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(h.Name, "/")] = h
	}
}

func fileContent(t *testing.T, l v1.Layer, want string) string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in layer: %v", want, err)
		}
		if h.Name == want {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
}

// TestTaskFlowToRegistry builds the example against bases in a real
// registry and checks what a client pulling it sees.
func TestTaskFlowToRegistry(t *testing.T) {
	reg := registrytest.New(t)
	ctx := context.Background()
	registrytest.PushLayout(t, nginxBase, reg.Host+"/library/nginx:alpine")
	registrytest.PushLayout(t, pythonBase, reg.Host+"/library/python:3.13-slim")
	bases := map[string]string{
		"taskflow-frontend": reg.Host + "/library/nginx:alpine",
		"taskflow-backend":  reg.Host + "/library/python:3.13-slim",
	}
	cache := t.TempDir()
	reg.Reset()
	var ev events
	e, err := NewEngine(testOptions{CacheDir: cache, Progress: &ev})
	if err != nil {
		t.Fatal(err)
	}
	results, err := e.Run(ctx, loadExample(t, bases), e.RegistrySink(sink.Destinations{Prefix: reg.Host + "/taskflow"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("got %d results", len(results))
	}
	// the content layers were uploaded while they were built, then found
	// by the pusher (7: the frontend's two, the backend's code, and its
	// system and Python packages, built once per platform)
	if n := ev.count("uploaded while it was built"); n != 7 {
		t.Errorf("%d streamed layers, want 7; events: %q", n, ev.all)
	}
	// base layers live on the same registry: mounted, never uploaded
	if n := reg.Count("POST", "/blobs/uploads/", "mount="); n == 0 {
		t.Errorf("no cross-repo mounts; requests: %q", reg.Requests())
	}

	for _, r := range results {
		ref := reg.Host + "/taskflow/" + r.Name + ":latest"
		if !slices.Contains(r.References, ref) {
			t.Errorf("%s: references %q lack %s", r.Name, r.References, ref)
		}
		pr, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := remote.Index(pr)
		if err != nil {
			t.Fatal(err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		if im.MediaType != types.OCIImageIndex || len(im.Manifests) != 2 {
			t.Fatalf("%s: index %s with %d manifests, want OCI index of 2", r.Name, im.MediaType, len(im.Manifests))
		}
		d, _ := idx.Digest()
		if d.String() != r.Digest {
			t.Errorf("%s: pushed %s, result says %s", r.Name, d, r.Digest)
		}
		var plats []string
		for _, m := range im.Manifests {
			if manifests.IsAttestation(m) {
				t.Errorf("%s: attestation %s left in the index", r.Name, m.Digest)
			}
			plats = append(plats, manifests.PlatformString(m.Platform))
			img, err := idx.Image(m.Digest)
			if err != nil {
				t.Fatal(err)
			}
			checkTaskFlowImage(t, r.Name, img)
		}
		if !slices.Equal(plats, []string{"linux/amd64", "linux/arm64/v8"}) {
			t.Errorf("%s: platforms %q", r.Name, plats)
		}
		if im.Annotations["org.opencontainers.image.base.name"] != bases[r.Name] {
			t.Errorf("%s: base.name annotation %q", r.Name, im.Annotations["org.opencontainers.image.base.name"])
		}
	}

	// A rebuild with nothing changed uploads nothing and downloads no base
	// layer, and gives the same digests.
	reg.Reset()
	e2 := newTestEngine(t, cache)
	again, err := e2.Run(ctx, loadExample(t, bases), e2.RegistrySink(sink.Destinations{Prefix: reg.Host + "/taskflow"}))
	if err != nil {
		t.Fatal(err)
	}
	for i := range results {
		if again[i].Digest != results[i].Digest {
			t.Errorf("%s: rebuild gave %s, first build %s", results[i].Name, again[i].Digest, results[i].Digest)
		}
	}
	if n := reg.Count("PATCH", "/blobs/uploads/") + reg.Count("PUT", "/blobs/uploads/"); n != 0 {
		t.Errorf("rebuild uploaded %d blobs", n)
	}
	if n := reg.Count("PUT", "/manifests/"); n != 0 {
		t.Errorf("rebuild pushed %d manifests", n)
	}
	if n := reg.Count("GET", "/library/", "/blobs/"); n != 0 {
		t.Errorf("rebuild downloaded %d base blobs: %q", n, reg.Requests())
	}
	if s := e2.LayerStats(); s.FilesRead != 0 || s.Misses != 0 {
		t.Errorf("rebuild read %d files, %d cache misses", s.FilesRead, s.Misses)
	}

	// A cold build on another cache gives the same digests too.
	e3 := newTestEngine(t, "")
	cold, err := e3.Build(ctx, loadExample(t, bases))
	if err != nil {
		t.Fatal(err)
	}
	for i := range results {
		if cold[i].Digest.String() != results[i].Digest {
			t.Errorf("%s: cold cache gave %s, first build %s", results[i].Name, cold[i].Digest, results[i].Digest)
		}
	}
}

func checkTaskFlowImage(t *testing.T, imageName string, img v1.Image) {
	t.Helper()
	raw, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Config struct {
			User         string
			Env          []string
			ExposedPorts map[string]struct{}
			Volumes      map[string]struct{}
			Healthcheck  struct {
				Test              []string
				Interval, Timeout int64
			}
		} `json:"config"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	c := cfg.Config
	if c.User != "1001:1001" {
		t.Errorf("%s: User %q", imageName, c.User)
	}
	if c.Healthcheck.Interval != 10e9 || c.Healthcheck.Timeout != 5e9 || c.Healthcheck.Test[0] != "CMD" {
		t.Errorf("%s: Healthcheck %+v", imageName, c.Healthcheck)
	}
	for _, kv := range c.Env {
		if strings.HasPrefix(kv, "DATABASE_URL=") || strings.HasPrefix(kv, "OPENROUTER_API_KEY=") {
			t.Errorf("%s: secret baked into env: %s", imageName, kv)
		}
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	userLayer := ls[len(ls)-1]
	passwd := fileContent(t, userLayer, "etc/passwd")
	group := fileContent(t, userLayer, "etc/group")
	if !strings.HasSuffix(passwd, "\nappuser:x:1001:1001::"+map[bool]string{true: "/app", false: "/"}[imageName == "taskflow-backend"]+":/sbin/nologin\n") {
		t.Errorf("%s: passwd does not end with appuser:\n%s", imageName, passwd)
	}
	if !strings.Contains(group, "\nappgroup:x:1001:\n") {
		t.Errorf("%s: group lacks appgroup:\n%s", imageName, group)
	}
	if !strings.HasPrefix(passwd, "root:x:0:0:") {
		t.Errorf("%s: passwd lost the base's entries:\n%s", imageName, passwd)
	}

	switch imageName {
	case "taskflow-frontend":
		if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
			t.Errorf("frontend ports %v", c.ExposedPorts)
		}
		if _, ok := c.Volumes["/var/log/nginx"]; !ok {
			t.Errorf("frontend volumes %v", c.Volumes)
		}
		if !strings.Contains(passwd, "\nnginx:x:101:101:") {
			t.Errorf("frontend passwd lost nginx (from the base's upper layer):\n%s", passwd)
		}
		site := layerFiles(t, ls[len(ls)-3])
		if len(site) < 20 {
			t.Fatalf("site layer has %d entries", len(site))
		}
		for n, h := range site {
			if !strings.HasPrefix(n, "usr/share/nginx/html") || h.Uid != 1001 || h.Gid != 1001 {
				t.Errorf("frontend %s: %d:%d", n, h.Uid, h.Gid)
			}
		}
		for _, want := range []string{"usr/share/nginx/html/index.html", "usr/share/nginx/html/index.html.gz"} {
			if site[want] == nil {
				t.Errorf("frontend lacks %s", want)
			}
		}
		owned := layerFiles(t, userLayer)
		if h := owned["var/cache/nginx"]; h == nil || h.Uid != 1001 || h.Mode != 0o755 {
			t.Errorf("frontend /var/cache/nginx: %+v", h)
		}
	case "taskflow-backend":
		if !slices.Contains(c.Env, "PYTHONUNBUFFERED=1") {
			t.Errorf("backend env %q", c.Env)
		}
		if !slices.Contains(c.Env, "LANG=C.UTF-8") {
			t.Errorf("backend lost the base env: %q", c.Env)
		}
		code := layerFiles(t, ls[len(ls)-2])
		if code["app/server.py"] == nil || code["app"] == nil {
			t.Errorf("backend code layer: %v", code)
		}
		for n, h := range code {
			if h.Uid != 1001 || h.Gid != 1001 {
				t.Errorf("backend %s: %d:%d", n, h.Uid, h.Gid)
			}
		}
		pk := layerFiles(t, ls[len(ls)-3])
		for _, f := range []string{"usr/local/lib/python3.13/site-packages/taskflow_deps/__init__.py", "usr/local/lib/python3.13/site-packages/tfnative/libtfnative.so", "usr/local/bin/taskflow-admin"} {
			if h := pk[f]; h == nil || h.Uid != 1001 {
				t.Errorf("backend packages layer lacks %s owned by 1001: %v", f, pk)
			}
		}
	}
}

// TestBuildFailuresPushNothing checks that bad input fails with one clear
// line and leaves the registry and output directory untouched.
func TestBuildFailuresPushNothing(t *testing.T) {
	reg := registrytest.New(t)
	registrytest.PushLayout(t, nginxBase, reg.Host+"/library/nginx:alpine")
	registrytest.PushLayout(t, pythonBase, reg.Host+"/library/python:3.13-slim")
	good := map[string]string{
		"taskflow-frontend": reg.Host + "/library/nginx:alpine",
		"taskflow-backend":  reg.Host + "/library/python:3.13-slim",
	}
	ctx := context.Background()
	cases := []struct {
		name   string
		specs  func() []spec.ImageSpec
		prefix string
		want   []string
	}{
		{
			name: "base does not exist",
			specs: func() []spec.ImageSpec {
				return loadExample(t, map[string]string{"taskflow-frontend": good["taskflow-frontend"], "taskflow-backend": reg.Host + "/library/nope:1"})
			},
			want: []string{"image taskflow-backend", "base " + reg.Host + "/library/nope:1", "404 not found on " + reg.Host + "/library/nope: manifest unknown", "check the name and tag"},
		},
		{
			name:   "unreachable registry",
			specs:  func() []spec.ImageSpec { return loadExample(t, good) },
			prefix: "127.0.0.1:1/taskflow",
			want:   []string{"cannot push to 127.0.0.1:1/taskflow/taskflow-frontend", "connection refused", "is the registry running"},
		},
		{
			name: "over maxSize",
			specs: func() []spec.ImageSpec {
				s := loadExample(t, good)
				s[1].MaxSize = 1000
				return s
			},
			want: []string{"image taskflow-backend", "platform linux/amd64", "over maxSize 1.0 kB", "nothing was pushed"},
		},
		{
			name: "platform the base lacks",
			specs: func() []spec.ImageSpec {
				s := loadExample(t, good)
				s[1].Platforms = []v1.Platform{{OS: "linux", Architecture: "s390x"}}
				return s
			},
			want: []string{"has no platform linux/s390x; it has linux/amd64, linux/arm64/v8"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg.Reset()
			out := filepath.Join(t.TempDir(), "out")
			prefix := tc.prefix
			if prefix == "" {
				prefix = reg.Host + "/taskflow"
			}
			e := newTestEngine(t, "")
			_, err := e.Run(ctx, tc.specs(), e.RegistrySink(sink.Destinations{Prefix: prefix}), sink.Layout(out, sink.Destinations{}))
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if n := reg.Count("PUT"); n != 0 {
				t.Errorf("%d PUTs reached the registry", n)
			}
			if tc.prefix == "" && !strings.Contains(tc.name, "base") && !strings.Contains(tc.name, "platform") {
				// layers streamed while built were cancelled, not committed
				if n := reg.Count("PATCH", "/blobs/uploads/"); n == 0 {
					t.Errorf("nothing was streamed: %q", reg.Requests())
				}
				if repos := registrytest.Catalog(t, reg.Host); len(repos) != 2 {
					t.Errorf("registry holds %v, want only the two bases", repos)
				}
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("output %s left behind: %v", out, err)
			}
			entries, _ := os.ReadDir(filepath.Dir(out))
			if len(entries) != 0 {
				t.Errorf("temporary output left behind: %v", entries)
			}
		})
	}
}

// TestAppendReadsNoBaseLayer: without a user to merge, pushing to the base's
// registry neither downloads nor uploads a base layer (sizes come from the
// gzip trailer by range request; layers are mounted), and the reported
// uncompressed size is exact.
func TestAppendReadsNoBaseLayer(t *testing.T) {
	reg := registrytest.New(t)
	registrytest.PushLayout(t, nginxBase, reg.Host+"/library/nginx:alpine")
	site := t.TempDir()
	if err := os.WriteFile(filepath.Join(site, "index.html"), []byte("<h1>hi</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	is := spec.ImageSpec{
		Name: "site", Base: reg.Host + "/library/nginx:alpine", Policy: spec.Policy{AllowRoot: true},
		Layers: []spec.LayerSpec{{Name: "site", Spec: layers.Spec{Sources: []layers.Source{{From: site, To: "/usr/share/nginx/html"}}}}},
	}
	is.Compression, _ = layers.Compression{}.Normalize()
	// the SBOM reads the base's package database (TestSBOMReadsBaseOnce);
	// the provenance is counted apart
	is.NoSBOM, is.NoProvenance = true, true
	reg.Reset()
	e := newTestEngine(t, "")
	res, err := e.Run(context.Background(), []spec.ImageSpec{is}, e.RegistrySink(sink.Destinations{Ref: reg.Host + "/web/site:v1"}))
	if err != nil {
		t.Fatal(err)
	}
	whole := reg.Count("GET", "/v2/library/nginx/blobs/") - reg.Count("GET", "/v2/library/nginx/blobs/", "range=")
	if whole != 2 {
		t.Errorf("%d whole base blobs downloaded; want only the 2 configs: %q", whole, reg.Requests())
	}
	if n := reg.Count("PUT", "/v2/web/site/blobs/uploads/"); n != 3 {
		t.Errorf("%d blobs uploaded; want the new layer and 2 configs", n)
	}
	if n := reg.Count("GET", "range="); n != 4 {
		t.Errorf("%d range requests, want one per base layer (4)", n)
	}
	// the size reported is exact
	r, _ := name.ParseReference(reg.Host + "/web/site:v1")
	idx, err := remote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	for i, m := range im.Manifests {
		img, _ := idx.Image(m.Digest)
		ls, _ := img.Layers()
		var total int64
		for _, l := range ls {
			rc, err := l.Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, rc)
			rc.Close()
			total += n
		}
		if got := res[0].Platforms[i].UncompressedSize; got != total {
			t.Errorf("%s: reported %d bytes uncompressed, layers hold %d", res[0].Platforms[i].Platform, got, total)
		}
	}
}
