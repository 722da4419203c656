package registry

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gantry-dev/gantry/assemble/progress"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// RetryPolicy bounds how gantry retries a registry request.
type RetryPolicy struct {
	// Attempts is the most tries of one request (default 6).
	Attempts int
	// Base is the first backoff; each next one doubles, with ±25% jitter
	// (default 500ms).
	Base time.Duration
	// MaxWait caps one wait, including a server's Retry-After (default 30s).
	MaxWait time.Duration
	// Budget caps the time one request takes with its retries: no try
	// starts after it has passed (default 2m). Tries count, stalled ones
	// (see Options.IdleTimeout) included, not only the waits between them;
	// so a request ends within Budget plus one try.
	Budget time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Attempts <= 0 {
		p.Attempts = 6
	}
	if p.Base <= 0 {
		p.Base = 500 * time.Millisecond
	}
	if p.MaxWait <= 0 {
		p.MaxWait = 30 * time.Second
	}
	if p.Budget <= 0 {
		p.Budget = 2 * time.Minute
	}
	return p
}

// retryTransport retries 429 and 5xx answers (honouring Retry-After) and
// dropped connections. A request with a body is retried only if the body can
// be replayed (GetBody), and never after a connection dropped mid-upload:
// go-containerregistry then restarts the whole upload from a new session, so
// a registry never assembles a blob from two half-sent bodies.
type retryTransport struct {
	next   http.RoundTripper
	policy RetryPolicy
	log    *slog.Logger
}

func retryable(code int) bool {
	return code == http.StatusTooManyRequests || code == http.StatusRequestTimeout ||
		code == http.StatusInternalServerError || code == http.StatusBadGateway ||
		code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	for attempt := 1; ; attempt++ {
		resp, err := t.next.RoundTrip(req)
		wait, retry := t.decide(req, resp, err, attempt)
		if !retry {
			return resp, err
		}
		wait = min(wait, t.policy.MaxWait)
		if took := time.Since(start); took+wait > t.policy.Budget {
			if err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("%s %s: gave up after %d tries over %s: %s", req.Method, redactURL(req.URL.String()), attempt, took.Round(time.Millisecond), http.StatusText(resp.StatusCode))
		}
		var what string
		if err != nil {
			what = err.Error()
		} else {
			what = resp.Status
		}
		t.log.Warn("retrying", "method", req.Method, "url", redactURL(req.URL.String()), "answer", what, "attempt", attempt, "wait", wait.Round(time.Millisecond))
		if err := sleep(req.Context(), wait); err != nil {
			return nil, err
		}
		if req, err = replay(req); err != nil {
			return nil, err
		}
	}
}

// decide says whether to retry an answer (resp or err) to attempt, and
// after how long. An answer not retried is returned as it is; one retried
// has its body drained and closed.
func (t *retryTransport) decide(req *http.Request, resp *http.Response, err error, attempt int) (time.Duration, bool) {
	last := attempt >= t.policy.Attempts
	hasBody := req.Body != nil && req.Body != http.NoBody
	switch {
	case err != nil:
		if last || hasBody || req.Context().Err() != nil || permanent(err) {
			return 0, false
		}
		return t.backoff(attempt), true
	case retryable(resp.StatusCode):
		if last || (hasBody && req.GetBody == nil) {
			return 0, false
		}
		wait := t.backoff(attempt)
		if ra := retryAfter(resp.Header.Get("Retry-After")); ra > 0 {
			wait = ra
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return wait, true
	}
	return 0, false
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// replay is req again with a fresh body, when it has one.
func replay(req *http.Request) (*http.Request, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, err
	}
	req = req.Clone(req.Context())
	req.Body = body
	return req, nil
}

func (t *retryTransport) backoff(attempt int) time.Duration {
	d := t.policy.Base << (attempt - 1)
	jitter := 0.75 + rand.Float64()/2 //nolint:gosec // jitter, not security
	return time.Duration(float64(d) * jitter)
}

// permanent reports network errors that a retry will not mend: nothing
// listens there, the name does not resolve, or TLS failed (an untrusted
// certificate, or a plain-HTTP server: go-containerregistry then falls back
// to http for a local registry, at once rather than after the retries).
func permanent(err error) bool {
	var dns *net.DNSError
	var rh tls.RecordHeaderError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &dns) && dns.IsNotFound ||
		errors.As(err, &rh) || tlsHint(err, "") != "" ||
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

// logTransport logs each HTTP exchange at debug level, without secrets.
type logTransport struct {
	next http.RoundTripper
	log  *slog.Logger
}

func (t *logTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	attrs := []any{"method", req.Method, "url", redactURL(req.URL.String()), "took", time.Since(start).Round(time.Millisecond)}
	if req.Header.Get("Authorization") != "" {
		scheme, _, _ := strings.Cut(req.Header.Get("Authorization"), " ")
		attrs = append(attrs, "authorization", scheme+" [redacted]")
	}
	if err != nil {
		t.log.Debug("http", append(attrs, "error", err)...)
		return nil, err
	}
	attrs = append(attrs, "status", resp.StatusCode)
	if wa := resp.Header.Get("WWW-Authenticate"); wa != "" {
		attrs = append(attrs, "www-authenticate", wa)
	}
	t.log.Debug("http", attrs...)
	return resp, nil
}

// redactURL hides query values that can carry credentials (token, state).
func redactURL(u string) string { return filterQuery(u, true) }

// stripQuery drops the query values that redactURL hides, keys and all:
// for messages, where "_state=[redacted]" is only noise.
func stripQuery(u string) string { return filterQuery(u, false) }

// filterQuery keeps the query values of u that are safe to show (a digest,
// a mount, a page), and marks the others [redacted] or drops them.
func filterQuery(u string, mark bool) string {
	base, q, ok := strings.Cut(u, "?")
	if !ok {
		return u
	}
	var parts []string
	for _, kv := range strings.Split(q, "&") {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "digest", "mount", "from", "n", "last":
			parts = append(parts, kv)
		default:
			if mark {
				parts = append(parts, k+"=[redacted]")
			}
		}
	}
	if len(parts) == 0 {
		return base
	}
	return base + "?" + strings.Join(parts, "&")
}

