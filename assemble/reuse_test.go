package assemble_test

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/assemble"
	"github.com/gantry-dev/gantry/assemble/registrytest"
	"github.com/gantry-dev/gantry/assemble/sink"
	"github.com/gantry-dev/gantry/assemble/spec"
	"github.com/gantry-dev/gantry/layers"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// reuseRig is TaskFlow pushed once to a registry, for builds that should
// find its layers there.
type reuseRig struct {
	reg     *registrytest.Registry
	bases   map[string]string
	cache   string // the first build's cache
	digests map[string]string
	stats   layers.Stats // of the last push
}

func newReuseRig(t *testing.T) *reuseRig {
	t.Helper()
	reg := registrytest.New(t)
	registrytest.PushLayout(t, nginxBase, reg.Host+"/library/nginx:alpine")
	registrytest.PushLayout(t, pythonBase, reg.Host+"/library/python:3.13-slim")
	rig := &reuseRig{reg: reg, cache: t.TempDir(), digests: map[string]string{}, bases: map[string]string{
		"taskflow-frontend": reg.Host + "/library/nginx:alpine",
		"taskflow-backend":  reg.Host + "/library/python:3.13-slim",
	}}
	for _, r := range rig.push(t, rig.cache, loadExample(t, rig.bases), sink.Destinations{Prefix: reg.Host + "/taskflow"}) {
		rig.digests[r.Name] = r.Digest
	}
	return rig
}

// push runs specs to dest with the cache in dir, counting the registry's
// requests from a clean slate, and checks every digest against the first
// build's.
func (rig *reuseRig) push(t *testing.T, dir string, specs []spec.ImageSpec, dest sink.Destinations, opts ...sink.RegistryOption) []assemble.Result {
	t.Helper()
	rig.reg.Reset()
	e := newTestEngine(t, dir)
	res, err := e.Run(context.Background(), specs, e.RegistrySink(dest, opts...))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if want, ok := rig.digests[r.Name]; ok && r.Digest != want {
			t.Errorf("%s: %s, the first build gave %s", r.Name, r.Digest, want)
		}
	}
	rig.stats = e.LayerStats()
	if st := rig.stats; len(rig.digests) > 0 && st.Compressed != 0 {
		t.Errorf("compressed %d bytes; stats %+v", st.Compressed, st)
	}
	return res
}

func (rig *reuseRig) uploads() int {
	return rig.reg.Count("PATCH", "/blobs/uploads/") + rig.reg.Count("PUT", "/blobs/uploads/")
}

// TestFreshRunnerReusesRegistry: with an empty cache, every new layer is
// found in the registry by content (the image at the destination tag, or
// --cache-from another tag or repository): nothing is compressed or
// uploaded, and the digests are the first build's.
func TestFreshRunnerReusesRegistry(t *testing.T) {
	rig := newReuseRig(t)
	host := rig.reg.Host
	t.Run("same tag", func(t *testing.T) {
		dir := t.TempDir()
		rig.push(t, dir, loadExample(t, rig.bases), sink.Destinations{Prefix: host + "/taskflow"})
		if n := rig.uploads(); n != 0 {
			t.Errorf("%d blob uploads; requests %q", n, rig.reg.Requests())
		}
		// the runner's next build: the cache remembers what the registry
		// had, so no file is read (the registry is asked again)
		rig.push(t, dir, loadExample(t, rig.bases), sink.Destinations{Prefix: host + "/taskflow"})
		if st := rig.stats; st.FilesRead != 0 || st.Misses != 0 || rig.uploads() != 0 {
			t.Errorf("the same runner again: %+v, %d uploads", st, rig.uploads())
		}
	})
	t.Run("cache-from another tag", func(t *testing.T) {
		rig.push(t, t.TempDir(), loadExample(t, rig.bases), sink.Destinations{Prefix: host + "/taskflow", Tags: []string{"pr-7"}}, sink.CacheFrom(":latest"))
		if n := rig.uploads(); n != 0 {
			t.Errorf("%d blob uploads", n)
		}
		if n := rig.reg.Count("PUT", "/manifests/pr-7"); n != 2 {
			t.Errorf("%d pr-7 tags written, want 2", n)
		}
	})
	t.Run("cache-from another repository", func(t *testing.T) {
		specs := loadExample(t, rig.bases)[:1] // the frontend
		rig.push(t, t.TempDir(), specs, sink.Destinations{Ref: host + "/fork/site:v1"}, sink.CacheFrom(host+"/taskflow/taskflow-frontend:latest"))
		// a new repository needs the configs (and the SBOM and
		// provenance); every layer is mounted
		for _, l := range pushedLayers(t, host+"/fork/site:v1") {
			if n := rig.reg.Count("PUT", "/blobs/uploads/", "digest="+url.QueryEscape(l)); n != 0 {
				t.Errorf("layer %s uploaded %d times", l, n)
			}
		}
		if n := rig.reg.Count("POST", "mount=", "from=taskflow"); n == 0 {
			t.Errorf("no blob mounted from taskflow/; requests %q", rig.reg.Requests())
		}
	})
	t.Run("nothing to reuse is a miss, not an error", func(t *testing.T) {
		delete(rig.digests, "taskflow-frontend")
		rig.reg.Reset()
		e := newTestEngine(t, t.TempDir())
		specs := loadExample(t, rig.bases)[:1]
		specs[0].Compression.Algorithm = "zstd" // the registry's are gzip
		if _, err := e.Run(context.Background(), specs, e.RegistrySink(sink.Destinations{Ref: host + "/taskflow/taskflow-frontend:zstd"}, sink.CacheFrom(":no-such-tag", host+"/nowhere/x:y"))); err != nil {
			t.Fatal(err)
		}
		if st := e.LayerStats(); st.RegistryHits != 0 || st.Compressed == 0 {
			t.Errorf("a gzip layer reused for a zstd build: %+v", st)
		}
	})
}

