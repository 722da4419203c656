package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	"github.com/distribution/distribution/v3/registry/auth/token"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"
)

const (
	regUser     = "ci-bot"
	regPassword = "Zx9-login-secret-never-printed"
)

// gantryEnv is gantry with more environment (looked up first; HOME and
// PATH still come from the process) and a standard input.
func gantryEnv(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	// stderr gets log lines and progress lines from goroutines that each
	// lock their own mutex: lock the buffer itself too
	var out, errb lockedBuffer
	getenv := func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		if k == "HOME" || k == "PATH" {
			return os.LookupEnv(k)
		}
		return "", false
	}
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb, getenv)
	return code, out.String(), errb.String()
}

// lockedBuffer is a bytes.Buffer safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// isolateDockerConfig points DOCKER_CONFIG and HOME at empty directories
// for this test and returns the config directory. The keychain of
// go-containerregistry and the credential helpers read the process
// environment, so tests using it cannot run in parallel.
func isolateDockerConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("REGISTRY_AUTH_FILE", "")
	t.Setenv("XDG_RUNTIME_DIR", "")
	return dir
}

// testCA is a certificate authority for one test; file is its PEM.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gantry CLI test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, pemCert(der), 0o644); err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, file: file}
}

func pemCert(der []byte) []byte {
	return []byte("-----BEGIN CERTIFICATE-----\n" + base64.StdEncoding.EncodeToString(der) + "\n-----END CERTIFICATE-----\n")
}

// serverCert is for 127.0.0.1 and localhost; signingCert signs tokens.
func (ca *testCA) serverCert(t *testing.T) tls.Certificate  { return ca.leaf(t, true) }
func (ca *testCA) signingCert(t *testing.T) tls.Certificate { return ca.leaf(t, false) }

func (ca *testCA) leaf(t *testing.T, server bool) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// clientOptions read the test registry: trusting ca, with the right
// credentials when auth.
func (ca *testCA) clientOptions(auth bool) []remote.Option {
	tr := remote.DefaultTransport.(*http.Transport).Clone()
	if ca != nil {
		pool := x509.NewCertPool()
		pool.AddCert(ca.cert)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	opts := []remote.Option{remote.WithTransport(tr)}
	if auth {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: regUser, Password: regPassword}))
	}
	return opts
}

// inProcessRegistry is CNCF distribution in process on 127.0.0.1: with
// htpasswd Basic auth (regUser, regPassword) when auth, over TLS with a
// certificate from ca when ca is set.
type inProcessRegistry struct {
	host string
	mu   sync.Mutex
	reqs []string
}

func newInProcessRegistry(t *testing.T, ca *testCA, auth bool) *inProcessRegistry {
	t.Helper()
	var a configuration.Auth
	if auth {
		h, err := bcrypt.GenerateFromPassword([]byte(regPassword), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "htpasswd")
		if err := os.WriteFile(file, []byte(regUser+":"+string(h)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		a = configuration.Auth{"htpasswd": configuration.Parameters{"realm": "gantry-cli-test", "path": file}}
	}
	return newInProcessRegistryAuth(t, ca, a)
}

func newInProcessRegistryAuth(t *testing.T, ca *testCA, auth configuration.Auth) *inProcessRegistry {
	t.Helper()
	logrus.SetOutput(io.Discard)
	cfg := &configuration.Configuration{}
	cfg.Storage = configuration.Storage{
		"filesystem": configuration.Parameters{"rootdirectory": t.TempDir()},
		"delete":     configuration.Parameters{"enabled": true},
	}
	cfg.Log.AccessLog.Disabled = true
	cfg.HTTP.Secret = "gantry-cli-test"
	cfg.Auth = auth
	app := handlers.NewApp(context.Background(), cfg)
	r := &inProcessRegistry{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		q := req.Method + " " + req.URL.RequestURI()
		if req.TLS != nil {
			q += " tls"
		}
		r.mu.Lock()
		r.reqs = append(r.reqs, q)
		r.mu.Unlock()
		app.ServeHTTP(w, req)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if ca != nil {
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.serverCert(t)}, MinVersion: tls.VersionTLS12}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	_, r.host, _ = strings.Cut(srv.URL, "://")
	return r
}

func (r *inProcessRegistry) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reqs...)
}

