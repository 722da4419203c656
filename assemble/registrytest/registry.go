package registrytest

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/distribution/distribution/v3/configuration"
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd" // WithHtpasswd
	_ "github.com/distribution/distribution/v3/registry/auth/token"    // WithToken
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"
)

// Registry is CNCF distribution serving in process on 127.0.0.1 with
// filesystem storage in a temporary directory (deletes enabled), started
// by New and stopped in the test's Cleanup. It records every request it
// serves as "METHOD request-uri", followed by " range=VALUE" for a range
// request and " tls" for one that came over TLS.
type Registry struct {
	Host string // 127.0.0.1:PORT
	CA   *CA    // the CA of its certificate; nil for plain HTTP

	users map[string]string // user → password, for OptionsAs
	tr    *http.Transport

	mu   sync.Mutex
	reqs []string
}

// Option configures New.
type Option func(*options)

type options struct {
	ca       *CA
	htpasswd map[string]string
	token    *TokenServer
	wrap     []func(http.Handler) http.Handler
}

// WithTLS serves over TLS with a server certificate from ca; a nil ca
// leaves the registry on plain HTTP.
func WithTLS(ca *CA) Option { return func(o *options) { o.ca = ca } }

// WithHtpasswd turns on Basic auth for users (name → password), checked
// against a bcrypt htpasswd file.
func WithHtpasswd(users map[string]string) Option {
	return func(o *options) { o.htpasswd = users }
}

// WithToken turns on Bearer token auth with ts as the token server: the
// registry trusts tokens signed by a certificate of ts's CA.
func WithToken(ts *TokenServer) Option { return func(o *options) { o.token = ts } }

// WithHandler wraps the registry's handler in wrap (inside the request
// recording: what wrap answers itself is recorded too). Several wrap in
// order, the first outermost.
func WithHandler(wrap func(http.Handler) http.Handler) Option {
	return func(o *options) { o.wrap = append(o.wrap, wrap) }
}

// New starts a registry configured by opts.
func New(t testing.TB, opts ...Option) *Registry {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	cfg := &configuration.Configuration{}
	cfg.Storage = configuration.Storage{
		"filesystem":  configuration.Parameters{"rootdirectory": t.TempDir()},
		"delete":      configuration.Parameters{"enabled": true},
		"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}}, // no goroutine left running
	}
	cfg.Log.AccessLog.Disabled = true
	cfg.Catalog.MaxEntries = 1000
	cfg.HTTP.Secret = "registrytest-secret"
	r := &Registry{CA: o.ca, users: map[string]string{}}
	switch {
	case o.htpasswd != nil && o.token != nil:
		t.Fatal("registrytest: WithHtpasswd and WithToken exclude each other")
	case o.htpasswd != nil:
		cfg.Auth = htpasswdAuth(t, o.htpasswd)
		for u, p := range o.htpasswd {
			r.users[u] = p
		}
	case o.token != nil:
		cfg.Auth = configuration.Auth{"token": configuration.Parameters{
			"realm": o.token.Realm, "service": o.token.Service, "issuer": o.token.Issuer, "rootcertbundle": o.token.CA.File,
		}}
		for u, p := range o.token.users {
			r.users[u] = p
		}
	}
	// distribution logs through logrus's standard logger only
	logrus.SetOutput(io.Discard)
	app := handlers.NewApp(context.Background(), cfg)
	t.Cleanup(func() { // runs after the server is closed
		app.Shutdown()
		closeEvents(app)
	})
	var h http.Handler = app
	for i := len(o.wrap) - 1; i >= 0; i-- {
		h = o.wrap[i](h)
	}
	r.Host = Serve(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		q := req.Method + " " + req.URL.RequestURI()
		if rg := req.Header.Get("Range"); rg != "" {
			q += " range=" + rg
		}
		if req.TLS != nil {
			q += " tls"
		}
		r.mu.Lock()
		r.reqs = append(r.reqs, q)
		r.mu.Unlock()
		h.ServeHTTP(w, req)
	}), o.ca)
	r.tr = o.ca.Transport()
	t.Cleanup(r.tr.CloseIdleConnections)
	return r
}

// closeEvents stops the notification broadcaster that handlers.NewApp
// starts and App.Shutdown leaves running (distribution v3.1: one goroutine
// per App, with no exported way to stop it). If distribution changes the
// field, nothing is closed, and TestNothingOutlivesTheTest says so.
func closeEvents(app *handlers.App) {
	f := reflect.ValueOf(app).Elem().FieldByName("events")
	if !f.IsValid() || f.Kind() != reflect.Struct {
		return
	}
	if f = f.FieldByName("sink"); !f.IsValid() || !f.CanAddr() {
		return
	}
	sink := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Interface()
	if c, ok := sink.(interface{ Close() error }); ok {
		c.Close()
	}
}

func htpasswdAuth(t testing.TB, users map[string]string) configuration.Auth {
	t.Helper()
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, u := range names {
		h, err := bcrypt.GenerateFromPassword([]byte(users[u]), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	file := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return configuration.Auth{"htpasswd": configuration.Parameters{"realm": "registrytest", "path": file}}
}

// Serve starts h on 127.0.0.1, over TLS with a server certificate from ca
// when ca is set, closes it in t's Cleanup, and returns its host:port.
// The server's own error log (refused handshakes) is discarded.
func Serve(t testing.TB, h http.Handler, ca *CA) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if ca != nil {
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.ServerCert(t)}, MinVersion: tls.VersionTLS12}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	_, host, _ := strings.Cut(srv.URL, "://")
	return host
}

// Options are the remote options that reach r anonymously: a transport
// that trusts r's CA.
func (r *Registry) Options() []remote.Option {
	return []remote.Option{remote.WithTransport(r.tr)}
}

// OptionsAs are Options with the Basic credentials of user, one of the
// users given to WithHtpasswd or to r's token server. An unknown user is
// a mistake in the test: OptionsAs panics.
func (r *Registry) OptionsAs(user string) []remote.Option {
	pw, ok := r.users[user]
	if !ok {
		panic(fmt.Sprintf("registrytest: %s has no user %q", r.Host, user))
	}
	return append(r.Options(), remote.WithAuth(&authn.Basic{Username: user, Password: pw}))
}

// Requests are the requests served so far (since the last Reset), in the
// order they arrived.
func (r *Registry) Requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reqs...)
}

// Count is how many requests had method ("" for any) and contained every
// one of parts.
func (r *Registry) Count(method string, parts ...string) int {
	n := 0
next:
	for _, q := range r.Requests() {
		if method != "" && !strings.HasPrefix(q, method+" ") {
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

// Writes is how many PUT and PATCH requests (blob data, manifests, tags)
// the registry served.
func (r *Registry) Writes() int { return r.Count(http.MethodPut) + r.Count(http.MethodPatch) }

// Reset forgets the requests recorded so far.
func (r *Registry) Reset() {
	r.mu.Lock()
	r.reqs = nil
	r.mu.Unlock()
}
