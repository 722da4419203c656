package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.uber.org/goleak"
)

// sessionServer is a registry's blob-upload endpoint that records what it
// is asked; patch decides how a PATCH ends.
type sessionServer struct {
	mu    sync.Mutex
	calls []string
	patch func(w http.ResponseWriter, r *http.Request)
	// session, when set, answers the session's DELETE and GET (status)
	session func(w http.ResponseWriter, r *http.Request)
}

func (s *sessionServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls = append(s.calls, r.Method+" "+r.URL.RequestURI())
	s.mu.Unlock()
	switch {
	case r.URL.Path == "/v2/":
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodPost:
		w.Header().Set("Location", "/v2/web/blobs/uploads/u1?_state=posted")
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodPatch:
		s.patch(w, r)
	case s.session != nil && (r.Method == http.MethodDelete || r.Method == http.MethodGet):
		s.session(w, r)
	case r.Method == http.MethodPut:
		w.WriteHeader(http.StatusCreated)
	case r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (s *sessionServer) called(prefix string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, c := range s.calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// noLeaks fails t if a goroutine it started outlives it (checked after
// every cleanup, servers included).
func noLeaks(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
}

// serve starts h on loopback and a client for it with o, both closed when
// the test ends.
func serve(t *testing.T, h http.Handler, o Options) (*Client, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c, srv
}

func testUploads(t *testing.T, s *sessionServer) (*Uploads, name.Repository) {
	t.Helper()
	c, srv := serve(t, s, Options{})
	repo, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://") + "/web")
	if err != nil {
		t.Fatal(err)
	}
	return c.NewUploads(), repo
}

// A PATCH that fails after part of the stream: the writer sees the
// failure (no race between the PATCH goroutine and Write), the session is
// cancelled, nothing is committed and no goroutine is left.
func TestUploadPatchFailsPartway(t *testing.T) {
	noLeaks(t)
	s := &sessionServer{patch: func(w http.ResponseWriter, r *http.Request) {
		io.CopyN(io.Discard, r.Body, 256<<10)
		w.WriteHeader(http.StatusInternalServerError)
	}}
	us, repo := testUploads(t, s)
	u := us.Open(context.Background(), repo)
	chunk := make([]byte, 32<<10)
	rand.Read(chunk)
	var werr error
	for i := 0; i < 4096 && werr == nil; i++ { // up to 128 MiB: the failure must stop it long before
		_, werr = u.Write(chunk)
	}
	if werr == nil {
		t.Fatal("writes kept succeeding after the PATCH failed")
	}
	d := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}
	u.Finish(&d)
	us.Commit(context.Background(), repo)
	if n := us.Committed(); n != 0 {
		t.Errorf("%d uploads committed after a failed PATCH", n)
	}
	if got := s.called("PUT"); len(got) != 0 {
		t.Errorf("a failed stream was committed: %q", got)
	}
	if got := s.called("DELETE"); len(got) != 1 || !strings.Contains(got[0], "_state=posted") {
		t.Errorf("session not cancelled at its location: %q", got)
	}
}

// A whole stream is committed at the location the PATCH answered with.
// Finish does not wait for that answer (a registry may sync the blob to
// disk first): Commit does.
func TestUploadCommitsAtLatestLocation(t *testing.T) {
	noLeaks(t)
	var got bytes.Buffer
	received, release := make(chan struct{}), make(chan struct{})
	s := &sessionServer{patch: func(w http.ResponseWriter, r *http.Request) {
		io.Copy(&got, r.Body)
		close(received)
		<-release
		w.Header().Set("Location", "/v2/web/blobs/uploads/u1?_state=patched")
		w.WriteHeader(http.StatusAccepted)
	}}
	us, repo := testUploads(t, s)
	u := us.Open(context.Background(), repo)
	want := bytes.Repeat([]byte("layer"), 10000)
	if _, err := u.Write(want); err != nil {
		t.Fatal(err)
	}
	d := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("b", 64)}
	finished := make(chan struct{})
	go func() { u.Finish(&d); close(finished) }()
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		t.Error("Finish waited for the registry's answer to the PATCH")
	}
	<-received
	close(release)
	<-finished
	us.Commit(context.Background(), repo)
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("the registry got %d bytes, want %d", got.Len(), len(want))
	}
	puts := s.called("PUT")
	if us.Committed() != 1 || len(puts) != 1 || !strings.Contains(puts[0], "_state=patched") || !strings.Contains(puts[0], "digest=sha256%3A"+d.Hex) {
		t.Errorf("committed %d; PUTs %q", us.Committed(), puts)
	}
	us.Abort()
	if del := s.called("DELETE"); len(del) != 0 {
		t.Errorf("a committed session was cancelled: %q", del)
	}
}

// A layer that fails to build cancels its session at the latest location.
func TestUploadBuildFailureCancels(t *testing.T) {
	noLeaks(t)
	s := &sessionServer{patch: func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		if err == nil {
			w.Header().Set("Location", "/v2/web/blobs/uploads/u1?_state=patched")
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.WriteHeader(http.StatusBadRequest)
	}}
	us, repo := testUploads(t, s)
	u := us.Open(context.Background(), repo)
	if _, err := u.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	u.Finish(nil)
	if del := s.called("DELETE"); len(del) != 1 {
		t.Errorf("session of a failed layer not cancelled: %q", del)
	}
}

func TestHost(t *testing.T) {
	for in, want := range map[string]string{
		"docker.io": "index.docker.io", "https://index.docker.io/v1/": "index.docker.io", "registry-1.docker.io": "index.docker.io",
		"ghcr.io": "ghcr.io", "http://localhost:5000/": "localhost:5000", "127.0.0.1:5000": "127.0.0.1:5000",
	} {
		if got := Host(in); got != want {
			t.Errorf("Host(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"ghcr.io/acme/app": "ghcr.io", "acme/app": "index.docker.io", "localhost/x": "localhost", "127.0.0.1:5000/x": "127.0.0.1:5000"} {
		if got := HostOf(in); got != want {
			t.Errorf("HostOf(%q) = %q, want %q", in, got, want)
		}
	}
}