func (r *inProcessRegistry) writes() int {
	n := 0
	for _, q := range r.requests() {
		if strings.HasPrefix(q, "PUT ") || strings.HasPrefix(q, "PATCH ") {
			n++
		}
	}
	return n
}

func pushLayoutWith(t *testing.T, dir, ref string, opts ...remote.Option) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r, layoutIndex(t, dir), opts...); err != nil {
		t.Fatal(err)
	}
}

// tagExists reports whether ref resolves on the registry.
func tagExists(t *testing.T, ref string, opts ...remote.Option) bool {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	_, err = remote.Head(r, opts...)
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return false
	}
	if err != nil {
		t.Fatalf("HEAD %s: %v", ref, err)
	}
	return true
}

// lastLine is the last line of stderr.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// assertNoSecret: secret is in none of the texts nor any file under dirs.
func assertNoSecret(t *testing.T, secret string, texts map[string]string, dirs ...string) {
	t.Helper()
	forms := []string{secret, base64.StdEncoding.EncodeToString([]byte(regUser + ":" + secret))}
	for what, s := range texts {
		for _, f := range forms {
			if strings.Contains(s, f) {
				t.Errorf("the password is in %s", what)
			}
		}
	}
	for _, d := range dirs {
		filepath.WalkDir(d, func(p string, de fs.DirEntry, err error) error {
			if err != nil || de.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, f := range forms {
				if bytes.Contains(b, []byte(f)) {
					t.Errorf("the password is in %s", p)
				}
			}
			return nil
		})
	}
}

