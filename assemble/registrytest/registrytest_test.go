package registrytest

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

const (
	user     = "ci-bot"
	password = "pw-registrytest-never-printed"
)

// testLayout is an OCI layout naming a two-layer random image first, or
// an index of one when index.
func testLayout(t *testing.T, index bool) string {
	t.Helper()
	img, err := random.Image(256, 2)
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.Write(t.TempDir(), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if index {
		idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
		err = p.AppendIndex(idx)
	} else {
		err = p.AppendImage(img)
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(p)
}

func statusOf(err error) int {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode
	}
	return 0
}

func TestCA(t *testing.T) {
	t.Parallel()
	ca := NewCA(t)
	server := ca.ServerCert(t)
	for _, host := range []string{"127.0.0.1", "::1", "localhost"} {
		if _, err := server.Leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: ca.Pool}); err != nil {
			t.Errorf("server certificate for %s: %v", host, err)
		}
	}
	if _, err := server.Leaf.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: ca.Pool}); err == nil {
		t.Error("the server certificate is good for example.com")
	}
	signing := ca.SigningCert(t)
	if _, err := signing.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("signing certificate: %v", err)
	}
	if signing.Leaf.SerialNumber.Cmp(server.Leaf.SerialNumber) == 0 {
		t.Error("two certificates share a serial number")
	}
	if _, err := server.Leaf.Verify(x509.VerifyOptions{Roots: NewCA(t).Pool}); err == nil {
		t.Error("another CA's pool trusts the certificate")
	}
	raw, err := os.ReadFile(ca.File)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := pem.Decode(raw); b == nil || b.Type != "CERTIFICATE" || !bytes.Equal(b.Bytes, ca.Cert.Raw) {
		t.Errorf("%s does not hold the CA certificate:\n%s", ca.File, raw)
	}
	if tr := ca.Transport(); tr.TLSClientConfig == nil || tr.TLSClientConfig.RootCAs != ca.Pool {
		t.Error("the transport does not trust the CA")
	}
	var none *CA
	if tr := none.Transport(); tr == nil {
		t.Error("a nil CA gives no transport")
	}
}

// TestRegistryTLSHtpasswd: a push through TLS and htpasswd works and is
// recorded; a wrong or no password gets 401, an untrusting client a
// certificate error; the readers see what was pushed.
func TestRegistryTLSHtpasswd(t *testing.T) {
	t.Parallel()
	ca := NewCA(t)
	reg := New(t, WithTLS(ca), WithHtpasswd(map[string]string{user: password}))
	if reg.CA != ca || !strings.HasPrefix(reg.Host, "127.0.0.1:") {
		t.Fatalf("registry %+v", reg)
	}
	PushLayout(t, testLayout(t, true), reg.Host+"/web/index:v1", reg.OptionsAs(user)...)
	PushLayout(t, testLayout(t, false), reg.Host+"/web/image:v1", reg.OptionsAs(user)...)
	if !TagExists(t, reg.Host+"/web/index:v1", reg.OptionsAs(user)...) || TagExists(t, reg.Host+"/web/index:v2", reg.OptionsAs(user)...) {
		t.Error("TagExists is wrong")
	}
	if tags := Tags(t, reg.Host+"/web/image", reg.OptionsAs(user)...); !slices.Equal(tags, []string{"v1"}) {
		t.Errorf("tags %q", tags)
	}
	if tags := Tags(t, reg.Host+"/web/nothing", reg.OptionsAs(user)...); tags != nil {
		t.Errorf("tags of a missing repository: %q", tags)
	}
	if repos := Catalog(t, reg.Host, reg.OptionsAs(user)...); !slices.Equal(repos, []string{"web/image", "web/index"}) {
		t.Errorf("catalog %q", repos)
	}
	tags := CheckConsistent(t, reg.Host, reg.OptionsAs(user)...)
	if len(tags) != 2 || !strings.HasPrefix(tags["web/index:v1"], "sha256:") {
		t.Errorf("CheckConsistent: %v", tags)
	}

	reqs := reg.Requests()
	for _, q := range reqs {
		if !strings.HasSuffix(q, " tls") {
			t.Errorf("request without TLS: %s", q)
		}
	}
	if n := reg.Count("PUT", "/v2/web/index/manifests/v1"); n != 1 {
		t.Errorf("%d tag PUTs: %q", n, reqs)
	}
	if reg.Writes() < 6 || reg.Count("") != len(reqs) {
		t.Errorf("Writes %d, Count %d of %d requests", reg.Writes(), reg.Count(""), len(reqs))
	}

	reg.Reset()
	ref, _ := name.ParseReference(reg.Host + "/web/index:v1")
	bad := append(reg.Options(), remote.WithAuth(&authn.Basic{Username: user, Password: "wrong"}))
	if _, err := remote.Head(ref, bad...); statusOf(err) != http.StatusUnauthorized {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := remote.Head(ref, reg.Options()...); statusOf(err) != http.StatusUnauthorized {
		t.Errorf("no password: %v", err)
	}
	if len(reg.Requests()) == 0 || reg.Writes() != 0 {
		t.Errorf("after Reset: %q", reg.Requests())
	}
	reg.Reset()
	_, err := remote.Head(ref, remote.WithTransport(NewCA(t).Transport()), remote.WithAuth(&authn.Basic{Username: user, Password: password}))
	var uae x509.UnknownAuthorityError
	if !errors.As(err, &uae) {
		t.Errorf("a client trusting another CA: %v", err)
	}
	if n := len(reg.Requests()); n != 0 {
		t.Errorf("%d requests got past TLS", n)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("OptionsAs of an unknown user did not panic")
			}
		}()
		reg.OptionsAs("nobody")
	}()
}

