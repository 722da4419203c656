package assemble

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"

	"github.com/gantry-dev/gantry/layers"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// streamer uploads a new layer to the registry while it is being built, so
// compressing and uploading overlap instead of following each other. The
// bytes go into an upload session that is committed (PUT ?digest=) only when
// the registry sink writes the image, after every gate has passed; a run
// that fails cancels its sessions, so nothing shows in the registry. Any
// failure here only costs the overlap: the pusher then uploads as usual.
type streamer struct {
	e       *Engine
	repoFor func(ImageSpec) (name.Repository, bool)

	mu         sync.Mutex
	transports map[string]http.RoundTripper
	pending    map[string][]*upload // by repository, built and not committed
	committed  int                  // layers that became blobs this way
}

func newStreamer(e *Engine, repoFor func(ImageSpec) (name.Repository, bool)) *streamer {
	return &streamer{e: e, repoFor: repoFor, transports: map[string]http.RoundTripper{}, pending: map[string][]*upload{}}
}

// upload is one layer's upload session; it starts at the first write.
type upload struct {
	st    *streamer
	ctx   context.Context
	repo  name.Repository
	pw    *io.PipeWriter
	done  chan struct{}
	loc   string // the session's location after the PATCH
	err   error
	dig   v1.Hash
	begun bool
}

// open returns the tee for a layer of image s, or nil when s does not go to
// a registry.
func (st *streamer) open(ctx context.Context, s ImageSpec) *upload {
	if st == nil {
		return nil
	}
	repo, ok := st.repoFor(s)
	if !ok {
		return nil
	}
	return &upload{st: st, ctx: ctx, repo: repo}
}

func (st *streamer) transport(ctx context.Context, repo name.Repository) (http.RoundTripper, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if t, ok := st.transports[repo.String()]; ok {
		return t, nil
	}
	auth, err := authn.Resolve(ctx, st.e.opts.Keychain, repo)
	if err != nil {
		return nil, err
	}
	t, err := transport.NewWithContext(ctx, repo.Registry, auth, st.e.opts.Transport, []string{repo.Scope(transport.PushScope)})
	if err != nil {
		return nil, err
	}
	st.transports[repo.String()] = t
	return t, nil
}

// Write starts the session on the first call, then streams into it.
func (u *upload) Write(p []byte) (int, error) {
	if !u.begun {
		u.begun = true
		if err := u.begin(); err != nil {
			u.err = err
		}
	}
	if u.err != nil {
		return 0, u.err
	}
	return u.pw.Write(p)
}

func (u *upload) begin() error {
	t, err := u.st.transport(u.ctx, u.repo)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: t}
	base := fmt.Sprintf("%s://%s/v2/%s/blobs/uploads/", u.repo.Registry.Scheme(), u.repo.RegistryStr(), u.repo.RepositoryStr())
	req, err := http.NewRequestWithContext(u.ctx, http.MethodPost, base, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("starting an upload: %s", resp.Status)
	}
	loc, err := resolve(req.URL, resp.Header.Get("Location"))
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	u.pw, u.done, u.loc = pw, make(chan struct{}), loc
	go func() {
		defer close(u.done)
		req, err := http.NewRequestWithContext(u.ctx, http.MethodPatch, loc, pr)
		if err != nil {
			pr.CloseWithError(err)
			u.err = err
			return
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := client.Do(req)
		if err != nil {
			pr.CloseWithError(err)
			u.err = err
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusNoContent {
			err := fmt.Errorf("streaming a layer: %s", resp.Status)
			pr.CloseWithError(err)
			u.err = err
			return
		}
		if u.loc, err = resolve(req.URL, resp.Header.Get("Location")); err != nil {
			u.err = err
		}
	}()
	return nil
}

func resolve(base *url.URL, loc string) (string, error) {
	if loc == "" {
		return "", fmt.Errorf("the registry gave no upload location")
	}
	u, err := base.Parse(loc)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// finish ends the stream of layer l (built, or found in the cache, in
// which case nothing was streamed) and keeps the session for commit.
func (st *streamer) finish(u *upload, l *layers.Layer) {
	if u == nil || !u.begun {
		return
	}
	if u.pw != nil {
		if l == nil {
			u.pw.CloseWithError(fmt.Errorf("the layer failed to build"))
		} else {
			u.pw.Close()
		}
		<-u.done
	}
	if u.err != nil || l == nil {
		st.e.log.Debug("streaming upload dropped; the layer is uploaded after the build", "repo", u.repo.String(), "error", u.err)
		st.cancel(u)
		return
	}
	u.dig, _ = l.Digest()
	st.mu.Lock()
	st.pending[u.repo.String()] = append(st.pending[u.repo.String()], u)
	st.mu.Unlock()
}

// commit turns the sessions streamed for repo into blobs. A failure is not
// an error: the pusher uploads what is missing.
func (st *streamer) commit(ctx context.Context, repo name.Repository) {
	if st == nil {
		return
	}
	st.mu.Lock()
	ups := st.pending[repo.String()]
	delete(st.pending, repo.String())
	st.mu.Unlock()
	for _, u := range ups {
		t, err := st.transport(ctx, repo)
		if err == nil {
			err = u.put(ctx, t)
		}
		if err != nil {
			st.e.log.Debug("committing a streamed layer failed; uploading it again", "repo", repo.String(), "digest", u.dig, "error", err)
			continue
		}
		st.mu.Lock()
		st.committed++
		st.mu.Unlock()
		st.e.opts.Progress.Event("blob "+shortDigest(u.dig.Hex), "uploaded while it was built")
	}
}

func (u *upload) put(ctx context.Context, t http.RoundTripper) error {
	p, err := url.Parse(u.loc)
	if err != nil {
		return err
	}
	q := p.Query()
	q.Set("digest", u.dig.String())
	p.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, p.String(), nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: t}).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("committing %s: %s", u.dig, resp.Status)
	}
	return nil
}

// abort cancels every session not committed.
func (st *streamer) abort() {
	if st == nil {
		return
	}
	st.mu.Lock()
	var ups []*upload
	for _, us := range st.pending {
		ups = append(ups, us...)
	}
	st.pending = map[string][]*upload{}
	st.mu.Unlock()
	for _, u := range ups {
		st.cancel(u)
	}
}

func (st *streamer) cancel(u *upload) {
	if u.loc == "" {
		return
	}
	t, err := st.transport(context.Background(), u.repo)
	if err != nil {
		return
	}
	req, err := http.NewRequest(http.MethodDelete, u.loc, nil)
	if err != nil {
		return
	}
	if resp, err := (&http.Client{Transport: t}).Do(req); err == nil {
		resp.Body.Close()
	}
}
