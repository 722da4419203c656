// Package registry talks to registries: a Client holds the keychain and the
// transport (retries, TLS, mirrors, user agent, logging with secrets
// redacted), classifies failures into one-line errors with a hint, checks
// credentials and push permission, reads byte ranges of blobs, and runs the
// upload sessions that take a layer while it is built.
package registry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/assemble/progress"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Options configure a Client.
type Options struct {
	// Insecure allows plain HTTP and unverified TLS for every registry
	// (localhost and 127.0.0.1 are always allowed plain HTTP).
	Insecure bool
	// Keychain finds registry credentials (default: ~/.docker/config.json
	// and its credential helpers).
	Keychain authn.Keychain
	// Transport is the base HTTP transport (default: a tuned clone of
	// remote.DefaultTransport, trusting the system roots and CACert).
	Transport http.RoundTripper
	// CACert is a PEM file of extra CA certificates to trust.
	CACert string
	// Credentials, when set, are used for their registry before Keychain.
	Credentials *Credentials
	// Mirrors maps a registry (docker.io) to a mirror host[/prefix] that
	// bases are pulled through; references keep naming the original.
	Mirrors map[string]string
	// Retry bounds retries of registry requests.
	Retry RetryPolicy
	// IdleTimeout fails a request when no byte has moved on its connection,
	// either way, for this long (default 30s): a registry that stops
	// answering or reading. It is set on the default Transport's
	// connections; a Transport given here is used as it is.
	IdleTimeout time.Duration
	// Jobs is the number of concurrent uploads (default 8).
	Jobs int
	// Logger receives log lines (default: discard).
	Logger *slog.Logger
	// Progress receives blobs found or mounted (default: none).
	Progress progress.Progress
	// UserAgent names gantry to registries.
	UserAgent string
}

// Client is how gantry reaches registries. It is safe for concurrent use
// and holds no per-run state but registries' answers to pings, for a
// minute (pingCache).
type Client struct {
	keychain  authn.Keychain
	transport http.RoundTripper
	base      http.RoundTripper // under the retries and logging
	insecure  bool
	mirrors   map[string]string
	retry     RetryPolicy
	jobs      int
	userAgent string
	log       *slog.Logger
	progress  progress.Progress
}

// New makes a Client.
func New(o Options) (*Client, error) {
	if o.Keychain == nil {
		o.Keychain = authn.DefaultKeychain
	}
	if c := o.Credentials; c != nil {
		o.Keychain = staticKeychain{creds: *c, next: o.Keychain}
	}
	if o.Jobs <= 0 {
		o.Jobs = 8
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Progress = progress.Or(o.Progress)
	if o.UserAgent == "" {
		o.UserAgent = "gantry"
	}
	t, base, err := newTransport(o)
	if err != nil {
		return nil, err
	}
	return &Client{
		keychain: o.Keychain, transport: t, base: base, insecure: o.Insecure, mirrors: o.Mirrors, retry: o.Retry.withDefaults(),
		jobs: o.Jobs, userAgent: o.UserAgent, log: o.Logger, progress: o.Progress,
	}, nil
}

// Keychain is where the client finds credentials.
func (c *Client) Keychain() authn.Keychain { return c.keychain }

// Transport is the client's HTTP transport (retries, TLS, logging).
func (c *Client) Transport() http.RoundTripper { return c.transport }

// CloseIdleConnections closes the connections kept alive for the next
// request, and with them their goroutines; call it when done.
func (c *Client) CloseIdleConnections() {
	if t, ok := c.base.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

// Progress is where the client reports blobs.
func (c *Client) Progress() progress.Progress { return c.progress }

// Log is the client's logger.
func (c *Client) Log() *slog.Logger { return c.log }

// NameOptions are the options for parsing references to registries.
func (c *Client) NameOptions() []name.Option {
	if c.insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

// ParseReference parses a reference with the client's name options.
func (c *Client) ParseReference(ref string) (name.Reference, error) {
	return name.ParseReference(ref, c.NameOptions()...)
}

// RemoteOptions are go-containerregistry's options for a request made
// with this client.
func (c *Client) RemoteOptions(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(c.keychain),
		remote.WithTransport(c.transport),
		remote.WithUserAgent(c.userAgent),
		remote.WithJobs(c.jobs),
		// gantry's transport retries answers (honouring Retry-After);
		// go-containerregistry retries dropped connections and restarts
		// failed uploads from a new session.
		remote.WithRetryStatusCodes(),
		remote.WithRetryBackoff(remote.Backoff{Duration: c.retry.Base, Factor: 2, Jitter: 0.25, Steps: 4}),
	}
}

// authorized is an HTTP client for repo with a token for the action scope
// on repo and for any further scopes (e.g. pulling from another
// repository to mount a blob from it).
func (c *Client) authorized(ctx context.Context, repo name.Repository, scope string, more ...string) (*http.Client, error) {
	auth, err := authn.Resolve(ctx, c.keychain, repo)
	if err != nil {
		return nil, err
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, c.transport, append([]string{repo.Scope(scope)}, more...))
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: rt}, nil
}

// Get reads the descriptor of ref, through a mirror when one is configured
// for its registry (fromFile, the config file's mirrors, then the client's
// own, which win), falling back to the registry itself.
func (c *Client) Get(ctx context.Context, ref name.Reference, fromFile map[string]string) (*remote.Descriptor, error) {
	if m, ok := c.mirrorOf(ref, fromFile); ok {
		desc, err := remote.Get(m, c.RemoteOptions(ctx)...)
		if err == nil {
			c.log.Info("base pulled through mirror", "base", ref.String(), "mirror", m.String())
			return desc, nil
		}
		c.log.Warn("mirror failed; pulling from the registry itself", "base", ref.String(), "mirror", m.String(), "error", Classify(err, m.Context().String()))
	}
	desc, err := remote.Get(ref, c.RemoteOptions(ctx)...)
	if err != nil {
		return nil, Classify(err, ref.Context().String())
	}
	return desc, nil
}

func (c *Client) mirrorOf(r name.Reference, fromFile map[string]string) (name.Reference, bool) {
	reg := r.Context().RegistryStr()
	var mirror string
	for _, m := range []map[string]string{fromFile, c.mirrors} {
		for k, v := range m {
			if SameRegistry(k, reg) {
				mirror = v
			}
		}
	}
	if mirror == "" {
		return nil, false
	}
	s := strings.TrimSuffix(mirror, "/") + "/" + r.Context().RepositoryStr()
	if d, ok := r.(name.Digest); ok {
		s += "@" + d.DigestStr()
	} else {
		s += ":" + r.Identifier()
	}
	m, err := c.ParseReference(s)
	if err != nil {
		c.log.Warn("ignoring mirror", "mirror", mirror, "error", err)
		return nil, false
	}
	return m, true
}

// Tail reads the last n bytes of a layer's compressed blob: with an HTTP
// range request for a registry layer, else by streaming a local blob.
func (c *Client) Tail(ctx context.Context, l v1.Layer, n int64) ([]byte, error) {
	size, err := l.Size()
	if err != nil {
		return nil, err
	}
	if ml, ok := l.(*remote.MountableLayer); ok {
		return c.rangeTail(ctx, ml, size, n)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if _, err := io.CopyN(io.Discard, rc, size-n); err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(rc, n))
}

func (c *Client) rangeTail(ctx context.Context, ml *remote.MountableLayer, size, n int64) ([]byte, error) {
	repo := ml.Reference.Context()
	dig, err := ml.Digest()
	if err != nil {
		return nil, err
	}
	client, err := c.authorized(ctx, repo, transport.PullScope)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, blobURL(repo, dig.String()), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", size-n, size-1))
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		return nil, fmt.Errorf("range request for %s: %s", dig, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, n))
}

