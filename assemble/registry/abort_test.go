package registry

import (
	"context"
	"crypto/rand"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gantry-dev/gantry/assemble/registrytest"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// readNotifier calls read once the handler has read n bytes of a body.
type readNotifier struct {
	io.ReadCloser
	n    int64
	read func()
}

func (r *readNotifier) Read(p []byte) (int, error) {
	k, err := r.ReadCloser.Read(p)
	if r.n -= int64(k); r.n <= 0 {
		r.read()
	}
	return k, err
}

// liveUploads lists the upload sessions distribution keeps in the storage
// directories of t (registrytest.New keeps its storage in one of t's
// temporary directories): an _uploads/ID directory with the session's
// startedat or data file. (Distribution's DELETE itself leaves
// hashstates/sha256/0 behind, written by a Close after the Cancel: no
// session, which GET does not know and upload purging removes.)
func liveUploads(t *testing.T) []string {
	t.Helper()
	var out []string
	root := filepath.Dir(t.TempDir())
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && filepath.Base(filepath.Dir(filepath.Dir(p))) == "_uploads" && (d.Name() == "startedat" || d.Name() == "data") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// (16) A push interrupted in the middle of a streamed layer's PATCH:
// the session is cancelled on CNCF distribution although the location it
// had (its _state) no longer matches what the registry holds.
func TestAbortCancelsInterruptedPatch(t *testing.T) {
	noLeaks(t)
	var once sync.Once
	midPatch := make(chan struct{})
	var patches atomic.Int64
	reg := registrytest.New(t, registrytest.WithHandler(func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPatch {
				patches.Add(1)
				r.Body = &readNotifier{ReadCloser: r.Body, n: 256 << 10, read: func() { once.Do(func() { close(midPatch) }) }}
			}
			h.ServeHTTP(w, r)
		})
	}))
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	repo, err := name.NewRepository(reg.Host + "/web")
	if err != nil {
		t.Fatal(err)
	}
	us := c.NewUploads()
	ctx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	u := us.Open(ctx, repo)
	chunk := make([]byte, 32<<10)
	rand.Read(chunk)
	for i := 0; ; i++ {
		select {
		case <-midPatch:
		default:
			if i > 4096 {
				t.Fatal("128 MiB written, and the registry has not read 256 KiB")
			}
			if _, err := u.Write(chunk); err != nil {
				t.Fatal(err)
			}
			continue
		}
		break
	}
	interrupt() // Ctrl-C: the PATCH is cut short
	for i := 0; i < 4096; i++ {
		if _, err := u.Write(chunk); err != nil {
			break
		}
	}
	u.mu.Lock()
	session := u.loc
	u.mu.Unlock()
	u.Finish(nil) // the build failed
	us.Abort()
	if n := patches.Load(); n != 1 {
		t.Errorf("%d PATCHes, want 1", n)
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get(session)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("the session still answers %s after Abort", resp.Status)
	}
	if live := liveUploads(t); len(live) != 0 {
		t.Errorf("upload sessions left in the registry's storage: %q", live)
	}
	t.Logf("requests: %q", reg.Requests())
	if del := reg.Count(http.MethodDelete, "/v2/web/blobs/uploads/"); del == 0 || strings.Contains(strings.Join(reg.Requests(), " "), "PUT ") {
		t.Errorf("no DELETE, or a PUT: %q", reg.Requests())
	}
}

// (16) A session the registry will not cancel is not silently left: Abort
// says how many there are and why.
func TestAbortReportsSessionsLeft(t *testing.T) {
	noLeaks(t)
	s := &sessionServer{
		patch: func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Location", "/v2/web/blobs/uploads/u1?_state=patched")
			w.WriteHeader(http.StatusAccepted)
		},
		session: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) },
	}
	c, srv := serve(t, s, Options{})
	repo, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://") + "/web")
	if err != nil {
		t.Fatal(err)
	}
	us := c.NewUploads()
	for _, built := range []*v1.Hash{{Algorithm: "sha256", Hex: strings.Repeat("c", 64)}, nil} {
		u := us.Open(context.Background(), repo)
		if _, err := u.Write([]byte("layer")); err != nil {
			t.Fatal(err)
		}
		u.Finish(built) // one kept for Commit, one dropped (cancelled now)
	}
	err = us.Abort()
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "2 upload sessions could not be cancelled") || !strings.Contains(err.Error(), "403 forbidden") || strings.Contains(err.Error(), "_state") {
		t.Errorf("Abort = %v", err)
	}
	if err := us.Abort(); err != nil {
		t.Errorf("a second Abort reports again: %v", err)
	}
}
