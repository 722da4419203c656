package assemble

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/sirupsen/logrus"
)

// testRegistry is CNCF distribution, in process, on 127.0.0.1, with
// filesystem storage, counting the requests it serves.
type testRegistry struct {
	host string
	mu   sync.Mutex
	reqs []string // "METHOD path?query"
}

func newTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	logrus.SetOutput(io.Discard)
	cfg := &configuration.Configuration{}
	cfg.Storage = configuration.Storage{
		"filesystem": configuration.Parameters{"rootdirectory": t.TempDir()},
		"delete":     configuration.Parameters{"enabled": true},
	}
	cfg.Log.AccessLog.Disabled = true
	cfg.HTTP.Headers = http.Header{"X-Content-Type-Options": []string{"nosniff"}}
	app := handlers.NewApp(context.Background(), cfg)
	r := &testRegistry{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		q := req.Method + " " + req.URL.RequestURI()
		if rg := req.Header.Get("Range"); rg != "" {
			q += " range=" + rg
		}
		r.reqs = append(r.reqs, q)
		r.mu.Unlock()
		app.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

// reset forgets the requests counted so far.
func (r *testRegistry) reset() {
	r.mu.Lock()
	r.reqs = nil
	r.mu.Unlock()
}

// count returns how many requests had method and contained every part.
func (r *testRegistry) count(method string, parts ...string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
next:
	for _, q := range r.reqs {
		if !strings.HasPrefix(q, method+" ") {
			continue
		}
		for _, p := range parts {
			if !strings.Contains(q, p) {
				continue next
			}
		}
		n++
	}
	return n
}

func (r *testRegistry) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reqs...)
}
