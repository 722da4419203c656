package assemble_test

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/assemble"
	"github.com/gantry-dev/gantry/assemble/registry"
	"github.com/gantry-dev/gantry/assemble/registrytest"
	"github.com/gantry-dev/gantry/assemble/sink"
	"github.com/gantry-dev/gantry/assemble/spec"
	"github.com/gantry-dev/gantry/layers"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

const (
	testUser     = "ci-bot"
	testPassword = "pw-7Qx!d9-never-printed"
)

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
func authPush(t *testing.T, reg *registrytest.Registry, ca *registrytest.CA, creds *registry.Credentials, base, dest string) ([]assemble.Result, string, error) {
	t.Helper()
	e, logs := authEngine(t, ca, creds)
	res, err := e.Run(context.Background(), []spec.ImageSpec{smallSpec(t, base)}, e.RegistrySink(sink.Destinations{Ref: dest}))
	return res, logs.String(), err
}

// authEngine is an engine with creds (and no ~/.docker), logging at debug
// level into the returned buffer.
func authEngine(t *testing.T, ca *registrytest.CA, creds *registry.Credentials) (testEngine, *registrytest.Buffer) {
	t.Helper()
	var logs registrytest.Buffer
	o := testOptions{
		CacheDir: t.TempDir(), Credentials: creds, Keychain: authn.NewMultiKeychain(), // no ~/.docker
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Retry:  registry.RetryPolicy{Base: 10 * time.Millisecond},
	}
	if ca != nil {
		o.CACert = ca.File
	}
	e, err := NewEngine(o)
	if err != nil {
		t.Fatal(err)
	}
	return e, &logs
}

// checkAuthFailure: one line, a RegistryError naming 401 and what to do,
// no secret in it, and nothing written to the registry.
func checkAuthFailure(t *testing.T, err error, reg *registrytest.Registry, logs, repo string, secrets ...string) {
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
	for _, w := range []string{"cannot push to " + reg.Host + repo + ":", "401 unauthorized", "check the credentials for " + reg.Host, "gantry login " + reg.Host} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q lacks %q", msg, w)
		}
	}
	for _, s := range secrets {
		if strings.Contains(msg, s) || strings.Contains(logs, s) {
			t.Errorf("secret %q in the error or the log", s)
		}
	}
	if n := reg.Writes(); n != 0 {
		t.Errorf("%d PUT/PATCH requests reached the registry: %q", n, reg.Requests())
	}
}