func blobURL(repo name.Repository, digest string) string {
	return fmt.Sprintf("%s://%s/v2/%s/blobs/%s", repo.Registry.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), digest)
}

func uploadsURL(repo name.Repository) string {
	return fmt.Sprintf("%s://%s/v2/%s/blobs/uploads/", repo.Registry.Scheme(), repo.RegistryStr(), repo.RepositoryStr())
}

// CheckPush checks that the client may push to repo by starting an upload
// session and deleting it again, both before it returns (unlike
// go-containerregistry's CheckPushPermission, which leaves a goroutine
// cancelling the session behind).
func (c *Client) CheckPush(ctx context.Context, repo name.Repository) error {
	client, err := c.authorized(ctx, repo, transport.PushScope)
	if err != nil {
		return Classify(err, repo.String())
	}
	resp, err := send(ctx, client, http.MethodPost, uploadsURL(repo), http.StatusAccepted)
	if err != nil {
		return Classify(err, repo.String())
	}
	// a failure leaves a session the registry expires on its own, so it
	// is only logged
	if loc, err := resolve(resp.Request.URL, resp.Header.Get("Location")); err == nil {
		if err := deleteAt(context.WithoutCancel(ctx), client, loc); err != nil {
			c.log.Debug("cancelling an upload session failed", "url", redactURL(loc), "error", err)
		}
	}
	return nil
}

// send makes a request without a body and checks that the answer has one
// of the statuses want (else it is the registry's error); the answer's
// body is closed.
func send(ctx context.Context, client *http.Client, method, url string, want ...int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, want...); err != nil {
		return nil, err
	}
	return resp, nil
}

// CheckLogin asks registry reg's /v2/ endpoint with the credentials, the
// way docker login does (Basic, or a Bearer token from the registry's
// realm).
func (c *Client) CheckLogin(ctx context.Context, reg, user, password string) error {
	r, err := name.NewRegistry(reg, c.NameOptions()...)
	if err != nil {
		return fmt.Errorf("%q is not a registry host", reg)
	}
	auth := authn.FromConfig(authn.AuthConfig{Username: user, Password: password})
	rt, err := transport.NewWithContext(ctx, r, auth, c.transport, []string{r.Scope("")})
	if err != nil {
		return fmt.Errorf("logging in to %s: %w", reg, Classify(err, reg))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.Scheme()+"://"+r.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return fmt.Errorf("logging in to %s: %w", reg, Classify(err, reg))
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &Error{Err: fmt.Errorf("%d %s on %s", resp.StatusCode, strings.ToLower(http.StatusText(resp.StatusCode)), reg), Hint: "check the user name and password or token"}
	}
	return nil
}