// TestFreshCheckoutReusesCache: a new checkout of the same files (new
// mtimes) with the cache of an earlier build compresses and uploads
// nothing.
func TestFreshCheckoutReusesCache(t *testing.T) {
	rig := newReuseRig(t)
	checkout := filepath.Join(t.TempDir(), "taskflow")
	if err := os.CopyFS(checkout, os.DirFS(filepath.Dir(exampleFile))); err != nil {
		t.Fatal(err)
	}
	specs, err := spec.Load(filepath.Join(checkout, "gantry.yaml"), noEnv, spec.Options{Bases: rig.bases})
	if err != nil {
		t.Fatal(err)
	}
	rig.push(t, rig.cache, specs, sink.Destinations{Prefix: rig.reg.Host + "/taskflow"})
	if n := rig.uploads(); n != 0 {
		t.Errorf("%d blob uploads", n)
	}
}

// TestRebuildReadsNoRegistryCache: a rebuild whose layers the cache has
// does not read the images at the destination tags to find layers by
// content: the registry cache is read only on a miss.
func TestRebuildReadsNoRegistryCache(t *testing.T) {
	rig := newReuseRig(t)
	rig.push(t, rig.cache, loadExample(t, rig.bases), sink.Destinations{Prefix: rig.reg.Host + "/taskflow"})
	if st := rig.stats; st.Misses != 0 || st.Hits == 0 {
		t.Fatalf("the rebuild missed the cache: %+v", st)
	}
	gets := rig.reg.Count("GET", "/taskflow/", "/manifests/") + rig.reg.Count("GET", "/taskflow/", "/blobs/")
	if gets != 0 || rig.uploads() != 0 {
		t.Errorf("%d reads of the destination images, %d uploads; requests %q", gets, rig.uploads(), rig.reg.Requests())
	}
}

// pushedImages returns the images the index at ref lists.
func pushedImages(t *testing.T, ref string) []v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var out []v1.Image
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, img)
	}
	return out
}