// siteDir is a directory with one page, for --layer.
func siteDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	if err := os.WriteFile(filepath.Join(d, "index.html"), []byte("<h1>login</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// checkDigestFile: every line is REF@DIGEST, REF is one of refs, and the
// registry resolves REF to DIGEST.
func checkDigestFile(t *testing.T, file string, refs []string, opts ...remote.Option) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != len(refs) {
		t.Fatalf("--digest-file has %d lines, want %d:\n%s", len(lines), len(refs), b)
	}
	for i, line := range lines {
		ref, dig, ok := strings.Cut(line, "@")
		if !ok || ref != refs[i] || !strings.HasPrefix(dig, "sha256:") || len(dig) != 71 {
			t.Errorf("--digest-file line %q, want %s@sha256:...", line, refs[i])
			continue
		}
		// the tag resolves to the digest, and the digest reference resolves
		d, err := name.NewDigest(line)
		if err != nil {
			t.Errorf("%q is not a digest reference: %v", line, err)
			continue
		}
		desc, err := remote.Head(d, opts...)
		if err != nil || desc.Digest.String() != dig {
			t.Errorf("%s does not resolve: %v %v", line, desc, err)
		}
		tag, _ := name.NewTag(ref)
		desc, err = remote.Head(tag, opts...)
		if err != nil || desc.Digest.String() != dig {
			t.Errorf("%s resolves to %v (%v), the digest file says %s", ref, desc, err, dig)
		}
	}
}

// TestLoginPushLogout: gantry login checks the credentials against an
// htpasswd registry over TLS and saves them in $DOCKER_CONFIG/config.json
// (a wrong password saves nothing and exits 3); build and append then push
// with them, printing no secret even with -v; logout removes them.
func TestLoginPushLogout(t *testing.T) {
	ca := newTestCA(t)
	reg := newInProcessRegistry(t, ca, true)
	pushLayoutWith(t, nginxBase, reg.host+"/library/nginx:alpine", ca.clientOptions(true)...)
	pushLayoutWith(t, pythonBase, reg.host+"/library/python:3.13-slim", ca.clientOptions(true)...)
	cfgDir := isolateDockerConfig(t)
	cfgFile := filepath.Join(cfgDir, "config.json")
	env := map[string]string{"DOCKER_CONFIG": cfgDir}

	// wrong password: exit 3, one line, nothing written
	code, stdout, stderr := gantryEnv(t, env, "wrong-password\n", "login", reg.host, "-u", regUser, "--password-stdin", "--ca-cert", ca.file)
	if code != exitRegistry {
		t.Errorf("wrong password: exit %d, want %d; stderr: %s", code, exitRegistry, stderr)
	}
	if want := "gantry: error: 401 unauthorized on " + reg.host + " (check the user name and password or token)"; lastLine(stderr) != want {
		t.Errorf("wrong password: %q, want %q", lastLine(stderr), want)
	}
	if _, err := os.Stat(cfgFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed login wrote %s", cfgFile)
	}
	if stdout != "" {
		t.Errorf("login printed %q on stdout", stdout)
	}
	// no CA: says which host and what to pass
	code, _, stderr = gantryEnv(t, env, regPassword+"\n", "login", reg.host, "-u", regUser, "--password-stdin")
	if code != exitRegistry || !strings.Contains(lastLine(stderr), "the TLS certificate of "+reg.host+" is not trusted: pass --ca-cert FILE with its CA, or --insecure") {
		t.Errorf("login without --ca-cert: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(cfgFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed login wrote %s", cfgFile)
	}

	// the right password: saved where docker reads it
	code, stdout, stderr = gantryEnv(t, env, regPassword+"\n", "login", reg.host, "-u", regUser, "--password-stdin", "--ca-cert", ca.file)
	if code != 0 {
		t.Fatalf("login: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "Login to "+reg.host+" succeeded; credentials saved in "+cfgFile) {
		t.Errorf("login said %q", stderr)
	}
	var cf struct {
		Auths map[string]struct{ Auth string }
	}
	raw, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &cf); err != nil {
		t.Fatal(err)
	}
	if got, want := cf.Auths[reg.host].Auth, base64.StdEncoding.EncodeToString([]byte(regUser+":"+regPassword)); got != want {
		t.Errorf("config.json auths[%s] = %q, want %q:\n%s", reg.host, got, want, raw)
	}
	assertNoSecret(t, regPassword, map[string]string{"login stdout": stdout, "login stderr": stderr})

	// append with -v pulls the base and pushes with the saved credentials;
	// the HTTP log shows the Authorization header redacted
	work := t.TempDir()
	digestFile := filepath.Join(work, "digests.txt")
	code, stdout, stderr = gantryEnv(t, env, "", "append", "--base", reg.host+"/library/nginx:alpine", "--layer", siteDir(t)+":/usr/share/nginx/html",
		"--user", "app:1001", "--push", reg.host+"/web/site:v1", "-t", "v1.0", "--ca-cert", ca.file, "-v", "--json",
		"--digest-file", digestFile, "-o", "oci:"+filepath.Join(work, "out"), "--cache-dir", filepath.Join(work, "cache"))
	if code != 0 {
		t.Fatalf("append: exit %d: %s", code, stderr)
	}
	rs := parseResults(t, stdout)
	if len(rs) != 1 || len(rs[0].References) != 3 || rs[0].References[0] != reg.host+"/web/site:v1" || rs[0].References[1] != reg.host+"/web/site:v1.0" {
		t.Fatalf("append results: %s", stdout)
	}
	if !strings.Contains(stderr, `authorization="Basic [redacted]"`) {
		t.Errorf("-v logged no redacted Authorization header:\n%s", stderr)
	}
	checkDigestFile(t, digestFile, []string{reg.host + "/web/site:v1", reg.host + "/web/site:v1.0"}, ca.clientOptions(true)...)
	assertNoSecret(t, regPassword, map[string]string{"append stdout": stdout, "append stderr": stderr}, work)

	// build: two images, two tags each, in the digest file
	work = t.TempDir()
	digestFile = filepath.Join(work, "digests.txt")
	code, stdout, stderr = gantryEnv(t, env, "", "build", "-f", example, "--push", reg.host+"/taskflow", "-t", "v1", "-t", "latest",
		"--base", "taskflow-frontend="+reg.host+"/library/nginx:alpine", "--base", "taskflow-backend="+reg.host+"/library/python:3.13-slim",
		"--ca-cert", ca.file, "--json", "-v", "--digest-file", digestFile, "--cache-dir", filepath.Join(work, "cache"))
	if code != 0 {
		t.Fatalf("build: exit %d: %s", code, stderr)
	}
	if rs := parseResults(t, stdout); len(rs) != 2 || rs[0].Name != "taskflow-frontend" || rs[1].Name != "taskflow-backend" {
		t.Fatalf("build results: %s", stdout)
	}
	var refs []string
	for _, n := range []string{"taskflow-frontend", "taskflow-backend"} {
		refs = append(refs, reg.host+"/taskflow/"+n+":v1", reg.host+"/taskflow/"+n+":latest")
	}
	checkDigestFile(t, digestFile, refs, ca.clientOptions(true)...)
	assertNoSecret(t, regPassword, map[string]string{"build stdout": stdout, "build stderr": stderr}, work)

	// logout: the credentials are gone, and a push fails with exit 3
	code, _, stderr = gantryEnv(t, env, "", "logout", reg.host)
	if code != 0 {
		t.Fatalf("logout: exit %d: %s", code, stderr)
	}
	raw, _ = os.ReadFile(cfgFile)
	if bytes.Contains(raw, []byte(reg.host)) {
		t.Errorf("config.json still names %s after logout:\n%s", reg.host, raw)
	}
	before := reg.writes()
	code, stdout, stderr = gantryEnv(t, env, "", "append", "--base", "oci:"+nginxBase, "--layer", siteDir(t)+":/srv", "--user", "app:1001",
		"--push", reg.host+"/web/after-logout:v1", "--ca-cert", ca.file, "--cache-dir", t.TempDir())
	if code != exitRegistry {
		t.Errorf("push after logout: exit %d, want %d: %s", code, exitRegistry, stderr)
	}
	if l := lastLine(stderr); !strings.Contains(l, "401 unauthorized") || !strings.Contains(l, "gantry login "+reg.host) {
		t.Errorf("push after logout: %q", l)
	}
	if stdout != "" || reg.writes() != before || tagExists(t, reg.host+"/web/after-logout:v1", ca.clientOptions(true)...) {
		t.Errorf("a push without credentials wrote something (stdout %q)", stdout)
	}
}

// TestEnvCredentials: GANTRY_REGISTRY_USER and GANTRY_REGISTRY_PASSWORD (or
// --registry-user and --registry-password-stdin) push; a wrong password
// exits 3 and pushes nothing; the password is printed nowhere.
func TestEnvCredentials(t *testing.T) {
	ca := newTestCA(t)
	reg := newInProcessRegistry(t, ca, true)
	isolateDockerConfig(t)
	site := siteDir(t)
	push := func(env map[string]string, stdin, dest string, extra ...string) (int, string, string, string) {
		work := t.TempDir()
		args := append([]string{"append", "--base", "oci:" + nginxBase, "--layer", site + ":/srv", "--user", "app:1001",
			"--push", dest, "--ca-cert", ca.file, "--json", "-v", "--digest-file", filepath.Join(work, "digests"),
			"--cache-dir", filepath.Join(work, "cache")}, extra...)
		code, stdout, stderr := gantryEnv(t, env, stdin, args...)
		assertNoSecret(t, regPassword, map[string]string{"stdout": stdout, "stderr": stderr}, work)
		return code, stdout, stderr, work
	}

	code, stdout, stderr, work := push(map[string]string{"GANTRY_REGISTRY_USER": regUser, "GANTRY_REGISTRY_PASSWORD": regPassword}, "", reg.host+"/web/env:v1")
	if code != 0 {
		t.Fatalf("env credentials: exit %d: %s", code, stderr)
	}
	if rs := parseResults(t, stdout); len(rs) != 1 || rs[0].References[0] != reg.host+"/web/env:v1" {
		t.Errorf("results: %s", stdout)
	}
	checkDigestFile(t, filepath.Join(work, "digests"), []string{reg.host + "/web/env:v1"}, ca.clientOptions(true)...)
	if !strings.Contains(stderr, `authorization="Basic [redacted]"`) {
		t.Errorf("-v logged no redacted Authorization header:\n%s", stderr)
	}

	code, _, stderr, _ = push(map[string]string{"GANTRY_REGISTRY": reg.host}, regPassword+"\n", reg.host+"/web/stdin:v1", "--registry-user", regUser, "--registry-password-stdin")
	if code != 0 {
		t.Fatalf("--registry-password-stdin: exit %d: %s", code, stderr)
	}

	before := reg.writes()
	code, stdout, stderr, work = push(map[string]string{"GANTRY_REGISTRY_USER": regUser, "GANTRY_REGISTRY_PASSWORD": "not-" + regPassword}, "", reg.host+"/web/wrong:v1")
	if code != exitRegistry {
		t.Errorf("wrong password: exit %d, want %d: %s", code, exitRegistry, stderr)
	}
	want := "gantry: error: cannot push to " + reg.host + "/web/wrong: 401 unauthorized on " + reg.host + "/web/wrong: authentication required (check the credentials for " + reg.host + ": gantry login " + reg.host + ", docker login, or --registry-user)"
	if lastLine(stderr) != want {
		t.Errorf("wrong password:\n got %q\nwant %q", lastLine(stderr), want)
	}
	if stdout != "" || reg.writes() != before || tagExists(t, reg.host+"/web/wrong:v1", ca.clientOptions(true)...) {
		t.Errorf("a push with a wrong password wrote something (stdout %q)", stdout)
	}
	if b, err := os.ReadFile(filepath.Join(work, "digests")); err == nil {
		t.Errorf("a failed push wrote the digest file: %q", b)
	}

	// half the credentials is a usage error
	code, _, stderr, _ = push(map[string]string{"GANTRY_REGISTRY_USER": regUser}, "", reg.host+"/web/half:v1")
	if code != exitUsage || !strings.Contains(stderr, "need both a user") {
		t.Errorf("user without password: exit %d: %s", code, stderr)
	}
}

// credentialHelper writes a docker-credential-NAME script into a new
// directory put first on PATH. It keeps one credential in state/creds.json
// (what store wrote, cat on get) and logs each call to state/calls.
func credentialHelper(t *testing.T, helper string) (state string) {
	t.Helper()
	bin, state := t.TempDir(), t.TempDir()
	script := fmt.Sprintf(`#!/bin/sh
state=%q
read -r input || true
echo "$1 $input" >> "$state/calls"
case "$1" in
get)
	if [ -f "$state/creds.json" ]; then cat "$state/creds.json"; else echo "credentials not found in native keychain"; exit 1; fi ;;
store)
	printf '%%s' "$input" > "$state/creds.json" ;;
erase)
	rm -f "$state/creds.json" ;;
list)
	echo "{}" ;;
esac
`, state)
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-"+helper), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return state
}

// TestCredentialHelper: config.json names a credential helper for the
// registry; build reads the credentials from it, login stores them in it
// (config.json keeps no secret), logout erases them.
func TestCredentialHelper(t *testing.T) {
	ca := newTestCA(t)
	reg := newInProcessRegistry(t, ca, true)
	cfgDir := isolateDockerConfig(t)
	state := credentialHelper(t, "gantrytest")
	cfgFile := filepath.Join(cfgDir, "config.json")
	if err := os.WriteFile(cfgFile, []byte(`{"credHelpers": {"`+reg.host+`": "gantrytest"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	creds := fmt.Sprintf(`{"ServerURL":%q,"Username":%q,"Secret":%q}`, reg.host, regUser, regPassword)
	if err := os.WriteFile(filepath.Join(state, "creds.json"), []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DOCKER_CONFIG": cfgDir}
	push := func(dest string) (int, string, string) {
		return gantryEnv(t, env, "", "append", "--base", "oci:"+nginxBase, "--layer", siteDir(t)+":/srv", "--user", "app:1001",
			"--push", dest, "--ca-cert", ca.file, "--json", "-v", "--cache-dir", t.TempDir())
	}
	calls := func() string {
		b, _ := os.ReadFile(filepath.Join(state, "calls"))
		return string(b)
	}

	code, stdout, stderr := push(reg.host + "/web/helper:v1")
	if code != 0 {
		t.Fatalf("push with the helper's credentials: exit %d: %s\nhelper calls:\n%s", code, stderr, calls())
	}
	if rs := parseResults(t, stdout); len(rs) != 1 || !tagExists(t, reg.host+"/web/helper:v1", ca.clientOptions(true)...) {
		t.Errorf("not pushed: %s", stdout)
	}
	if !strings.Contains(calls(), "get "+reg.host) {
		t.Errorf("the helper was not asked for %s:\n%s", reg.host, calls())
	}
	assertNoSecret(t, regPassword, map[string]string{"stdout": stdout, "stderr": stderr})

	// logout erases through the helper; a push then fails with exit 3
	if code, _, stderr := gantryEnv(t, env, "", "logout", reg.host); code != 0 {
		t.Fatalf("logout: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(state, "creds.json")); !errors.Is(err, os.ErrNotExist) || !strings.Contains(calls(), "erase "+reg.host) {
		t.Errorf("logout did not erase through the helper:\n%s", calls())
	}
	if code, _, stderr := push(reg.host + "/web/helper:v2"); code != exitRegistry {
		t.Errorf("push after logout: exit %d: %s", code, stderr)
	}

	// login stores through the helper; config.json holds no secret
	code, stdout, stderr = gantryEnv(t, env, regPassword+"\n", "login", reg.host, "-u", regUser, "--password-stdin", "--ca-cert", ca.file)
	if code != 0 {
		t.Fatalf("login: exit %d: %s\nhelper calls:\n%s", code, stderr, calls())
	}
	stored, _ := os.ReadFile(filepath.Join(state, "creds.json"))
	var sc struct{ ServerURL, Username, Secret string }
	if err := json.Unmarshal(stored, &sc); err != nil || sc.ServerURL != reg.host || sc.Username != regUser || sc.Secret != regPassword {
		t.Errorf("the helper stored %q (%v)", stored, err)
	}
	assertNoSecret(t, regPassword, map[string]string{"login stdout": stdout, "login stderr": stderr}, cfgDir)
	if code, _, stderr := push(reg.host + "/web/helper:v3"); code != 0 {
		t.Errorf("push after login: exit %d: %s", code, stderr)
	}
}

// TestMirrorPullsBaseThroughRegistry: --mirror docker.io=HOST/prefix pulls
// docker.io/library/nginx:alpine from HOST/prefix/library/nginx (no
// internet here), and the result still names docker.io as its base.
func TestMirrorPullsBaseThroughRegistry(t *testing.T) {
	reg := newInProcessRegistry(t, nil, false)
	pushLayoutWith(t, nginxBase, reg.host+"/hub-mirror/library/nginx:alpine")
	const base = "docker.io/library/nginx:alpine"
	code, stdout, stderr := gantryEnv(t, nil, "", "append", "--base", base, "--mirror", "docker.io="+reg.host+"/hub-mirror",
		"--layer", siteDir(t)+":/usr/share/nginx/html", "--user", "app:1001", "--push", reg.host+"/web/mirrored:v1", "--json", "--cache-dir", t.TempDir())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "base pulled through mirror") || strings.Contains(stderr, "mirror failed") {
		t.Errorf("stderr does not say the base came through the mirror:\n%s", stderr)
	}
	var res []struct{ Base, Digest string }
	for dec := json.NewDecoder(strings.NewReader(stdout)); ; {
		var r struct{ Base, Digest string }
		if err := dec.Decode(&r); err != nil {
			break
		}
		res = append(res, r)
	}
	if len(res) != 1 || res[0].Base != base {
		t.Errorf("result: %s", stdout)
	}
	pulled := false
	for _, q := range reg.requests() {
		if strings.HasPrefix(q, "GET /v2/hub-mirror/library/nginx/manifests/alpine") {
			pulled = true
		}
	}
	if !pulled {
		t.Errorf("the mirror was not asked for the base: %q", reg.requests())
	}
	r, _ := name.ParseReference(reg.host + "/web/mirrored:v1")
	idx, err := remote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if got := im.Annotations["org.opencontainers.image.base.name"]; got != base {
		t.Errorf("base.name annotation %q, want %s", got, base)
	}
	if d, _ := idx.Digest(); len(res) == 1 && d.String() != res[0].Digest {
		t.Errorf("pushed %s, result says %s", d, res[0].Digest)
	}
}

// TestCertificateErrorCLI: a registry whose certificate is not trusted
// fails at once with exit 3, naming the host and --ca-cert / --insecure;
// --ca-cert and --insecure each make the same push work.
func TestCertificateErrorCLI(t *testing.T) {
	ca := newTestCA(t)
	reg := newInProcessRegistry(t, ca, false)
	pushLayoutWith(t, nginxBase, reg.host+"/library/nginx:alpine", ca.clientOptions(false)...)
	args := func(dest string, extra ...string) []string {
		return append([]string{"append", "--base", reg.host + "/library/nginx:alpine", "--layer", siteDir(t) + ":/srv", "--user", "app:1001",
			"--push", reg.host + "/web/" + dest, "--cache-dir", t.TempDir()}, extra...)
	}
	start := time.Now()
	code, stdout, stderr := gantryEnv(t, nil, "", args("untrusted:v1")...)
	if code != exitRegistry || stdout != "" {
		t.Errorf("exit %d, want %d; stdout %q", code, exitRegistry, stdout)
	}
	want := "gantry: error: image untrusted: base " + reg.host + "/library/nginx:alpine: " + reg.host + "/library/nginx: tls: failed to verify certificate: x509: certificate signed by unknown authority (the TLS certificate of " + reg.host + " is not trusted: pass --ca-cert FILE with its CA, or --insecure)"
	if got := lastLine(stderr); got != want {
		t.Errorf("error:\n got %q\nwant %q", got, want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s to report an untrusted certificate", d)
	}
	for _, extra := range [][]string{{"--ca-cert", ca.file}, {"--insecure"}} {
		if code, _, stderr := gantryEnv(t, nil, "", args("trusted:v1", extra...)...); code != 0 {
			t.Errorf("with %s: exit %d: %s", extra[0], code, stderr)
		}
	}
	for _, q := range reg.requests() {
		if !strings.HasSuffix(q, " tls") {
			t.Errorf("request without TLS: %s", q)
		}
	}
}

// tokenRegistry is a registry with Bearer token auth: a token server (TLS,
// on localhost: go-containerregistry refuses a realm on a loopback IP) that
// checks regUser/regPassword and issues ES256 JWTs whose x5c names a
// certificate of ca, granting pull and push on every repository.
func tokenRegistry(t *testing.T, ca *testCA) *inProcessRegistry {
	t.Helper()
	signing := ca.signingCert(t)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: signing.PrivateKey},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("x5c", []string{base64.StdEncoding.EncodeToString(signing.Certificate[0])}))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != regUser || p != regPassword {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"wrong user name or password"}]}`)
			return
		}
		var access []*token.ResourceActions
		for _, scope := range r.URL.Query()["scope"] {
			for _, sc := range strings.Fields(scope) {
				typ, rest, _ := strings.Cut(sc, ":")
				if i := strings.LastIndex(rest, ":"); i > 0 {
					access = append(access, &token.ResourceActions{Type: typ, Name: rest[:i], Actions: []string{"pull", "push"}})
				}
			}
		}
		now := time.Now()
		raw, err := jwt.Signed(signer).Claims(token.ClaimSet{Issuer: "test-issuer", Subject: regUser, Audience: token.AudienceList{"test"},
			Expiration: now.Add(5 * time.Minute).Unix(), NotBefore: now.Add(-time.Second).Unix(), IssuedAt: now.Unix(),
			JWTID: fmt.Sprint(now.UnixNano()), Access: access}).Serialize()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"token": raw, "expires_in": 300})
	}))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{ca.serverCert(t)}, MinVersion: tls.VersionTLS12}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	realm := "https://localhost:" + ts.URL[strings.LastIndex(ts.URL, ":")+1:] + "/token"
	return newInProcessRegistryAuth(t, ca, configuration.Auth{"token": configuration.Parameters{
		"realm": realm, "service": "test", "issuer": "test-issuer", "rootcertbundle": ca.file}})
}

