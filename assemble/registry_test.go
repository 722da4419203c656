package assemble_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/auth/token"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"
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
	return newTestRegistryWith(t, registryOptions{})
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

// testCA is a certificate authority made for one test, with its
// certificate in a PEM file (for Options.CACert and --ca-cert).
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gantry test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, file: file}
}

var testCertSerial atomic.Int64

// issue makes a leaf certificate: for 127.0.0.1 and localhost when server,
// else for signing (tokens).
func (ca *testCA) issue(t *testing.T, cn string, server bool) (tls.Certificate, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(testCertSerial.Add(1) + 1),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
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
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, cert
}

// startServer starts h on 127.0.0.1, over TLS with a certificate from ca
// when ca is set, and returns its host:port.
func startServer(t *testing.T, h http.Handler, ca *testCA) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS handshakes refused on purpose
	if ca != nil {
		cert, _ := ca.issue(t, "127.0.0.1", true)
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	_, host, _ := strings.Cut(srv.URL, "://")
	return host
}

// registryOptions configure newTestRegistryWith.
type registryOptions struct {
	Auth configuration.Auth // htpasswd or token, or nil for none
	CA   *testCA            // serve TLS with a certificate from CA
}

// newTestRegistryWith starts the registry with authentication and TLS as o
// says. Each request is recorded as "METHOD uri", with " range=..." for a
// range request and " tls" when it came over TLS.
func newTestRegistryWith(t *testing.T, o registryOptions) *testRegistry {
	t.Helper()
	logrus.SetOutput(io.Discard)
	cfg := &configuration.Configuration{}
	cfg.Storage = configuration.Storage{
		"filesystem": configuration.Parameters{"rootdirectory": t.TempDir()},
		"delete":     configuration.Parameters{"enabled": true},
	}
	cfg.Log.AccessLog.Disabled = true
	cfg.Auth = o.Auth
	cfg.Catalog.MaxEntries = 1000 // for checkRegistryConsistent
	cfg.HTTP.Secret = "gantry-test-secret"
	app := handlers.NewApp(context.Background(), cfg)
	r := &testRegistry{}
	r.host = startServer(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
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
		app.ServeHTTP(w, req)
	}), o.CA)
	return r
}

// htpasswdAuth writes an htpasswd file (bcrypt) for user and password and
// returns the registry configuration that uses it.
func htpasswdAuth(t *testing.T, users map[string]string) configuration.Auth {
	t.Helper()
	var b strings.Builder
	for u, p := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	file := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return configuration.Auth{"htpasswd": configuration.Parameters{"realm": "gantry-test", "path": file}}
}

// clientTransport trusts ca (when set), for test clients reading the
// registry directly.
func clientTransport(ca *testCA) http.RoundTripper {
	tr := remote.DefaultTransport.(*http.Transport).Clone()
	if ca != nil {
		pool := x509.NewCertPool()
		pool.AddCert(ca.cert)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return tr
}

// pushLayoutBaseWith copies the one image or index of an OCI layout to ref,
// with remote options (credentials, a transport trusting the test CA).
func pushLayoutBaseWith(t *testing.T, dir, ref string, opts ...remote.Option) {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	d := im.Manifests[0]
	if d.MediaType.IsIndex() {
		idx, err := top.ImageIndex(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		err = remote.WriteIndex(r, idx, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	img, err := top.Image(d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, opts...); err != nil {
		t.Fatal(err)
	}
}

// tagsOf lists repo's tags on the registry at host, read directly (not
// through a fault proxy); none when the repository does not exist.
func tagsOf(t *testing.T, repo string, opts ...remote.Option) []string {
	t.Helper()
	r, err := name.NewRepository(repo)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(r, opts...)
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return nil
	}
	if err != nil {
		t.Fatalf("listing tags of %s: %v", repo, err)
	}
	return tags
}

// checkRegistryConsistent walks every tag of every repository on the
// registry at host (made by newTestRegistryWith, whose catalog is on) (read directly, anonymously, over plain HTTP): each tag
// resolves to a manifest or index whose manifests, configs and layers all
// exist. It returns repository:tag → digest.
func checkRegistryConsistent(t *testing.T, host string) map[string]string {
	t.Helper()
	resp, err := http.Get("http://" + host + "/v2/_catalog?n=100")
	if err != nil {
		t.Fatal(err)
	}
	var cat struct{ Repositories []string }
	err = json.NewDecoder(resp.Body).Decode(&cat)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || len(cat.Repositories) == 0 || len(cat.Repositories) == 100 {
		t.Fatalf("catalog: %s, %d repositories, %v", resp.Status, len(cat.Repositories), err)
	}
	blobExists := func(repo string, d v1.Hash) bool {
		req, _ := http.NewRequest(http.MethodHead, "http://"+host+"/v2/"+repo+"/blobs/"+d.String(), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	out := map[string]string{}
	for _, repo := range cat.Repositories {
		for _, tag := range tagsOf(t, host+"/"+repo) {
			ref, err := name.NewTag(host + "/" + repo + ":" + tag)
			if err != nil {
				t.Fatal(err)
			}
			desc, err := remote.Get(ref)
			if err != nil {
				t.Errorf("tag %s does not resolve: %v", ref, err)
				continue
			}
			out[repo+":"+tag] = desc.Digest.String()
			var images []v1.Hash
			if desc.MediaType.IsIndex() {
				idx, err := desc.ImageIndex()
				if err != nil {
					t.Fatal(err)
				}
				im, err := idx.IndexManifest()
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range im.Manifests {
					images = append(images, m.Digest)
				}
			} else {
				images = append(images, desc.Digest)
			}
			for _, d := range images {
				img, err := remote.Image(ref.Context().Digest(d.String()))
				if err != nil {
					t.Errorf("tag %s: manifest %s is missing: %v", ref, d, err)
					continue
				}
				m, err := img.Manifest()
				if err != nil {
					t.Errorf("tag %s: manifest %s: %v", ref, d, err)
					continue
				}
				for _, b := range append([]v1.Descriptor{m.Config}, m.Layers...) {
					if !blobExists(repo, b.Digest) {
						t.Errorf("tag %s: manifest %s names blob %s, which is missing", ref, d, b.Digest)
					}
				}
			}
		}
	}
	return out
}

// lockedBuffer is a bytes.Buffer safe for concurrent writes (log handlers
// of goroutines that outlive a run).
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
