package assemble_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/assemble"
	"github.com/gantry-dev/gantry/assemble/registry"
	"github.com/gantry-dev/gantry/assemble/registrytest"
	"github.com/gantry-dev/gantry/assemble/sink"
	"github.com/gantry-dev/gantry/assemble/spec"
)

// faultRig is a registry with the TaskFlow bases, a fault proxy in front of
// it, and the digests a fault-free build through the proxy gives.
type faultRig struct {
	reg   *registrytest.Registry
	proxy *registrytest.FaultProxy
	specs func() []spec.ImageSpec
	want  map[string]string // image name → digest
}

var fastRetry = registry.RetryPolicy{Attempts: 5, Base: 10 * time.Millisecond, MaxWait: 100 * time.Millisecond, Budget: 3 * time.Second}

func newFaultRig(t *testing.T, rule registrytest.Rule) *faultRig {
	t.Helper()
	reg := registrytest.New(t)
	registrytest.PushLayout(t, nginxBase, reg.Host+"/library/nginx:alpine")
	registrytest.PushLayout(t, pythonBase, reg.Host+"/library/python:3.13-slim")
	p := registrytest.NewFaultProxy(t, reg.Host, rule)
	// bases are named through the proxy: pulls face the faults too
	bases := map[string]string{
		"taskflow-frontend": p.Host + "/library/nginx:alpine",
		"taskflow-backend":  p.Host + "/library/python:3.13-slim",
	}
	rig := &faultRig{reg: reg, proxy: p, specs: func() []spec.ImageSpec { return loadExample(t, bases) }, want: map[string]string{}}
	e := rig.engine(t, fastRetry, nil)
	built, err := e.Build(context.Background(), rig.specs())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range built {
		rig.want[b.Spec.Name] = b.Digest.String()
	}
	return rig
}

func (rig *faultRig) engine(t *testing.T, retry registry.RetryPolicy, logs io.Writer) testEngine {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	e, err := NewEngine(testOptions{CacheDir: t.TempDir(), Retry: retry, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// run pushes the TaskFlow images through the proxy with faults on.
func (rig *faultRig) run(t *testing.T, retry registry.RetryPolicy, logs io.Writer) ([]assemble.Result, error) {
	t.Helper()
	e := rig.engine(t, retry, logs)
	rig.proxy.Enable()
	defer rig.proxy.Disable()
	return e.Run(context.Background(), rig.specs(), e.RegistrySink(sink.Destinations{Prefix: rig.proxy.Host + "/taskflow", Tags: []string{"v1", "latest"}}))
}

// TestFaultsBuildCompletes: with 503 bursts, 429s, connections reset
// mid-upload or a slow server between gantry and the registry, the build
// completes with the digests of a fault-free build, and every tag in the
// registry resolves to an image whose blobs are all there.
func TestFaultsBuildCompletes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		rule registrytest.Rule
		log  string // in the warnings when set
	}{
		{"503 burst on blob uploads", registrytest.FirstN(3, registrytest.IsBlobUpload, registrytest.Status(http.StatusServiceUnavailable, "")), ""},
		{"429 with Retry-After on manifest puts", registrytest.FirstN(3, registrytest.IsManifestPut, registrytest.Status(http.StatusTooManyRequests, "1")), "429 Too Many Requests"},
		{"503 on the registry ping and pulls", registrytest.FirstN(4, registrytest.Method(http.MethodGet), registrytest.Status(http.StatusServiceUnavailable, "")), "503 Service Unavailable"},
		{"connection reset mid-upload", registrytest.FirstN(2, registrytest.Method(http.MethodPatch), registrytest.ResetAfter(300)), ""},
		{"slow HEADs", registrytest.Slow(registrytest.Method(http.MethodHead), 150*time.Millisecond), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rig := newFaultRig(t, tc.rule)
			var logs registrytest.Buffer
			start := time.Now()
			res, err := rig.run(t, fastRetry, &logs)
			if err != nil {
				t.Fatalf("build failed: %v\nwarnings:\n%s", err, logs.String())
			}
			t.Logf("%d faults injected; took %s", rig.proxy.Injected(), time.Since(start).Round(time.Millisecond))
			if rig.proxy.Injected() == 0 {
				t.Fatal("no fault was injected")
			}
			if tc.log != "" && !strings.Contains(logs.String(), tc.log) {
				t.Errorf("warnings lack %q:\n%s", tc.log, logs.String())
			}
			got := map[string]string{}
			for _, r := range res {
				got[r.Name] = r.Digest
			}
			if !maps.Equal(got, rig.want) {
				t.Errorf("digests %v, a fault-free build gives %v", got, rig.want)
			}
			tags := registrytest.CheckConsistent(t, rig.reg.Host)
			for name, d := range rig.want {
				for _, tag := range []string{"v1", "latest"} {
					if tags["taskflow/"+name+":"+tag] != d {
						t.Errorf("taskflow/%s:%s is %q, want %s", name, tag, tags["taskflow/"+name+":"+tag], d)
					}
				}
			}
		})
	}
}