// TestLoginBearerToken: gantry login against a registry with Bearer token
// auth (the usual hosted registry) checks the password at the token
// server: a wrong one exits 3 and saves nothing, the right one is saved and
// pushes.
func TestLoginBearerToken(t *testing.T) {
	ca := newTestCA(t)
	reg := tokenRegistry(t, ca)
	cfgDir := isolateDockerConfig(t)
	cfgFile := filepath.Join(cfgDir, "config.json")
	env := map[string]string{"DOCKER_CONFIG": cfgDir}

	code, _, stderr := gantryEnv(t, env, "wrong\n", "login", reg.host, "-u", regUser, "--password-stdin", "--ca-cert", ca.file)
	if code != exitRegistry || !strings.Contains(lastLine(stderr), "401 unauthorized") || !strings.Contains(lastLine(stderr), reg.host) {
		t.Errorf("wrong password: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(cfgFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed login wrote %s", cfgFile)
	}
	code, stdout, stderr := gantryEnv(t, env, regPassword+"\n", "login", reg.host, "-u", regUser, "--password-stdin", "--ca-cert", ca.file)
	if code != 0 {
		t.Fatalf("login: exit %d: %s", code, stderr)
	}
	assertNoSecret(t, regPassword, map[string]string{"login stdout": stdout, "login stderr": stderr})
	work := t.TempDir()
	code, stdout, stderr = gantryEnv(t, env, "", "append", "--base", "oci:"+nginxBase, "--layer", siteDir(t)+":/srv", "--user", "app:1001",
		"--push", reg.host+"/web/bearer:v1", "--ca-cert", ca.file, "--json", "-v", "--digest-file", filepath.Join(work, "digests"), "--cache-dir", filepath.Join(work, "cache"))
	if code != 0 {
		t.Fatalf("push: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, `authorization="Bearer [redacted]"`) {
		t.Errorf("-v logged no redacted Bearer header:\n%s", stderr)
	}
	assertNoSecret(t, regPassword, map[string]string{"stdout": stdout, "stderr": stderr}, work)
	checkDigestFile(t, filepath.Join(work, "digests"), []string{reg.host + "/web/bearer:v1"}, ca.clientOptions(true)...)
}