// TestRegistryToken: Bearer token auth with users of different rights.
func TestRegistryToken(t *testing.T) {
	t.Parallel()
	ca := NewCA(t)
	ts := NewTokenServer(t, ca, map[string]string{user: password, "reader": "reader-pw"}, Allow("reader", "pull"))
	reg := New(t, WithTLS(ca), WithToken(ts))
	PushLayout(t, testLayout(t, true), reg.Host+"/web/site:v1", reg.OptionsAs(user)...)
	if !slices.ContainsFunc(ts.Issued(), func(s string) bool {
		return strings.HasPrefix(s, user+" ") && strings.Contains(s, "repository:web/site:") && strings.Contains(s, "push")
	}) {
		t.Errorf("no push token issued: %q", ts.Issued())
	}
	if len(ts.Tokens()) == 0 || ts.Denied() != 0 {
		t.Errorf("%d tokens, %d denied", len(ts.Tokens()), ts.Denied())
	}
	if !TagExists(t, reg.Host+"/web/site:v1", reg.OptionsAs("reader")...) {
		t.Error("the reader cannot pull")
	}
	ref, _ := name.ParseReference(reg.Host + "/web/reader:v1")
	img, _ := random.Image(64, 1)
	if err := remote.Write(ref, img, reg.OptionsAs("reader")...); err == nil {
		t.Error("a pull-only user pushed")
	}
	bad := append(reg.Options(), remote.WithAuth(&authn.Basic{Username: user, Password: "wrong"}))
	if _, err := remote.Head(ref, bad...); statusOf(err) != http.StatusUnauthorized {
		t.Errorf("wrong password: %v", err)
	}
	if ts.Denied() == 0 {
		t.Error("the token server denied nothing")
	}
	// the token server answers only over TLS and only for its service
	resp, err := http.Get("http://" + strings.TrimPrefix(ts.Realm, "https://"))
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("token over plain HTTP: %s", resp.Status)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, ts.Realm+"?service=other", nil)
	req.SetBasicAuth(user, password)
	resp, err = (&http.Client{Transport: ca.Transport()}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("token for another service: %s", resp.Status)
	}
}

// TestFaultProxy: a 503 is injected while enabled, then requests pass;
// the matchers pick what they say.
func TestFaultProxy(t *testing.T) {
	t.Parallel()
	reg := New(t)
	p := NewFaultProxy(t, reg.Host, FirstN(1, Method(http.MethodGet), Status(http.StatusServiceUnavailable, "7")))
	get := func() *http.Response {
		t.Helper()
		resp, err := http.Get("http://" + p.Host + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if r := get(); r.StatusCode != http.StatusOK {
		t.Errorf("disabled: %s", r.Status)
	}
	p.Enable()
	if r := get(); r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") != "7" {
		t.Errorf("first request: %s, Retry-After %q", r.Status, r.Header.Get("Retry-After"))
	}
	if r := get(); r.StatusCode != http.StatusOK {
		t.Errorf("second request: %s", r.Status)
	}
	if p.Injected() != 1 || reg.Count("GET", "/v2/") != 2 {
		t.Errorf("%d injected; the registry saw %q", p.Injected(), reg.Requests())
	}
	// a push through the proxy names the proxy in its Location headers
	p.Disable()
	PushLayout(t, testLayout(t, false), p.Host+"/web/site:v1")
	if !TagExists(t, reg.Host+"/web/site:v1") {
		t.Error("the push through the proxy did not reach the registry")
	}

	reset := NewFaultProxy(t, reg.Host, Always(IsBlobUpload, ResetAfter(10)))
	reset.Enable()
	req, _ := http.NewRequest(http.MethodPatch, "http://"+reset.Host+"/v2/web/site/blobs/uploads/x", strings.NewReader(strings.Repeat("x", 1000)))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("ResetAfter answered %s", resp.Status)
	}
	if reset.Injected() != 1 {
		t.Errorf("%d resets injected", reset.Injected())
	}

	slow := NewFaultProxy(t, reg.Host, Slow(AnyRequest, 200*time.Millisecond))
	slow.Enable()
	start := time.Now()
	resp, err := http.Get("http://" + slow.Host + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if d := time.Since(start); d < 200*time.Millisecond || resp.StatusCode != http.StatusOK || slow.Injected() != 1 {
		t.Errorf("slow: %s after %s, %d injected", resp.Status, d, slow.Injected())
	}

	for _, tc := range []struct {
		method, path        string
		blob, manifest, tag bool
	}{
		{"PATCH", "/v2/a/blobs/uploads/u", true, false, false},
		{"PUT", "/v2/a/blobs/uploads/u?digest=sha256:1", true, false, false},
		{"POST", "/v2/a/blobs/uploads/", false, false, false},
		{"PUT", "/v2/a/manifests/v1", false, true, true},
		{"PUT", "/v2/a/manifests/sha256:1", false, true, false},
		{"GET", "/v2/a/manifests/v1", false, false, false},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		if IsBlobUpload(r) != tc.blob || IsManifestPut(r) != tc.manifest || IsTagPut(r) != tc.tag || !AnyRequest(r) {
			t.Errorf("%s %s: blob %v manifest %v tag %v", tc.method, tc.path, IsBlobUpload(r), IsManifestPut(r), IsTagPut(r))
		}
	}
}

// recorder keeps the errors reported to it.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// Fatalf records and ends the goroutine: call what may fail through fatal.
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

// fatal runs f on its own goroutine with a recorder and returns what it
// reported.
func fatal(t *testing.T, f func(testing.TB)) []string {
	rec := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(rec)
	}()
	<-done
	return rec.errs
}

