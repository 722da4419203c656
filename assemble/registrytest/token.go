package registrytest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/registry/auth/token"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TokenServer is a Docker token server (the distribution token spec) over
// TLS: it checks Basic credentials and issues ES256 JWTs whose x5c header
// holds a signing certificate of its CA, granting each user the actions
// it may do (of those asked for) on any resource. Requests over plain
// HTTP or for another service are refused.
type TokenServer struct {
	Realm   string // https://localhost:PORT/token
	Service string // the service a registry names in its challenge
	Issuer  string // the issuer of its tokens
	CA      *CA

	users   map[string]string   // user → password
	allowed map[string][]string // user → actions, where set by Allow

	mu     sync.Mutex
	issued []string // "user scope..." for each token issued
	tokens []string
	denied int
}

// TokenOption configures NewTokenServer.
type TokenOption func(*TokenServer)

// Allow grants user only actions ("pull", "push", "*"); a user named in
// no Allow may pull and push.
func Allow(user string, actions ...string) TokenOption {
	return func(ts *TokenServer) { ts.allowed[user] = actions }
}

// NewTokenServer starts a token server for users (name → password), with a
// server and a signing certificate from ca. The realm names localhost, not
// 127.0.0.1: go-containerregistry refuses a realm on a loopback IP other
// than the registry's own host:port (its SSRF protection).
func NewTokenServer(t testing.TB, ca *CA, users map[string]string, opts ...TokenOption) *TokenServer {
	t.Helper()
	ts := &TokenServer{Service: "test", Issuer: "test-issuer", CA: ca, users: users, allowed: map[string][]string{}}
	for _, o := range opts {
		o(ts)
	}
	signing := ca.SigningCert(t)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: signing.PrivateKey},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("x5c", []string{base64.StdEncoding.EncodeToString(signing.Leaf.Raw)}))
	if err != nil {
		t.Fatal(err)
	}
	host := Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ts.serve(w, r, signer) }), ca)
	ts.Realm = "https://localhost:" + host[strings.LastIndex(host, ":")+1:] + "/token"
	return ts
}

func (ts *TokenServer) serve(w http.ResponseWriter, r *http.Request, signer jose.Signer) {
	if r.TLS == nil {
		http.Error(w, "TLS only", http.StatusBadRequest)
		return
	}
	user, pw, ok := r.BasicAuth()
	if want, known := ts.users[user]; !ok || !known || want != pw {
		ts.mu.Lock()
		ts.denied++
		ts.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"wrong user name or password"}]}`))
		return
	}
	if r.URL.Query().Get("service") != ts.Service {
		http.Error(w, "unknown service", http.StatusBadRequest)
		return
	}
	may, limited := ts.allowed[user]
	if !limited {
		may = []string{"pull", "push"}
	}
	var access []*token.ResourceActions
	for _, scope := range r.URL.Query()["scope"] {
		for _, s := range strings.Fields(scope) {
			typ, rest, ok := strings.Cut(s, ":")
			i := strings.LastIndex(rest, ":")
			if !ok || i < 0 {
				continue
			}
			var grant []string
			for _, a := range strings.Split(rest[i+1:], ",") {
				if slices.Contains(may, a) {
					grant = append(grant, a)
				}
			}
			access = append(access, &token.ResourceActions{Type: typ, Name: rest[:i], Actions: grant})
		}
	}
	jti := make([]byte, 8)
	rand.Read(jti)
	now := time.Now()
	raw, err := jwt.Signed(signer).Claims(token.ClaimSet{
		Issuer: ts.Issuer, Subject: user, Audience: token.AudienceList{ts.Service},
		Expiration: now.Add(5 * time.Minute).Unix(), NotBefore: now.Add(-time.Second).Unix(), IssuedAt: now.Unix(),
		JWTID: hex.EncodeToString(jti), Access: access,
	}).Serialize()
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
}

// Issued is "USER SCOPE..." for each token issued so far.
func (ts *TokenServer) Issued() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.issued...)
}

// Tokens are the tokens issued so far, for checking that none is logged.
func (ts *TokenServer) Tokens() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.tokens...)
}

// Denied is how many token requests had wrong or no credentials.
func (ts *TokenServer) Denied() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.denied
}
