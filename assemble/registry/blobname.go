package registry

import (
	"cmp"
	"context"
	"net/http"
	"reflect"
	"strings"
	"sync"
)

// maxSessions bounds the blobs and sessions blobTransport remembers: one
// abandoned (no POST after the HEAD, no PUT or DELETE to end the session)
// is forgotten eventually.
const maxSessions = 1024

// blobKey is the request context key under which blobTransport marks a
// request with the blob it is for.
type blobKey struct{}

// blobTransport knows which blob each upload session carries, so that an
// error on any of the session's requests can name it (Classify). The
// digest is in the URL of a blob's HEAD, of a mount POST (?mount=) and of
// the final PUT (?digest=), but not in a plain POST or the PATCHes, which
// go to the Location the POST answered. go-containerregistry asks the HEAD
// and the POST of one upload with the same context, so a HEAD answered
// 404 says which blob the next POST with that context starts; the session
// then keeps it from Location to Location. Each request for a known blob
// is marked with it (its context, which a transport.Error's Request
// keeps), and its error wrapped in a blobError. Without such a match the
// blob is only not named.
type blobTransport struct {
	next http.RoundTripper

	mu       sync.Mutex
	missing  map[context.Context]string // a HEAD's context → the blob it did not find
	sessions map[string]string          // upload session path → blob
}

func (t *blobTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	blob := t.blobOf(req)
	if blob == "" {
		return t.next.RoundTrip(req)
	}
	req = req.WithContext(context.WithValue(ctx, blobKey{}, blob))
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, &blobError{blob: blob, err: err}
	}
	t.track(ctx, req, resp, blob)
	return resp, nil
}

// blobOf is the blob req is for, if known.
func (t *blobTransport) blobOf(req *http.Request) string {
	if b := blobFromRequest(req); b != "" {
		return b
	}
	if !strings.Contains(req.URL.Path, "/blobs/uploads/") {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if b, ok := t.sessions[req.URL.Path]; ok {
		return b
	}
	if ctx := req.Context(); req.Method == http.MethodPost && reflect.TypeOf(ctx).Comparable() {
		return t.missing[ctx]
	}
	return ""
}

// track follows a session from the Location of each answer that keeps it
// open, and forgets it when it ends.
func (t *blobTransport) track(ctx context.Context, req *http.Request, resp *http.Response, blob string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sessions == nil {
		t.sessions, t.missing = map[string]string{}, map[context.Context]string{}
	}
	uploads := strings.Contains(req.URL.Path, "/blobs/uploads/")
	switch {
	case req.Method == http.MethodHead && resp.StatusCode == http.StatusNotFound:
		if reflect.TypeOf(ctx).Comparable() { // as every context of the standard library
			bounded(t.missing)
			t.missing[ctx] = blob
		}
	case uploads && resp.StatusCode == http.StatusAccepted:
		if req.Method == http.MethodPost {
			delete(t.missing, ctx)
		}
		loc, err := req.URL.Parse(resp.Header.Get("Location"))
		if err != nil || resp.Header.Get("Location") == "" {
			return
		}
		if loc.Path != req.URL.Path {
			delete(t.sessions, req.URL.Path)
		}
		bounded(t.sessions)
		t.sessions[loc.Path] = blob
	case uploads && (req.Method == http.MethodDelete || (req.Method == http.MethodPut && resp.StatusCode < 300)):
		delete(t.sessions, req.URL.Path)
	}
}

// bounded makes room in m for one more entry.
func bounded[K comparable](m map[K]string) {
	if len(m) < maxSessions {
		return
	}
	for k := range m {
		delete(m, k)
		return
	}
}

// blobError is a failed request for a blob; its message is the request's.
type blobError struct {
	blob string
	err  error
}

func (e *blobError) Error() string { return e.err.Error() }
func (e *blobError) Unwrap() error { return e.err }

// Timeout and Temporary answer as the wrapped error itself would to the
// checks of net/url and go-containerregistry, which do not unwrap.
func (e *blobError) Timeout() bool {
	t, ok := e.err.(interface{ Timeout() bool })
	return ok && t.Timeout()
}

func (e *blobError) Temporary() bool {
	t, ok := e.err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// blobFromRequest is the blob a request was for, when known: marked by
// blobTransport, or in its URL (a blob's own URL, ?digest=, ?mount=).
func blobFromRequest(req *http.Request) string {
	if req == nil {
		return ""
	}
	if b, ok := req.Context().Value(blobKey{}).(string); ok {
		return b
	}
	if _, d, ok := strings.Cut(req.URL.Path, "/blobs/sha256:"); ok && !strings.Contains(d, "/") {
		return "sha256:" + d
	}
	if !strings.Contains(req.URL.Path, "/blobs/uploads/") {
		return ""
	}
	q := req.URL.Query()
	return cmp.Or(q.Get("digest"), q.Get("mount"))
}