// newTransport is the HTTP transport for every registry request: tuned
// buffers, the system roots plus CACert, the idle timeout, retries, debug
// logging, and pings answered once (pingCache). A base transport given in o is used as it is: the idle
// timeout is then its own business.
func newTransport(o Options) (rt, base http.RoundTripper, err error) {
	log := o.Logger
	base = o.Transport
	if base == nil {
		t := remote.DefaultTransport.(*http.Transport).Clone()
		t.WriteBufferSize = 64 << 10
		t.ReadBufferSize = 64 << 10
		// A registry that stops answering, before the headers or in the
		// middle of a body, or stops reading what is sent, fails the request
		// (retried within the policy) instead of hanging the build.
		idle := cmp.Or(o.IdleTimeout, defaultIdleTimeout)
		t.DialContext = idleDialer(t.DialContext, idle)
		// A kept-alive connection is closed before it would time out idle
		// in the pool, so that no request picks one that is about to.
		if t.IdleConnTimeout == 0 || t.IdleConnTimeout > idle/2 {
			t.IdleConnTimeout = idle / 2
		}
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if o.CACert != "" {
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			pem, err := os.ReadFile(o.CACert)
			if err != nil {
				return nil, nil, fmt.Errorf("--ca-cert: %w", err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, nil, fmt.Errorf("--ca-cert %s: no PEM certificate in it", o.CACert)
			}
			t.TLSClientConfig.RootCAs = pool
		}
		if o.Insecure {
			t.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // asked for with --insecure
		}
		base = t
	}
	rt = &retryTransport{next: &logTransport{next: &stallTransport{next: base}, log: log}, policy: o.Retry.withDefaults(), log: log}
	if _, ok := o.Progress.(progress.Nop); !ok {
		rt = &progressTransport{next: rt, progress: o.Progress}
	}
	return newPingCache(&blobTransport{next: rt}), base, nil
}

// Credentials are a user name and password (or token) for one registry,
// given on the command line or in GANTRY_REGISTRY_USER/PASSWORD.
type Credentials struct {
	Registry string // host[:port]; empty means the push destination's
	Username string
	Password string
}

// staticKeychain answers for one registry and defers to the next keychain
// for the others.
type staticKeychain struct {
	creds Credentials
	next  authn.Keychain
}

func (k staticKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if SameRegistry(r.RegistryStr(), k.creds.Registry) {
		return authn.FromConfig(authn.AuthConfig{Username: k.creds.Username, Password: k.creds.Password}), nil
	}
	return k.next.Resolve(r)
}

// Host normalises how a registry is named — a URL as config.json keeps
// it, a bare host, Docker Hub's aliases — to the host go-containerregistry
// uses (index.docker.io for Docker Hub).
func Host(s string) string {
	s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://"), "/")
	s, _, _ = strings.Cut(s, "/")
	if s == "docker.io" || s == "registry-1.docker.io" {
		return name.DefaultRegistry
	}
	return s
}

// SameRegistry reports whether a and b name the same registry.
func SameRegistry(a, b string) bool { return Host(a) == Host(b) }

// HostOf is the registry host of a reference or repository prefix, by
// Docker's rule: a first part with a dot or a colon, or localhost, is a
// host; anything else is on Docker Hub.
func HostOf(ref string) string {
	first, _, _ := strings.Cut(ref, "/")
	if strings.ContainsAny(first, ".:") || first == "localhost" {
		return first
	}
	return name.DefaultRegistry
}

// ConfigKey is how docker's config.json names a registry (Docker Hub has
// its historical URL).
func ConfigKey(reg string) (string, error) {
	r, err := name.NewRegistry(reg)
	if err != nil {
		return "", fmt.Errorf("%q is not a registry host", reg)
	}
	if r.RegistryStr() == name.DefaultRegistry {
		return authn.DefaultAuthKey, nil
	}
	return r.RegistryStr(), nil
}

// tlsHint explains a certificate error from host.
func tlsHint(err error, host string) string {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var tv *tls.CertificateVerificationError
	if errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) || errors.As(err, &tv) {
		return fmt.Sprintf("the TLS certificate of %s is not trusted: pass --ca-cert FILE with its CA, or --insecure", host)
	}
	return ""
}

// progressTransport turns registry answers into progress events: a blob
// the registry has (HEAD 200) or mounted from another repository (201 to a
// POST with mount=).
type progressTransport struct {
	next     http.RoundTripper
	progress progress.Progress
}

func (t *progressTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	path := req.URL.Path
	switch {
	case req.Method == http.MethodHead && resp.StatusCode == http.StatusOK && strings.Contains(path, "/blobs/sha256:"):
		t.progress.Event("blob "+progress.Short(path[strings.LastIndex(path, "/")+1:]), "exists")
	case req.Method == http.MethodPost && resp.StatusCode == http.StatusCreated && req.URL.Query().Get("mount") != "":
		t.progress.Event("blob "+progress.Short(req.URL.Query().Get("mount")), "mounted from "+req.URL.Query().Get("from"))
	}
	return resp, nil
}
