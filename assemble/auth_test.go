package assemble_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/auth/token"
	"github.com/gantry-dev/gantry/assemble"
	"github.com/gantry-dev/gantry/assemble/registry"
	"github.com/gantry-dev/gantry/assemble/sink"
	"github.com/gantry-dev/gantry/assemble/spec"
	"github.com/gantry-dev/gantry/layers"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

const (
	testUser     = "ci-bot"
	testPassword = "pw-7Qx!d9-never-printed"
)

// tokenServer is a Docker token server (the distribution token spec): it
// checks Basic credentials and issues ES256 JWTs whose x5c header holds a
// signing certificate from the test CA, granting each user the actions it
// may do on any repository.
type tokenServer struct {
	url     string // the realm
	mu      sync.Mutex
	issued  []string // "user scope..." per token issued
	denied  int
	tokens  []string
	allowed map[string][]string // user → actions
}

func newTokenServer(t *testing.T, ca *testCA, passwords map[string]string, allowed map[string][]string) *tokenServer {
	t.Helper()
	signing, cert := ca.issue(t, "gantry test token signer", false)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: signing.PrivateKey},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("x5c", []string{base64.StdEncoding.EncodeToString(cert.Raw)}))
	if err != nil {
		t.Fatal(err)
	}
	ts := &tokenServer{allowed: allowed}
	host := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			http.Error(w, "TLS only", http.StatusBadRequest)
			return
		}
		user, pw, ok := r.BasicAuth()
		if !ok || passwords[user] == "" || passwords[user] != pw {
			ts.mu.Lock()
			ts.denied++
			ts.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"wrong user name or password"}]}`))
			return
		}
		if r.URL.Query().Get("service") != "test" {
			http.Error(w, "unknown service", http.StatusBadRequest)
			return
		}
		var access []*token.ResourceActions
		for _, scope := range r.URL.Query()["scope"] {
			for _, s := range strings.Fields(scope) {
				typ, rest, ok1 := strings.Cut(s, ":")
				i := strings.LastIndex(rest, ":")
				if !ok1 || i < 0 {
					continue
				}
				var grant []string
				for _, a := range strings.Split(rest[i+1:], ",") {
					if slices.Contains(ts.allowed[user], a) {
						grant = append(grant, a)
					}
				}
				access = append(access, &token.ResourceActions{Type: typ, Name: rest[:i], Actions: grant})
			}
		}
		jti := make([]byte, 8)
		rand.Read(jti)
		now := time.Now()
		claims := token.ClaimSet{
			Issuer: "test-issuer", Subject: user, Audience: token.AudienceList{"test"},
			Expiration: now.Add(5 * time.Minute).Unix(), NotBefore: now.Add(-time.Second).Unix(), IssuedAt: now.Unix(),
			JWTID: hex.EncodeToString(jti), Access: access,
		}
		raw, err := jwt.Signed(signer).Claims(claims).Serialize()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		ts.mu.Lock()
		ts.issued = append(ts.issued, user+" "+strings.Join(r.URL.Query()["scope"], " "))
		ts.tokens = append(ts.tokens, raw)
		ts.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"token": raw, "access_token": raw, "expires_in": 300, "issued_at": now.UTC().Format(time.RFC3339)})
	}), ca)
	// go-containerregistry refuses a realm on a loopback IP other than the
	// registry's own host:port (SSRF protection): name it localhost
	ts.url = "https://localhost:" + host[strings.LastIndex(host, ":")+1:] + "/token"
	return ts
}

// smallSpec is one image: the nginx stand-in base and a one-file layer.
func smallSpec(t *testing.T, base string) spec.ImageSpec {
	t.Helper()
	site := t.TempDir()
	if err := os.WriteFile(filepath.Join(site, "index.html"), []byte("<h1>auth</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := spec.ImageSpec{
		Name: "site", Base: base,
		Layers: []spec.LayerSpec{{Name: "site", Spec: layers.Spec{Sources: []layers.Source{{From: site, To: "/usr/share/nginx/html"}}}}},
	}
	s.Compression, _ = layers.Compression{}.Normalize()
	s.Policy.AllowRoot = true
	return s
}

// authPush builds smallSpec on base and pushes it to dest with creds
// (trusting ca when set); it returns the results, the debug log and the
// error.
func authPush(t *testing.T, reg *testRegistry, ca *testCA, creds *registry.Credentials, base, dest string) ([]assemble.Result, string, error) {
	t.Helper()
	var logs lockedBuffer
	o := testOptions{
		CacheDir: t.TempDir(), Credentials: creds, Keychain: authn.NewMultiKeychain(), // no ~/.docker
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Retry:  registry.RetryPolicy{Base: 10 * time.Millisecond},
	}
	if ca != nil {
		o.CACert = ca.file
	}
	e, err := NewEngine(o)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(context.Background(), []spec.ImageSpec{smallSpec(t, base)}, e.RegistrySink(sink.Destinations{Ref: dest}))
	return res, logs.String(), err
}

// checkAuthFailure: one line, a RegistryError naming 401 and what to do,
// no secret in it, and nothing written to the registry.
func checkAuthFailure(t *testing.T, err error, reg *testRegistry, logs, repo string, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("wrong credentials pushed")
	}
	msg := err.Error()
	var re *registry.Error
	if !errors.As(err, &re) {
		t.Errorf("not a RegistryError (exit code 3): %T %v", err, err)
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	for _, w := range []string{"cannot push to " + reg.host + repo + ":", "401 unauthorized", "check the credentials for " + reg.host, "gantry login " + reg.host} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q lacks %q", msg, w)
		}
	}
	for _, s := range secrets {
		if strings.Contains(msg, s) || strings.Contains(logs, s) {
			t.Errorf("secret %q in the error or the log", s)
		}
	}
	if n := reg.count("PUT") + reg.count("PATCH"); n != 0 {
		t.Errorf("%d PUT/PATCH requests reached the registry: %q", n, reg.requests())
	}
}

// assertAllTLS: every request the registry served came over TLS.
func assertAllTLS(t *testing.T, reg *testRegistry) {
	t.Helper()
	reqs := reg.requests()
	if len(reqs) == 0 {
		t.Fatal("the registry saw no request")
	}
	for _, q := range reqs {
		if !strings.HasSuffix(q, " tls") {
			t.Errorf("request without TLS: %s", q)
		}
	}
}

// TestPushBasicAuthTLS: a registry with htpasswd Basic auth over TLS with a
// test CA. The right credentials pull the base and push; wrong or missing
// ones fail at once with exit-code-3 errors and push nothing; without the
// CA the error names the host and the flags to pass.
func TestPushBasicAuthTLS(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	reg := newTestRegistryWith(t, registryOptions{CA: ca, Auth: htpasswdAuth(t, map[string]string{testUser: testPassword})})
	pushLayoutBaseWith(t, nginxBase, reg.host+"/library/nginx:alpine",
		remote.WithTransport(clientTransport(ca)), remote.WithAuth(&authn.Basic{Username: testUser, Password: testPassword}))
	base := reg.host + "/library/nginx:alpine"
	dest := reg.host + "/web/site:v1"
	basicB64 := base64.StdEncoding.EncodeToString([]byte(testUser + ":" + testPassword))

	t.Run("right credentials", func(t *testing.T) {
		reg.reset()
		res, logs, err := authPush(t, reg, ca, &registry.Credentials{Registry: reg.host, Username: testUser, Password: testPassword}, base, dest)
		if err != nil {
			t.Fatal(err)
		}
		assertAllTLS(t, reg)
		if n := reg.count("POST", "/v2/web/site/blobs/uploads/", "mount="); n == 0 {
			t.Errorf("base layers not mounted: %q", reg.requests())
		}
		r, _ := name.ParseReference(dest)
		desc, err := remote.Head(r, remote.WithTransport(clientTransport(ca)), remote.WithAuth(&authn.Basic{Username: testUser, Password: testPassword}))
		if err != nil {
			t.Fatal(err)
		}
		if desc.Digest.String() != res[0].Digest {
			t.Errorf("tag points at %s, result says %s", desc.Digest, res[0].Digest)
		}
		if !strings.Contains(logs, `authorization="Basic [redacted]"`) {
			t.Errorf("debug log shows no redacted Authorization header:\n%s", logs)
		}
		if strings.Contains(logs, testPassword) || strings.Contains(logs, basicB64) {
			t.Error("the password is in the debug log")
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		reg.reset()
		// the base from a layout: only the push needs credentials
		_, logs, err := authPush(t, reg, ca, &registry.Credentials{Registry: reg.host, Username: testUser, Password: "wrong-" + testPassword}, "oci:"+nginxBase, reg.host+"/web/site-wrong:v1")
		checkAuthFailure(t, err, reg, logs, "/web/site-wrong", testPassword)
		if tags := tagsOf(t, reg.host+"/web/site-wrong", remote.WithTransport(clientTransport(ca)), remote.WithAuth(&authn.Basic{Username: testUser, Password: testPassword})); len(tags) != 0 {
			t.Errorf("tags %q exist after a failed push", tags)
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		reg.reset()
		_, logs, err := authPush(t, reg, ca, nil, "oci:"+nginxBase, reg.host+"/web/site-anon:v1")
		checkAuthFailure(t, err, reg, logs, "/web/site-anon")
	})
	t.Run("wrong password pulling the base", func(t *testing.T) {
		reg.reset()
		_, _, err := authPush(t, reg, ca, &registry.Credentials{Registry: reg.host, Username: testUser, Password: "nope"}, base, dest)
		if err == nil {
			t.Fatal("no error")
		}
		for _, w := range []string{"base " + base, "401 unauthorized on " + reg.host + "/library/nginx", "check the credentials for " + reg.host} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q lacks %q", err, w)
			}
		}
		if n := reg.count("PUT") + reg.count("PATCH") + reg.count("POST"); n != 0 {
			t.Errorf("%d writes reached the registry", n)
		}
	})
	t.Run("no CA certificate", func(t *testing.T) {
		start := time.Now()
		_, _, err := authPush(t, reg, nil, &registry.Credentials{Registry: reg.host, Username: testUser, Password: testPassword}, base, dest)
		if err == nil {
			t.Fatal("an untrusted certificate was accepted")
		}
		msg := err.Error()
		t.Log(msg)
		var re *registry.Error
		if !errors.As(err, &re) || strings.Contains(msg, "\n") {
			t.Errorf("not a one-line RegistryError: %T %q", err, msg)
		}
		for _, w := range []string{"certificate", "the TLS certificate of " + reg.host + " is not trusted", "--ca-cert", "--insecure"} {
			if !strings.Contains(msg, w) {
				t.Errorf("error %q lacks %q", msg, w)
			}
		}
		// a certificate error is not retried
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %s to report a certificate error", d)
		}
		// the same when only the push goes to the registry
		reg.reset()
		_, _, err = authPush(t, reg, nil, &registry.Credentials{Registry: reg.host, Username: testUser, Password: testPassword}, "oci:"+nginxBase, dest)
		if err == nil || !strings.Contains(err.Error(), "cannot push to "+reg.host+"/web/site: ") || !strings.Contains(err.Error(), "the TLS certificate of "+reg.host+" is not trusted: pass --ca-cert") {
			t.Errorf("push without the CA: %v", err)
		}
		if n := len(reg.requests()); n != 0 {
			t.Errorf("%d requests got past TLS", n)
		}
	})
	t.Run("insecure", func(t *testing.T) {
		reg.reset()
		e, err := NewEngine(testOptions{CacheDir: t.TempDir(), Insecure: true, Keychain: authn.NewMultiKeychain(),
			Credentials: &registry.Credentials{Registry: reg.host, Username: testUser, Password: testPassword}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Run(context.Background(), []spec.ImageSpec{smallSpec(t, base)}, e.RegistrySink(sink.Destinations{Ref: reg.host + "/web/insecure:v1"})); err != nil {
			t.Fatal(err)
		}
		assertAllTLS(t, reg)
	})
}

// TestPushTokenAuthTLS: a registry with Bearer token auth (a token server
// issuing JWTs signed by a certificate of the test CA), both over TLS.
func TestPushTokenAuthTLS(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	ts := newTokenServer(t, ca,
		map[string]string{testUser: testPassword, "reader": "reader-pw"},
		map[string][]string{testUser: {"pull", "push"}, "reader": {"pull"}})
	reg := newTestRegistryWith(t, registryOptions{CA: ca, Auth: configuration.Auth{"token": configuration.Parameters{
		"realm": ts.url, "service": "test", "issuer": "test-issuer", "rootcertbundle": ca.file,
	}}})
	pushLayoutBaseWith(t, nginxBase, reg.host+"/library/nginx:alpine",
		remote.WithTransport(clientTransport(ca)), remote.WithAuth(&authn.Basic{Username: testUser, Password: testPassword}))
	base := reg.host + "/library/nginx:alpine"
	dest := reg.host + "/web/site:v1"

	t.Run("right credentials", func(t *testing.T) {
		reg.reset()
		res, logs, err := authPush(t, reg, ca, &registry.Credentials{Registry: reg.host, Username: testUser, Password: testPassword}, base, dest)
		if err != nil {
			t.Fatal(err)
		}
		assertAllTLS(t, reg)
		ts.mu.Lock()
		issued, tokens := append([]string(nil), ts.issued...), append([]string(nil), ts.tokens...)
		ts.mu.Unlock()
		if !slices.ContainsFunc(issued, func(s string) bool { return strings.Contains(s, "repository:web/site:") && strings.Contains(s, "push") }) {
			t.Errorf("no push token issued: %q", issued)
		}
		if !strings.Contains(logs, `authorization="Bearer [redacted]"`) {
			t.Errorf("debug log shows no redacted Bearer header:\n%s", logs)
		}
		for _, tok := range tokens {
			if strings.Contains(logs, tok) {
				t.Fatal("a bearer token is in the debug log")
			}
		}
		if strings.Contains(logs, testPassword) {
			t.Error("the password is in the debug log")
		}
		r, _ := name.ParseReference(dest)
		desc, err := remote.Head(r, remote.WithTransport(clientTransport(ca)), remote.WithAuth(&authn.Basic{Username: testUser, Password: testPassword}))
		if err != nil {
			t.Fatal(err)
		}
		if desc.Digest.String() != res[0].Digest {
			t.Errorf("tag points at %s, result says %s", desc.Digest, res[0].Digest)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		reg.reset()
		_, logs, err := authPush(t, reg, ca, &registry.Credentials{Registry: reg.host, Username: testUser, Password: "wrong"}, "oci:"+nginxBase, reg.host+"/web/site-wrong:v1")
		checkAuthFailure(t, err, reg, logs, "/web/site-wrong", testPassword)
		ts.mu.Lock()
		denied := ts.denied
		ts.mu.Unlock()
		if denied == 0 {
			t.Error("the token server denied nothing")
		}
	})
	t.Run("pull-only user", func(t *testing.T) {
		reg.reset()
		_, _, err := authPush(t, reg, ca, &registry.Credentials{Registry: reg.host, Username: "reader", Password: "reader-pw"}, base, reg.host+"/web/site-reader:v1")
		if err == nil {
			t.Fatal("a pull-only user pushed")
		}
		for _, w := range []string{"cannot push to " + reg.host + "/web/site-reader", "401 unauthorized", "check the credentials for " + reg.host} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q lacks %q", err, w)
			}
		}
		if n := reg.count("PUT") + reg.count("PATCH"); n != 0 {
			t.Errorf("%d PUT/PATCH requests reached the registry", n)
		}
	})
}
