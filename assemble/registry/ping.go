package registry

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// go-containerregistry pings a registry (GET /v2/, unauthenticated: https
// first, then http for an insecure one) each time it sets up the
// transport for a repository and scope. A run does that for the push
// check, the base, the registry cache and the push, so pingCache answers
// repeats of a ping from the first answer for a while: 6 of W-small's 26
// requests on a local registry, and as many round trips to a remote one.
// Only the answers a ping is for are kept: 200, a 401 challenge, and an
// https attempt's TLS record error (a plain-HTTP registry).
type pingCache struct {
	next http.RoundTripper
	now  func() time.Time

	mu      sync.Mutex
	answers map[string]pingAnswer // by scheme://host
}

// pingTTL is how long an answer stands: a run's worth of set-ups, not a
// registry's lifetime.
const pingTTL = time.Minute

type pingAnswer struct {
	at     time.Time
	status int
	header http.Header
	body   []byte
	err    error // a TLS handshake with a plain-HTTP registry
}

func newPingCache(next http.RoundTripper) *pingCache {
	return &pingCache{next: next, now: time.Now, answers: map[string]pingAnswer{}}
}

func isPing(req *http.Request) bool {
	return req.Method == http.MethodGet && req.URL.Path == "/v2/" && req.URL.RawQuery == "" && req.Header.Get("Authorization") == ""
}

func (p *pingCache) RoundTrip(req *http.Request) (*http.Response, error) {
	if !isPing(req) {
		return p.next.RoundTrip(req)
	}
	key := req.URL.Scheme + "://" + req.URL.Host
	p.mu.Lock()
	a, ok := p.answers[key]
	p.mu.Unlock()
	if ok && p.now().Sub(a.at) < pingTTL {
		return a.response(req)
	}
	resp, err := p.next.RoundTrip(req)
	var rec tls.RecordHeaderError
	switch {
	case err != nil && errors.As(err, &rec):
		a = pingAnswer{err: err}
	case err != nil:
		return nil, err
	case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized:
		return resp, nil // a failure, asked again next time
	default:
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if rerr != nil {
			return nil, rerr
		}
		a = pingAnswer{status: resp.StatusCode, header: resp.Header, body: body}
	}
	a.at = p.now()
	p.mu.Lock()
	p.answers[key] = a
	p.mu.Unlock()
	return a.response(req)
}

// response is the answer again, as the response to req.
func (a pingAnswer) response(req *http.Request) (*http.Response, error) {
	if a.err != nil {
		return nil, a.err
	}
	return &http.Response{
		Status: strconv.Itoa(a.status) + " " + http.StatusText(a.status), StatusCode: a.status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: a.header.Clone(), Body: io.NopCloser(bytes.NewReader(a.body)), ContentLength: int64(len(a.body)), Request: req,
	}, nil
}
