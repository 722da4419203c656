package registry

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/assemble/registrytest"
	"github.com/google/go-containerregistry/pkg/name"
)

// A run pings a registry once: the push check, the base and the push set
// up transports for several repositories, and the registry sees one GET
// /v2/ (an insecure one: one https attempt, then one http ping).
func TestPingOncePerRun(t *testing.T) {
	noLeaks(t)
	var pings atomic.Int64
	reg := registrytest.New(t, registrytest.WithHandler(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v2/" {
				pings.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	}))
	c, err := New(Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	ctx := context.Background()
	for _, r := range []string{"web", "api", "web"} {
		repo, err := name.NewRepository(reg.Host+"/"+r, c.NameOptions()...)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.CheckPush(ctx, repo); err != nil {
			t.Fatal(err)
		}
	}
	if n := pings.Load(); n != 1 {
		t.Errorf("the registry was pinged %d times, want 1", n)
	}
}

// countingRT answers pings: https with a TLS record error (a plain-HTTP
// registry), http with a 401 challenge.
type countingRT struct {
	https, http atomic.Int64
	status      int // of the http pings (default 401)
}

func (c *countingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "https" {
		c.https.Add(1)
		return nil, tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}
	}
	c.http.Add(1)
	h := http.Header{"Www-Authenticate": {`Bearer realm="http://auth/token",service="reg"`}}
	return &http.Response{StatusCode: cmp.Or(c.status, http.StatusUnauthorized), Header: h, Body: io.NopCloser(strings.NewReader("{}")), Request: req}, nil
}

// The ping answers stand for pingTTL, then the registry is asked again;
// requests other than pings, and pings with credentials, always go out.
func TestPingCache(t *testing.T) {
	next := &countingRT{}
	p := newPingCache(next)
	now := time.Unix(1000, 0)
	p.now = func() time.Time { return now }
	ping := func(scheme string) (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodGet, scheme+"://reg.example/v2/", nil)
		return p.RoundTrip(req)
	}
	for range 3 {
		if _, err := ping("https"); !errors.As(err, new(tls.RecordHeaderError)) {
			t.Fatalf("https ping: %v, want the TLS record error", err)
		}
		resp, err := ping("http")
		if err != nil || resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
			t.Fatalf("http ping: %v %v", resp, err)
		}
		if b, _ := io.ReadAll(resp.Body); string(b) != "{}" {
			t.Errorf("body %q", b)
		}
	}
	if next.https.Load() != 1 || next.http.Load() != 1 {
		t.Errorf("sent %d https and %d http pings, want 1 each", next.https.Load(), next.http.Load())
	}
	now = now.Add(pingTTL)
	ping("http")
	if next.http.Load() != 2 {
		t.Errorf("after pingTTL: %d http pings, want 2", next.http.Load())
	}
	for _, req := range []*http.Request{
		mustRequest(t, http.MethodGet, "http://reg.example/v2/web/tags/list", ""),
		mustRequest(t, http.MethodGet, "http://reg.example/v2/", "Bearer token"),
	} {
		p.RoundTrip(req)
	}
	if next.http.Load() != 4 {
		t.Errorf("%d requests went out, want the 2 that are not bare pings too", next.http.Load()-2)
	}
	// a failing answer is not kept
	now = now.Add(pingTTL)
	next.status = http.StatusServiceUnavailable
	for range 2 {
		if resp, err := ping("http"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("ping of a failing registry: %v %v", resp, err)
		}
	}
	if next.http.Load() != 6 {
		t.Errorf("a 503 was answered from the cache: %d pings sent, want 6", next.http.Load())
	}
}

func mustRequest(t *testing.T, method, url, auth string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return req
}
