package registrytest

import (
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// FaultProxy stands on 127.0.0.1 in front of a registry and, while
// enabled, lets its rule answer requests with faults; everything else is
// forwarded unchanged (Host included, so the registry's Location headers
// name the proxy). It starts disabled, so a test can first do a
// fault-free run through it.
type FaultProxy struct {
	Host string // host:port of the proxy, plain HTTP

	on       atomic.Bool
	injected atomic.Int64
}

// Rule decides what the proxy does with a request while enabled: it
// returns true when it answered the request itself (a fault), false to
// forward it. A rule calls p.Inject for each fault it injects.
type Rule func(p *FaultProxy, w http.ResponseWriter, r *http.Request) bool

// Match picks the requests a rule applies to.
type Match func(*http.Request) bool

// Fault answers a request instead of the registry.
type Fault func(w http.ResponseWriter, r *http.Request)

// NewFaultProxy starts a proxy to the plain-HTTP registry at upstream
// (host:port) that applies rule while enabled. An unreachable upstream
// gives 502.
func NewFaultProxy(t testing.TB, upstream string, rule Rule) *FaultProxy {
	t.Helper()
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: upstream})
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) { w.WriteHeader(http.StatusBadGateway) }
	p := &FaultProxy{}
	p.Host = Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.on.Load() && rule(p, w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	}), nil)
	return p
}

// Enable turns the faults on.
func (p *FaultProxy) Enable() { p.on.Store(true) }

// Disable turns the faults off: every request is forwarded.
func (p *FaultProxy) Disable() { p.on.Store(false) }

// Inject counts one fault injected.
func (p *FaultProxy) Inject() { p.injected.Add(1) }

// Injected is how many faults were injected.
func (p *FaultProxy) Injected() int { return int(p.injected.Load()) }

// IsBlobUpload matches the PATCH and PUT requests of blob uploads.
func IsBlobUpload(r *http.Request) bool {
	return (r.Method == http.MethodPatch || r.Method == http.MethodPut) && strings.Contains(r.URL.Path, "/blobs/uploads/")
}

// IsManifestPut matches manifest PUTs, by digest or by tag.
func IsManifestPut(r *http.Request) bool {
	return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/")
}

// IsTagPut matches manifest PUTs by tag.
func IsTagPut(r *http.Request) bool {
	return IsManifestPut(r) && !strings.Contains(r.URL.Path, "/manifests/sha256:")
}

// AnyRequest matches every request.
func AnyRequest(*http.Request) bool { return true }

// Method matches the requests with method.
func Method(method string) Match {
	return func(r *http.Request) bool { return r.Method == method }
}

// FirstN injects fault into the first n requests that match accepts.
func FirstN(n int, match Match, fault Fault) Rule {
	var seen atomic.Int64
	return func(p *FaultProxy, w http.ResponseWriter, r *http.Request) bool {
		if !match(r) || seen.Add(1) > int64(n) {
			return false
		}
		p.Inject()
		fault(w, r)
		return true
	}
}

// Always injects fault into every request that match accepts.
func Always(match Match, fault Fault) Rule {
	return func(p *FaultProxy, w http.ResponseWriter, r *http.Request) bool {
		if !match(r) {
			return false
		}
		p.Inject()
		fault(w, r)
		return true
	}
}

// Slow delays every request that match accepts by d (less if the client
// gives up first), then forwards it.
func Slow(match Match, d time.Duration) Rule {
	return func(p *FaultProxy, w http.ResponseWriter, r *http.Request) bool {
		if match(r) {
			p.Inject()
			timer := time.NewTimer(d)
			defer timer.Stop()
			select {
			case <-timer.C:
			case <-r.Context().Done():
			}
		}
		return false
	}
}

// Status answers code with a short text body, and a Retry-After header
// when retryAfter is set, after draining the request body, as a registry
// behind a load balancer would.
func Status(code int, retryAfter string) Fault {
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(code)
		io.WriteString(w, http.StatusText(code))
	}
}

// ResetAfter reads n bytes of the request body, then drops the connection
// with a TCP reset: a connection lost mid-upload.
func ResetAfter(n int64) Fault {
	return func(w http.ResponseWriter, r *http.Request) {
		io.CopyN(io.Discard, r.Body, n)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(http.ErrAbortHandler) // closes the connection all the same
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		conn.Close()
	}
}