// pushedLayers lists the layer digests of every platform image at ref.
func pushedLayers(t *testing.T, ref string) []string {
	t.Helper()
	var out []string
	for _, img := range pushedImages(t, ref) {
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range m.Layers {
			out = append(out, l.Digest.String())
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s has no layers", ref)
	}
	return out
}

// TestCacheRepoSharesLayersAndBaseIndexes: with --cache-repo, a fresh
// runner pushing to another repository, with a user to merge, finds the
// layers by content (mounted, not uploaded) and the base layers' indexes
// in the cache artifact: no base layer is downloaded.
func TestCacheRepoSharesLayersAndBaseIndexes(t *testing.T) {
	reg := registrytest.New(t)
	registrytest.PushLayout(t, nginxBase, reg.Host+"/library/nginx:alpine")
	registrytest.PushLayout(t, pythonBase, reg.Host+"/library/python:3.13-slim")
	bases := map[string]string{"taskflow-frontend": reg.Host + "/library/nginx:alpine", "taskflow-backend": reg.Host + "/library/python:3.13-slim"}
	cacheRepo := sink.CacheRepo(reg.Host + "/ci/cache")
	// something that is not a cache artifact at the cache tag is an empty
	// cache, not an error, and is replaced
	registrytest.PushLayout(t, nginxBase, reg.Host+"/ci/cache:gantry-cache")
	first := newTestEngine(t, "")
	res, err := first.Run(context.Background(), loadExample(t, bases), first.RegistrySink(sink.Destinations{Prefix: reg.Host + "/main"}, cacheRepo))
	if err != nil {
		t.Fatal(err)
	}
	if !registrytest.TagExists(t, reg.Host+"/ci/cache:gantry-cache") {
		t.Fatal("no cache artifact was written")
	}
	reg.Reset()
	e := newTestEngine(t, "")
	again, err := e.Run(context.Background(), loadExample(t, bases), e.RegistrySink(sink.Destinations{Prefix: reg.Host + "/branch"}, cacheRepo))
	if err != nil {
		t.Fatal(err)
	}
	for i := range res {
		if again[i].Digest != res[i].Digest {
			t.Errorf("%s: %s, the first build gave %s", res[i].Name, again[i].Digest, res[i].Digest)
		}
	}
	if st := e.LayerStats(); st.Compressed != 0 || st.RegistryHits == 0 {
		t.Errorf("stats %+v: want every layer found in the registry", st)
	}
	for _, layout := range []string{nginxBase, pythonBase} {
		for _, l := range layoutLayers(t, layout) {
			if n := reg.Count("GET", "/blobs/"+l); n != 0 {
				t.Errorf("base layer %s downloaded; the cache repository has its index", l)
			}
		}
	}
	for _, r := range again {
		for _, l := range pushedLayers(t, reg.Host+"/branch/"+r.Name+":latest") {
			if n := reg.Count("PUT", "/blobs/uploads/", "digest="+url.QueryEscape(l)); n != 0 {
				t.Errorf("%s: layer %s uploaded", r.Name, l)
			}
		}
	}
}

// layoutLayers lists the layer digests of every image of an OCI layout.
func layoutLayers(t *testing.T, dir string) []string {
	t.Helper()
	idx := registrytest.LayoutIndex(t, dir)
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			continue // attestations, nested indexes
		}
		ls, err := img.Layers()
		if err != nil {
			continue
		}
		for _, l := range ls {
			dg, _ := l.Digest()
			out = append(out, dg.String())
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no layers found", dir)
	}
	return out
}

// TestReuseOnRealRegistry: on Debian's docker-registry, a fresh runner
// pushing the frontend to another repository with --cache-from mounts
// every new layer, and crane validate (which downloads every blob and
// checks digests and diffIDs) accepts the image.
func TestReuseOnRealRegistry(t *testing.T) {
	host := registrytest.RealRegistry(t)
	crane := registrytest.LookPath(t, "crane")
	bases := map[string]string{"taskflow-frontend": "oci:" + nginxBase + ":alpine", "taskflow-backend": "oci:" + pythonBase + ":3.13-slim"}
	first := newTestEngine(t, "")
	res, err := first.Run(context.Background(), loadExample(t, bases)[:1], first.RegistrySink(sink.Destinations{Ref: host + "/main/site:v1"}))
	if err != nil {
		t.Fatal(err)
	}
	e := newTestEngine(t, "")
	again, err := e.Run(context.Background(), loadExample(t, bases)[:1], e.RegistrySink(sink.Destinations{Ref: host + "/pr/site:v1"}, sink.CacheFrom(host+"/main/site:v1")))
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Digest != res[0].Digest {
		t.Errorf("fresh runner gave %s, the first build %s", again[0].Digest, res[0].Digest)
	}
	if st := e.LayerStats(); st.Compressed != 0 || st.RegistryHits == 0 {
		t.Errorf("stats %+v: want every new layer found in the registry", st)
	}
	for _, p := range again[0].Platforms {
		out, err := exec.Command(crane, "validate", "--insecure", "--remote", host+"/pr/site@"+p.Digest).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "PASS") {
			t.Errorf("crane validate %s: %v\n%s", p.Platform, err, out)
		}
	}
}
