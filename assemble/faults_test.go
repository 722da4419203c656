package assemble_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/assemble"
	"github.com/gantry-dev/gantry/assemble/registry"
	"github.com/gantry-dev/gantry/assemble/sink"
	"github.com/gantry-dev/gantry/assemble/spec"
)

// faultProxy stands in front of a real registry and, while on, injects the
// faults its rule picks; everything else is forwarded unchanged (Host
// included, so the registry's Location headers name the proxy).
type faultProxy struct {
	host     string
	on       atomic.Bool
	injected atomic.Int32
	rule     func(w http.ResponseWriter, r *http.Request) bool // true: answered
}

func newFaultProxy(t *testing.T, registryHost string, rule func(p *faultProxy, w http.ResponseWriter, r *http.Request) bool) *faultProxy {
	t.Helper()
	target, _ := url.Parse("http://" + registryHost)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) { w.WriteHeader(http.StatusBadGateway) }
	p := &faultProxy{}
	p.rule = func(w http.ResponseWriter, r *http.Request) bool { return rule(p, w, r) }
	p.host = startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.on.Load() && p.rule(w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	}), nil)
	return p
}

// matchers
func isBlobUpload(r *http.Request) bool {
	return (r.Method == http.MethodPatch || r.Method == http.MethodPut) && strings.Contains(r.URL.Path, "/blobs/uploads/")
}
func isManifestPut(r *http.Request) bool {
	return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/")
}
func isTagPut(r *http.Request) bool {
	return isManifestPut(r) && !strings.Contains(r.URL.Path, "/manifests/sha256:")
}
func anyRequest(*http.Request) bool { return true }

// fail answers code (with Retry-After when set) after draining the body,
// as a registry behind a load balancer would.
func fail(w http.ResponseWriter, r *http.Request, code int, retryAfter string) {
	io.Copy(io.Discard, r.Body)
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(code)
	io.WriteString(w, http.StatusText(code))
}

// firstN injects fault into the first n requests match accepts.
func firstN(n int32, match func(*http.Request) bool, fault func(w http.ResponseWriter, r *http.Request)) func(*faultProxy, http.ResponseWriter, *http.Request) bool {
	var seen atomic.Int32
	return func(p *faultProxy, w http.ResponseWriter, r *http.Request) bool {
		if !match(r) || seen.Add(1) > n {
			return false
		}
		p.injected.Add(1)
		fault(w, r)
		return true
	}
}

// always injects fault into every request match accepts.
func always(match func(*http.Request) bool, fault func(w http.ResponseWriter, r *http.Request)) func(*faultProxy, http.ResponseWriter, *http.Request) bool {
	return firstN(1<<30, match, fault)
}

// slow delays every request match accepts by d, then forwards it.
func slow(match func(*http.Request) bool, d time.Duration) func(*faultProxy, http.ResponseWriter, *http.Request) bool {
	return func(p *faultProxy, w http.ResponseWriter, r *http.Request) bool {
		if match(r) {
			p.injected.Add(1)
			time.Sleep(d)
		}
		return false
	}
}

// resetAfter reads n bytes of the request body, then drops the connection
// with a TCP reset: a connection lost mid-upload.
func resetAfter(n int64) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		io.CopyN(io.Discard, r.Body, n)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		conn.Close()
	}
}

// faultRig is a registry with the TaskFlow bases, a fault proxy in front of
// it, and the digests a fault-free build through the proxy gives.
type faultRig struct {
	reg   *testRegistry
	proxy *faultProxy
	specs func() []spec.ImageSpec
	want  map[string]string // image name → digest
}

var fastRetry = registry.RetryPolicy{Attempts: 5, Base: 10 * time.Millisecond, MaxWait: 100 * time.Millisecond, Budget: 3 * time.Second}

