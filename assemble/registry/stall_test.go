package registry

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// stallServer answers /v2/ and stalls every manifest GET in the way stall
// says, until the client gives up; it counts the manifest GETs.
type stallServer struct {
	stall func(w http.ResponseWriter, r *http.Request)
	gets  atomic.Int64
}

func (s *stallServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v2/" {
		w.WriteHeader(http.StatusOK)
		return
	}
	s.gets.Add(1)
	s.stall(w, r)
}

// stallBeforeHeaders reads the request and never answers.
func stallBeforeHeaders(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

// stallMidBody sends the headers and part of a manifest, then nothing.
func stallMidBody(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	w.Header().Set("Content-Length", "1000")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, `{"schemaVersion": 2, `)
	w.(http.Flusher).Flush()
	<-r.Context().Done()
}

// getStalled reads a manifest from a registry that stalls, with a 200ms
// idle timeout; the context is only a guard against hanging.
func getStalled(t *testing.T, stall func(http.ResponseWriter, *http.Request), retry RetryPolicy) (*stallServer, error) {
	t.Helper()
	s := &stallServer{stall: stall}
	c, srv := serve(t, s, Options{IdleTimeout: 200 * time.Millisecond, Retry: retry})
	ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://") + "/web:latest")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = c.Get(ctx, ref, nil)
	if err == nil {
		t.Fatal("reading a manifest from a stalled registry succeeded")
	}
	if ctx.Err() != nil {
		t.Fatalf("still waiting for a stalled registry after 20s: %v", err)
	}
	return s, err
}

func checkStallError(t *testing.T, err error, want string) {
	t.Helper()
	t.Log(err)
	var re *Error
	if !errors.As(err, &re) {
		t.Errorf("not a registry error: %T %v", err, err)
	}
	for _, w := range []string{want, "; raise --registry-timeout or GANTRY_REGISTRY_TIMEOUT"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
}

// (19) A registry that takes the request and never answers: every try ends
// after the idle timeout, retried up to the attempts, then fails naming the
// registry and what stalled.
func TestStallBeforeHeadersFailsAfterAttempts(t *testing.T) {
	noLeaks(t)
	s, err := getStalled(t, stallBeforeHeaders, RetryPolicy{Attempts: 3, Base: 10 * time.Millisecond, Budget: time.Minute})
	// Go's transport itself tries a GET again once when a kept-alive
	// connection (the one /v2/ was asked on) fails before the answer.
	if n := s.gets.Load(); n != 3 && n != 4 {
		t.Errorf("%d tries, want 3 (the attempts), or 4", n)
	}
	checkStallError(t, err, "for 200ms while receiving the answer to GET /v2/web/manifests/latest")
}

// (19) Stalled tries count against the retry budget: with a budget of
// three idle timeouts, no try starts after it however many attempts are
// left (four at most: Go's transport may try a GET again once, as above).
func TestStallBeforeHeadersFailsWithinBudget(t *testing.T) {
	noLeaks(t)
	s, err := getStalled(t, stallBeforeHeaders, RetryPolicy{Attempts: 100, Base: 10 * time.Millisecond, Budget: 600 * time.Millisecond})
	if n := s.gets.Load(); n < 1 || n > 4 {
		t.Errorf("%d tries within a budget of 600ms with a 200ms idle timeout", n)
	}
	checkStallError(t, err, "no answer from 127.0.0.1:")
}

// (19) A registry that sends the headers and part of the body, then
// nothing: the read fails after the idle timeout (a body is not retried).
func TestStallMidBodyFails(t *testing.T) {
	noLeaks(t)
	s, err := getStalled(t, stallMidBody, RetryPolicy{Attempts: 3, Base: 10 * time.Millisecond, Budget: time.Minute})
	if n := s.gets.Load(); n < 1 || n > 3 {
		t.Errorf("%d tries", n)
	}
	checkStallError(t, err, "for 200ms while receiving the body of GET /v2/web/manifests/latest")
}

// The idle timeout is about bytes not moving, not about how long a request
// takes: a body trickling in for longer than it is read whole.
func TestIdleTimeoutSparesSlowAnswers(t *testing.T) {
	noLeaks(t)
	body := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}`
	c, srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return
		}
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(http.StatusOK)
		for i := 0; i < len(body); i += len(body) / 8 {
			time.Sleep(50 * time.Millisecond)
			fmt.Fprint(w, body[i:min(i+len(body)/8, len(body))])
			w.(http.Flusher).Flush()
		}
	}), Options{IdleTimeout: 200 * time.Millisecond})
	ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://") + "/web:latest")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(context.Background(), ref, nil); err != nil {
		t.Fatalf("a slow but moving answer failed: %v", err)
	}
}

// (19) A registry that stops reading a streamed layer: the writer's
// PATCH fails after the idle timeout instead of blocking the build.
func TestStallWhileSendingFailsTheStream(t *testing.T) {
	noLeaks(t)
	release := make(chan struct{})
	s := &sessionServer{patch: func(w http.ResponseWriter, r *http.Request) {
		select { // reads nothing; the connection's buffers fill up
		case <-r.Context().Done():
		case <-release:
		}
	}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // before srv.Close
	c, err := New(Options{IdleTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	repo, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://") + "/web")
	if err != nil {
		t.Fatal(err)
	}
	us := c.NewUploads()
	u := us.Open(context.Background(), repo)
	chunk := make([]byte, 64<<10)
	deadline := time.Now().Add(20 * time.Second)
	var werr error
	for werr == nil && time.Now().Before(deadline) {
		_, werr = u.Write(chunk)
	}
	if werr == nil {
		t.Fatal("writes to a registry that reads nothing kept succeeding for 20s")
	}
	t.Log(werr)
	if !strings.Contains(werr.Error(), "no answer from "+repo.RegistryStr()+" for 200ms while") || !strings.Contains(werr.Error(), "PATCH /v2/web/blobs/uploads/u1") {
		t.Errorf("error %q does not say what stalled", werr)
	}
	u.Finish(nil)
}

// (19) The same over TLS and HTTP/2, where one connection carries the
// requests as streams.
func TestStallOverHTTP2(t *testing.T) {
	noLeaks(t)
	for _, stall := range []func(http.ResponseWriter, *http.Request){stallBeforeHeaders, stallMidBody} {
		var notH2 atomic.Int64
		s := &stallServer{stall: func(w http.ResponseWriter, r *http.Request) {
			if r.ProtoMajor != 2 {
				notH2.Add(1)
			}
			stall(w, r)
		}}
		srv := httptest.NewUnstartedServer(s)
		srv.EnableHTTP2 = true
		srv.StartTLS()
		t.Cleanup(srv.Close)
		ca := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := New(Options{IdleTimeout: 200 * time.Millisecond, CACert: ca, Retry: RetryPolicy{Attempts: 2, Base: 10 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.CloseIdleConnections)
		ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "https://") + "/web:latest")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err = c.Get(ctx, ref, nil)
		hung := ctx.Err()
		cancel()
		if err == nil || hung != nil {
			t.Fatalf("a stalled registry: %v", err)
		}
		checkStallError(t, err, "for 200ms while receiving the")
		if n := s.gets.Load(); n < 1 || n > 2 || notH2.Load() != 0 {
			t.Errorf("%d tries, %d of them not over HTTP/2", n, notH2.Load())
		}
	}
}