// TestFaultsRetryAfterHonoured: a 429 with Retry-After: 1 on a manifest
// put delays that put's retry by at least a second.
func TestFaultsRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var path string
	var answered, retried time.Time
	rule := func(p *registrytest.FaultProxy, w http.ResponseWriter, r *http.Request) bool {
		if !registrytest.IsManifestPut(r) {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case path == "":
			path = r.URL.Path
			p.Inject()
			registrytest.Status(http.StatusTooManyRequests, "1")(w, r)
			answered = time.Now()
			return true
		case r.URL.Path == path && retried.IsZero():
			retried = time.Now()
		}
		return false
	}
	reg := registrytest.New(t)
	p := registrytest.NewFaultProxy(t, reg.Host, rule)
	e, err := NewEngine(testOptions{CacheDir: t.TempDir(), Retry: registry.RetryPolicy{Base: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	p.Enable()
	if _, err := e.Run(context.Background(), []spec.ImageSpec{smallSpec(t, "oci:"+nginxBase)}, e.RegistrySink(sink.Destinations{Ref: p.Host + "/web/site:v1"})); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if retried.IsZero() {
		t.Fatalf("the manifest put %s was not retried", path)
	}
	if d := retried.Sub(answered); d < time.Second {
		t.Errorf("retried %s after a 429 with Retry-After: 1", d)
	} else {
		t.Logf("retried %s after the 429", d.Round(time.Millisecond))
	}
	registrytest.CheckConsistent(t, reg.Host)
}

// TestFaultsFailCleanly: a registry that keeps failing makes the build
// fail with one line, within the retry budget, and no tag points at
// anything incomplete (none is written, or only whole images are tagged).
func TestFaultsFailCleanly(t *testing.T) {
	t.Parallel()
	retry := registry.RetryPolicy{Attempts: 3, Base: 10 * time.Millisecond, MaxWait: 50 * time.Millisecond, Budget: 500 * time.Millisecond}
	unavailable := registrytest.Status(http.StatusServiceUnavailable, "")
	isBaseRead := func(r *http.Request) bool {
		return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/library/")
	}
	// a tag of the user's, not the referrers tag schema's sha256-<hex>,
	// which holds the SBOM and provenance and is pushed before the tags
	userTagPut := func(r *http.Request) bool {
		return registrytest.IsTagPut(r) && !strings.Contains(r.URL.Path, "/manifests/sha256-")
	}
	referrersTagPut := func(r *http.Request) bool {
		return registrytest.IsTagPut(r) && strings.Contains(r.URL.Path, "/manifests/sha256-")
	}
	backendTagPut := func(r *http.Request) bool {
		return userTagPut(r) && strings.Contains(r.URL.Path, "taskflow-backend")
	}
	cases := []struct {
		name string
		rule registrytest.Rule
		want []string
		tags []string // tags that may exist (whole images)
	}{
		{"every request 503", registrytest.Always(registrytest.AnyRequest, unavailable),
			[]string{"cannot push to ", "/taskflow/taskflow-frontend", "503 service unavailable"}, nil},
		{"base manifests 503", registrytest.Always(isBaseRead, unavailable),
			[]string{"image taskflow-frontend: base ", "503 service unavailable"}, nil},
		{"blob uploads 503", registrytest.Always(registrytest.IsBlobUpload, unavailable),
			[]string{"pushing ", "/taskflow/taskflow-frontend", "503 service unavailable"}, nil},
		{"manifest puts 503", registrytest.Always(registrytest.IsManifestPut, unavailable),
			[]string{"pushing ", "/taskflow/taskflow-frontend", "503 service unavailable"}, nil},
		{"referrers tag puts 503", registrytest.Always(referrersTagPut, unavailable),
			[]string{"pushing ", "/taskflow/taskflow-frontend", "attaching the application/spdx+json artifact to sha256:", "--sbom=false", "503 service unavailable"}, nil},
		{"tag puts 503", registrytest.Always(userTagPut, unavailable),
			[]string{"tagging ", "/taskflow/taskflow-frontend:v1 (no tag was written)", "503 service unavailable"}, nil},
		{"second image's tags 503", registrytest.Always(backendTagPut, unavailable),
			[]string{"tagging ", "/taskflow/taskflow-backend:v1 (tagged before the failure: ", "taskflow-frontend:v1, ", "taskflow-frontend:latest)"},
			[]string{"taskflow/taskflow-frontend:v1", "taskflow/taskflow-frontend:latest"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rig := newFaultRig(t, tc.rule)
			start := time.Now()
			_, err := rig.run(t, retry, nil)
			took := time.Since(start)
			if err == nil {
				t.Fatal("the build succeeded")
			}
			msg := err.Error()
			t.Logf("after %s and %d faults: %s", took.Round(time.Millisecond), rig.proxy.Injected(), msg)
			// each request gives up after its attempts; uploads are tried
			// again a few times from a new session. Bounded by count, not
			// by the clock (a busy machine only makes it slower); the
			// minute is a guard against retrying without end.
			if n := rig.proxy.Injected(); n > 100 {
				t.Errorf("%d faults before giving up", n)
			}
			if took > time.Minute {
				t.Errorf("took %s to fail", took)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			if strings.Contains(msg, "interrupted") || strings.Contains(msg, "context canceled") {
				t.Errorf("a registry failure reported as an interrupt: %q", msg)
			}
			var re *registry.Error
			if !errors.As(err, &re) {
				t.Errorf("not a RegistryError: %T", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			tags := registrytest.CheckConsistent(t, rig.reg.Host)
			for tag, d := range tags {
				if strings.HasPrefix(tag, "library/") || strings.Contains(tag, ":sha256-") {
					continue // the bases; the referrers of whole images (CheckConsistent checked them)
				}
				name := strings.TrimPrefix(tag[:strings.LastIndex(tag, ":")], "taskflow/")
				if !slices.Contains(tc.tags, tag) || d != rig.want[name] {
					t.Errorf("tag %s → %s exists after the failure", tag, d)
				}
			}
		})
	}
}

// TestInterruptStopsPromptly: a Ctrl-C (the context cancelled) during slow
// uploads stops the run at once, says that no tag was written, and leaves
// no tag behind.
func TestInterruptStopsPromptly(t *testing.T) {
	t.Parallel()
	reg := registrytest.New(t)
	p := registrytest.NewFaultProxy(t, reg.Host, registrytest.Slow(registrytest.IsBlobUpload, 3*time.Second))
	e, err := NewEngine(testOptions{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	p.Enable()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	_, err = e.Run(ctx, []spec.ImageSpec{smallSpec(t, "oci:"+nginxBase)}, e.RegistrySink(sink.Destinations{Ref: p.Host + "/web/site:v1"}))
	took := time.Since(start)
	if err == nil {
		t.Fatal("no error")
	}
	if took > 2*time.Second {
		t.Errorf("took %s to stop after the interrupt", took)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "interrupted: no tag was written") || strings.Contains(msg, "\n") {
		t.Errorf("error %q", msg)
	}
	if n := reg.Count("PUT", "/manifests/"); n != 0 {
		t.Errorf("%d manifests written", n)
	}
}