// assertAllTLS: every request the registry served came over TLS.
func assertAllTLS(t *testing.T, reg *registrytest.Registry) {
	t.Helper()
	reqs := reg.Requests()
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
	ca := registrytest.NewCA(t)
	reg := registrytest.New(t, registrytest.WithTLS(ca), registrytest.WithHtpasswd(map[string]string{testUser: testPassword}))
	registrytest.PushLayout(t, nginxBase, reg.Host+"/library/nginx:alpine", reg.OptionsAs(testUser)...)
	base := reg.Host + "/library/nginx:alpine"
	dest := reg.Host + "/web/site:v1"
	basicB64 := base64.StdEncoding.EncodeToString([]byte(testUser + ":" + testPassword))

	t.Run("right credentials", func(t *testing.T) {
		reg.Reset()
		res, logs, err := authPush(t, reg, ca, &registry.Credentials{Registry: reg.Host, Username: testUser, Password: testPassword}, base, dest)
		if err != nil {
			t.Fatal(err)
		}
		assertAllTLS(t, reg)
		if n := reg.Count("POST", "/v2/web/site/blobs/uploads/", "mount="); n == 0 {
			t.Errorf("base layers not mounted: %q", reg.Requests())
		}
		r, _ := name.ParseReference(dest)
		desc, err := remote.Head(r, reg.OptionsAs(testUser)...)
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
		reg.Reset()
		// the base from a layout: only the push needs credentials
		_, logs, err := authPush(t, reg, ca, &registry.Credentials{Registry: reg.Host, Username: testUser, Password: "wrong-" + testPassword}, "oci:"+nginxBase, reg.Host+"/web/site-wrong:v1")
		checkAuthFailure(t, err, reg, logs, "/web/site-wrong", testPassword)
		if tags := registrytest.Tags(t, reg.Host+"/web/site-wrong", reg.OptionsAs(testUser)...); len(tags) != 0 {
			t.Errorf("tags %q exist after a failed push", tags)
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		reg.Reset()
		_, logs, err := authPush(t, reg, ca, nil, "oci:"+nginxBase, reg.Host+"/web/site-anon:v1")
		checkAuthFailure(t, err, reg, logs, "/web/site-anon")
	})
	t.Run("wrong password fails before the base is read", func(t *testing.T) {
		reg.Reset()
		_, logs, err := authPush(t, reg, ca, &registry.Credentials{Registry: reg.Host, Username: testUser, Password: "nope"}, base, dest)
		checkAuthFailure(t, err, reg, logs, "/web/site")
		if n := reg.Count("GET", "/library/nginx/"); n != 0 {
			t.Errorf("the base was read (%d requests) before the push permission was checked", n)
		}
	})
	t.Run("wrong password pulling the base", func(t *testing.T) {
		reg.Reset()
		e, _ := authEngine(t, ca, &registry.Credentials{Registry: reg.Host, Username: testUser, Password: "nope"})
		_, err := e.Build(context.Background(), []spec.ImageSpec{smallSpec(t, base)})
		if err == nil {
			t.Fatal("no error")
		}
		for _, w := range []string{"base " + base, "401 unauthorized on " + reg.Host + "/library/nginx", "check the credentials for " + reg.Host} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q lacks %q", err, w)
			}
		}
		if n := reg.Writes() + reg.Count("POST"); n != 0 {
			t.Errorf("%d writes reached the registry", n)
		}
	})
	t.Run("no CA certificate", func(t *testing.T) {
		start := time.Now()
		_, _, err := authPush(t, reg, nil, &registry.Credentials{Registry: reg.Host, Username: testUser, Password: testPassword}, base, dest)
		if err == nil {
			t.Fatal("an untrusted certificate was accepted")
		}
		msg := err.Error()
		t.Log(msg)
		var re *registry.Error
		if !errors.As(err, &re) || strings.Contains(msg, "\n") {
			t.Errorf("not a one-line RegistryError: %T %q", err, msg)
		}
		for _, w := range []string{"certificate", "the TLS certificate of " + reg.Host + " is not trusted", "--ca-cert", "--insecure"} {
			if !strings.Contains(msg, w) {
				t.Errorf("error %q lacks %q", msg, w)
			}
		}
		// a certificate error is not retried
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %s to report a certificate error", d)
		}
		// the same when only the push goes to the registry
		reg.Reset()
		_, _, err = authPush(t, reg, nil, &registry.Credentials{Registry: reg.Host, Username: testUser, Password: testPassword}, "oci:"+nginxBase, dest)
		if err == nil || !strings.Contains(err.Error(), "cannot push to "+reg.Host+"/web/site: ") || !strings.Contains(err.Error(), "the TLS certificate of "+reg.Host+" is not trusted: pass --ca-cert") {
			t.Errorf("push without the CA: %v", err)
		}
		if n := len(reg.Requests()); n != 0 {
			t.Errorf("%d requests got past TLS", n)
		}
	})
	t.Run("insecure", func(t *testing.T) {
		reg.Reset()
		e, err := NewEngine(testOptions{CacheDir: t.TempDir(), Insecure: true, Keychain: authn.NewMultiKeychain(),
			Credentials: &registry.Credentials{Registry: reg.Host, Username: testUser, Password: testPassword}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Run(context.Background(), []spec.ImageSpec{smallSpec(t, base)}, e.RegistrySink(sink.Destinations{Ref: reg.Host + "/web/insecure:v1"})); err != nil {
			t.Fatal(err)
		}
		assertAllTLS(t, reg)
	})
}

// TestPushTokenAuthTLS: a registry with Bearer token auth (a token server
// issuing JWTs signed by a certificate of the test CA), both over TLS.
func TestPushTokenAuthTLS(t *testing.T) {
	t.Parallel()
	ca := registrytest.NewCA(t)
	// testUser may pull and push (the token server's default)
	ts := registrytest.NewTokenServer(t, ca, map[string]string{testUser: testPassword, "reader": "reader-pw"}, registrytest.Allow("reader", "pull"))
	reg := registrytest.New(t, registrytest.WithTLS(ca), registrytest.WithToken(ts))
	registrytest.PushLayout(t, nginxBase, reg.Host+"/library/nginx:alpine", reg.OptionsAs(testUser)...)
	base := reg.Host + "/library/nginx:alpine"
	dest := reg.Host + "/web/site:v1"

	t.Run("right credentials", func(t *testing.T) {
		reg.Reset()
		res, logs, err := authPush(t, reg, ca, &registry.Credentials{Registry: reg.Host, Username: testUser, Password: testPassword}, base, dest)
		if err != nil {
			t.Fatal(err)
		}
		assertAllTLS(t, reg)
		issued, tokens := ts.Issued(), ts.Tokens()
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
		desc, err := remote.Head(r, reg.OptionsAs(testUser)...)
		if err != nil {
			t.Fatal(err)
		}
		if desc.Digest.String() != res[0].Digest {
			t.Errorf("tag points at %s, result says %s", desc.Digest, res[0].Digest)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		reg.Reset()
		_, logs, err := authPush(t, reg, ca, &registry.Credentials{Registry: reg.Host, Username: testUser, Password: "wrong"}, "oci:"+nginxBase, reg.Host+"/web/site-wrong:v1")
		checkAuthFailure(t, err, reg, logs, "/web/site-wrong", testPassword)
		if ts.Denied() == 0 {
			t.Error("the token server denied nothing")
		}
	})
	t.Run("pull-only user", func(t *testing.T) {
		reg.Reset()
		_, _, err := authPush(t, reg, ca, &registry.Credentials{Registry: reg.Host, Username: "reader", Password: "reader-pw"}, base, reg.Host+"/web/site-reader:v1")
		if err == nil {
			t.Fatal("a pull-only user pushed")
		}
		for _, w := range []string{"cannot push to " + reg.Host + "/web/site-reader", "401 unauthorized", "check the credentials for " + reg.Host} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q lacks %q", err, w)
			}
		}
		if n := reg.Writes(); n != 0 {
			t.Errorf("%d PUT/PATCH requests reached the registry", n)
		}
	})
}