func newFaultRig(t *testing.T, rule func(*faultProxy, http.ResponseWriter, *http.Request) bool) *faultRig {
	t.Helper()
	reg := newTestRegistryWith(t, registryOptions{})
	pushLayoutBase(t, nginxBase, reg.host+"/library/nginx:alpine")
	pushLayoutBase(t, pythonBase, reg.host+"/library/python:3.13-slim")
	p := newFaultProxy(t, reg.host, rule)
	// bases are named through the proxy: pulls face the faults too
	bases := map[string]string{
		"taskflow-frontend": p.host + "/library/nginx:alpine",
		"taskflow-backend":  p.host + "/library/python:3.13-slim",
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
	rig.proxy.on.Store(true)
	defer rig.proxy.on.Store(false)
	return e.Run(context.Background(), rig.specs(), e.RegistrySink(sink.Destinations{Prefix: rig.proxy.host + "/taskflow", Tags: []string{"v1", "latest"}}))
}

// TestFaultsBuildCompletes: with 503 bursts, 429s, connections reset
// mid-upload or a slow server between gantry and the registry, the build
// completes with the digests of a fault-free build, and every tag in the
// registry resolves to an image whose blobs are all there.
func TestFaultsBuildCompletes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		rule func(*faultProxy, http.ResponseWriter, *http.Request) bool
		log  string // in the warnings when set
	}{
		{"503 burst on blob uploads", firstN(3, isBlobUpload, func(w http.ResponseWriter, r *http.Request) { fail(w, r, http.StatusServiceUnavailable, "") }), ""},
		{"429 with Retry-After on manifest puts", firstN(3, isManifestPut, func(w http.ResponseWriter, r *http.Request) { fail(w, r, http.StatusTooManyRequests, "1") }), "429 Too Many Requests"},
		{"503 on the registry ping and pulls", firstN(4, func(r *http.Request) bool { return r.Method == http.MethodGet }, func(w http.ResponseWriter, r *http.Request) { fail(w, r, http.StatusServiceUnavailable, "") }), "503 Service Unavailable"},
		{"connection reset mid-upload", firstN(2, func(r *http.Request) bool { return r.Method == http.MethodPatch }, resetAfter(300)), ""},
		{"slow HEADs", slow(func(r *http.Request) bool { return r.Method == http.MethodHead }, 150*time.Millisecond), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rig := newFaultRig(t, tc.rule)
			var logs lockedBuffer
			start := time.Now()
			res, err := rig.run(t, fastRetry, &logs)
			if err != nil {
				t.Fatalf("build failed: %v\nwarnings:\n%s", err, logs.String())
			}
			t.Logf("%d faults injected; took %s", rig.proxy.injected.Load(), time.Since(start).Round(time.Millisecond))
			if rig.proxy.injected.Load() == 0 {
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
			tags := checkRegistryConsistent(t, rig.reg.host)
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
	rule := func(p *faultProxy, w http.ResponseWriter, r *http.Request) bool {
		if !isManifestPut(r) {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case path == "":
			path = r.URL.Path
			p.injected.Add(1)
			fail(w, r, http.StatusTooManyRequests, "1")
			answered = time.Now()
			return true
		case r.URL.Path == path && retried.IsZero():
			retried = time.Now()
		}
		return false
	}
	reg := newTestRegistryWith(t, registryOptions{})
	p := newFaultProxy(t, reg.host, rule)
	e, err := NewEngine(testOptions{CacheDir: t.TempDir(), Retry: registry.RetryPolicy{Base: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	p.on.Store(true)
	if _, err := e.Run(context.Background(), []spec.ImageSpec{smallSpec(t, "oci:"+nginxBase)}, e.RegistrySink(sink.Destinations{Ref: p.host + "/web/site:v1"})); err != nil {
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
	checkRegistryConsistent(t, reg.host)
}

// TestFaultsFailCleanly: a registry that keeps failing makes the build
// fail with one line, within the retry budget, and no tag points at
// anything incomplete (none is written, or only whole images are tagged).
func TestFaultsFailCleanly(t *testing.T) {
	t.Parallel()
	retry := registry.RetryPolicy{Attempts: 3, Base: 10 * time.Millisecond, MaxWait: 50 * time.Millisecond, Budget: 500 * time.Millisecond}
	unavailable := func(w http.ResponseWriter, r *http.Request) { fail(w, r, http.StatusServiceUnavailable, "") }
	cases := []struct {
		name string
		rule func(*faultProxy, http.ResponseWriter, *http.Request) bool
		want []string
		tags []string // tags that may exist (whole images)
	}{
		{"every request 503", always(anyRequest, unavailable),
			[]string{"image taskflow-frontend: base ", "503 service unavailable"}, nil},
		{"blob uploads 503", always(isBlobUpload, unavailable),
			[]string{"pushing ", "/taskflow/taskflow-frontend", "503 service unavailable"}, nil},
		{"manifest puts 503", always(isManifestPut, unavailable),
			[]string{"pushing ", "/taskflow/taskflow-frontend", "503 service unavailable"}, nil},
		{"tag puts 503", always(isTagPut, unavailable),
			[]string{"tagging ", "/taskflow/taskflow-frontend:v1 (no tag was written)", "503 service unavailable"}, nil},
		{"second image's tags 503", always(func(r *http.Request) bool { return isTagPut(r) && strings.Contains(r.URL.Path, "taskflow-backend") }, unavailable),
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
			t.Logf("after %s and %d faults: %s", took.Round(time.Millisecond), rig.proxy.injected.Load(), msg)
			// each request gives up after its attempts; uploads are tried
			// again a few times from a new session. Bounded by count, not
			// by the clock (a busy machine only makes it slower); the
			// minute is a guard against retrying without end.
			if n := rig.proxy.injected.Load(); n > 100 {
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
			tags := checkRegistryConsistent(t, rig.reg.host)
			for tag, d := range tags {
				if strings.HasPrefix(tag, "library/") {
					continue
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
	reg := newTestRegistryWith(t, registryOptions{})
	p := newFaultProxy(t, reg.host, slow(isBlobUpload, 3*time.Second))
	e, err := NewEngine(testOptions{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	p.on.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	_, err = e.Run(ctx, []spec.ImageSpec{smallSpec(t, "oci:"+nginxBase)}, e.RegistrySink(sink.Destinations{Ref: p.host + "/web/site:v1"}))
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
	if n := reg.count("PUT", "/manifests/"); n != 0 {
		t.Errorf("%d manifests written", n)
	}
}