func TestLayoutIndex(t *testing.T) {
	t.Parallel()
	if m, err := LayoutIndex(t, testLayout(t, true)).IndexManifest(); err != nil || len(m.Manifests) != 1 {
		t.Errorf("index manifest %+v, %v", m, err)
	}
	dir := testLayout(t, false)
	if errs := fatal(t, func(tb testing.TB) { LayoutIndex(tb, dir) }); len(errs) != 1 || !strings.Contains(errs[0], "not an index") {
		t.Errorf("an image layout: %q", errs)
	}
}

// TestCheckConsistentFindsMissingBlob: a tag naming a deleted blob is an
// error.
func TestCheckConsistentFindsMissingBlob(t *testing.T) {
	t.Parallel()
	reg := New(t)
	PushLayout(t, testLayout(t, true), reg.Host+"/web/site:v1")
	ref, _ := name.ParseReference(reg.Host + "/web/site:v1")
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	img, _ := idx.Image(im.Manifests[0].Digest)
	ls, _ := img.Layers()
	gone, _ := ls[1].Digest()
	req, _ := http.NewRequest(http.MethodDelete, "http://"+reg.Host+"/v2/web/site/blobs/"+gone.String(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE blob: %s", resp.Status)
	}
	var tags map[string]string
	errs := fatal(t, func(tb testing.TB) { tags = CheckConsistent(tb, reg.Host) })
	if len(errs) != 1 || !strings.Contains(errs[0], "names blob "+gone.String()+", which is missing") {
		t.Errorf("errors %q", errs)
	}
	if d, _ := idx.Digest(); tags["web/site:v1"] != d.String() {
		t.Errorf("tags %v", tags)
	}
}

func TestBuffer(t *testing.T) {
	t.Parallel()
	var b Buffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 500 {
				fmt.Fprintf(&b, "%d\n", i)
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 8*500 {
		t.Errorf("%d lines, want %d", n, 8*500)
	}
}

// TestRealRegistry: Debian's docker-registry takes a push and lists it.
func TestRealRegistry(t *testing.T) {
	t.Parallel()
	host := RealRegistry(t)
	PushLayout(t, testLayout(t, true), host+"/library/site:v1")
	if repos := Catalog(t, host); !slices.Equal(repos, []string{"library/site"}) {
		t.Errorf("catalog %q", repos)
	}
	if tags := CheckConsistent(t, host); len(tags) != 1 {
		t.Errorf("tags %v", tags)
	}
}

// TestNothingOutlivesTheTest: once a test's Cleanup has run, none of the
// goroutines the harness started is left. Not parallel: it counts the
// goroutines of the whole process.
func TestNothingOutlivesTheTest(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("harness", func(t *testing.T) {
		ca := NewCA(t)
		ts := NewTokenServer(t, ca, map[string]string{user: password})
		reg := New(t, WithTLS(ca), WithToken(ts))
		PushLayout(t, testLayout(t, true), reg.Host+"/web/site:v1", reg.OptionsAs(user)...)
		plain := New(t, WithHandler(func(h http.Handler) http.Handler { return h }))
		p := NewFaultProxy(t, plain.Host, FirstN(1, IsBlobUpload, Status(http.StatusServiceUnavailable, "")))
		p.Enable()
		PushLayout(t, testLayout(t, false), p.Host+"/web/site:v1", remote.WithTransport(ca.Transport()), remote.WithRetryBackoff(remote.Backoff{Duration: time.Millisecond, Steps: 3}))
		if p.Injected() != 1 {
			t.Errorf("%d faults injected", p.Injected())
		}
		if _, err := exec.LookPath("docker-registry"); err == nil {
			RealRegistry(t)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			var stacks strings.Builder
			pprof.Lookup("goroutine").WriteTo(&stacks, 1)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), stacks.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
