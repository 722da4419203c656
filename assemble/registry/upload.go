package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/assemble/progress"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Uploads are one run's upload sessions for layers streamed while they
// are built, so compressing and uploading overlap instead of following each
// other. A session is committed (PUT ?digest=) only by Commit, after every
// gate has passed; Abort cancels the rest, so a failed run leaves no blob
// behind. Any failure here only costs the overlap: the pusher then uploads
// as usual. A session's PATCH runs on its own goroutine from its first
// Write until Commit or Abort (one of which every run calls) has waited
// for its answer.
type Uploads struct {
	c *Client

	mu        sync.Mutex
	clients   map[string]*http.Client // by repository
	pending   map[string][]*Upload    // by repository, built and not committed
	committed int                     // layers that became blobs this way
	left      []error                 // sessions that could not be cancelled, not yet reported
}

// NewUploads starts a run's set of upload sessions.
func (c *Client) NewUploads() *Uploads {
	return &Uploads{c: c, clients: map[string]*http.Client{}, pending: map[string][]*Upload{}}
}

// Committed counts the layers that became blobs through a streamed upload.
func (us *Uploads) Committed() int {
	us.mu.Lock()
	defer us.mu.Unlock()
	return us.committed
}

// Upload is one layer's upload session; it starts at the first Write.
type Upload struct {
	us   *Uploads
	ctx  context.Context
	repo name.Repository

	begun bool // only the writer's goroutine touches begun and pw
	pw    *io.PipeWriter
	done  chan struct{} // closed when the PATCH has returned

	mu  sync.Mutex // guards what the PATCH goroutine writes
	loc string     // the session's latest location
	err error
	dig v1.Hash
}

// Open returns the writer for a layer going to repo.
func (us *Uploads) Open(ctx context.Context, repo name.Repository) *Upload {
	return &Upload{us: us, ctx: ctx, repo: repo}
}

func (us *Uploads) client(ctx context.Context, repo name.Repository) (*http.Client, error) {
	us.mu.Lock()
	defer us.mu.Unlock()
	if c, ok := us.clients[repo.String()]; ok {
		return c, nil
	}
	c, err := us.c.authorized(ctx, repo, transport.PushScope)
	if err != nil {
		return nil, err
	}
	us.clients[repo.String()] = c
	return c, nil
}

func (u *Upload) fail(err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err == nil {
		u.err = err
	}
}

func (u *Upload) failed() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

// Write starts the session on the first call, then streams into it.
func (u *Upload) Write(p []byte) (int, error) {
	if !u.begun {
		u.begun = true
		if err := u.begin(); err != nil {
			u.fail(err)
		}
	}
	if err := u.failed(); err != nil {
		return 0, err
	}
	n, err := u.pw.Write(p)
	if err != nil {
		// The PATCH stopped reading: say why it ended rather than that the
		// pipe is closed (the transport closes the body before it returns).
		<-u.done
		if ferr := u.failed(); ferr != nil {
			err = ferr
		}
	}
	return n, err
}

func (u *Upload) begin() error {
	client, err := u.us.client(u.ctx, u.repo)
	if err != nil {
		return err
	}
	resp, err := send(u.ctx, client, http.MethodPost, uploadsURL(u.repo), http.StatusAccepted)
	if err != nil {
		return fmt.Errorf("starting an upload: %w", err)
	}
	loc, err := resolve(resp.Request.URL, resp.Header.Get("Location"))
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	u.pw, u.done = pw, make(chan struct{})
	u.mu.Lock()
	u.loc = loc
	u.mu.Unlock()
	go u.patch(client, loc, pr)
	return nil
}

// patch sends what the writer writes as one PATCH.
func (u *Upload) patch(client *http.Client, loc string, pr *io.PipeReader) {
	defer close(u.done)
	err := func() error {
		req, err := http.NewRequestWithContext(u.ctx, http.MethodPatch, loc, pr)
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusNoContent {
			return fmt.Errorf("streaming a layer: %s", resp.Status)
		}
		next, err := resolve(req.URL, resp.Header.Get("Location"))
		if err != nil {
			return err
		}
		u.mu.Lock()
		u.loc = next
		u.mu.Unlock()
		return nil
	}()
	if err != nil {
		u.fail(err)
		pr.CloseWithError(err)
	}
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

// Finish ends the stream: built is the layer's digest, or nil when the
// layer failed to build (or came from the cache, and nothing was
// streamed). A whole stream is kept for Commit, which waits for the
// registry's answer to it: a registry that syncs the blob to disk before
// it answers does so while the build goes on. Anything else is cancelled.
func (u *Upload) Finish(built *v1.Hash) {
	if !u.begun {
		return
	}
	if u.pw != nil && built != nil {
		u.pw.Close()
		u.mu.Lock()
		u.dig = *built
		u.mu.Unlock()
		us := u.us
		us.mu.Lock()
		us.pending[u.repo.String()] = append(us.pending[u.repo.String()], u)
		us.mu.Unlock()
		return
	}
	if u.pw != nil {
		u.pw.CloseWithError(fmt.Errorf("the layer failed to build"))
	}
	u.us.drop(u)
}

// drop cancels u's session once its request has returned.
func (us *Uploads) drop(u *Upload) {
	u.wait()
	us.c.log.Debug("streaming upload dropped; the layer is uploaded after the build", "repo", u.repo.String(), "error", u.failed())
	us.cancel(u)
}

// wait returns once u's PATCH has (at once if it never started).
func (u *Upload) wait() {
	if u.done != nil {
		<-u.done
	}
}

// Commit turns the sessions streamed for repo into blobs, once their
// streams are answered. A failure is not an error: the pusher uploads what
// is missing.
func (us *Uploads) Commit(ctx context.Context, repo name.Repository) {
	us.mu.Lock()
	ups := us.pending[repo.String()]
	delete(us.pending, repo.String())
	us.mu.Unlock()
	for _, u := range ups {
		u.wait()
		if u.failed() != nil {
			us.drop(u)
			continue
		}
		client, err := us.client(ctx, repo)
		if err == nil {
			err = u.put(ctx, client)
		}
		if err != nil {
			us.c.log.Debug("committing a streamed layer failed; uploading it again", "repo", repo.String(), "digest", u.dig, "error", err)
			continue
		}
		us.mu.Lock()
		us.committed++
		us.mu.Unlock()
		us.c.progress.Event("blob "+progress.Short(u.dig.Hex), "uploaded while it was built")
	}
}

func (u *Upload) put(ctx context.Context, client *http.Client) error {
	u.mu.Lock()
	loc, dig := u.loc, u.dig
	u.mu.Unlock()
	p, err := url.Parse(loc)
	if err != nil {
		return err
	}
	q := p.Query()
	q.Set("digest", dig.String())
	p.RawQuery = q.Encode()
	if _, err := send(ctx, client, http.MethodPut, p.String(), http.StatusCreated); err != nil {
		return fmt.Errorf("committing %s: %w", dig, err)
	}
	return nil
}

// Abort cancels every session not committed. Its error, if any, says how
// many sessions of the run (cancelled here or when their layer's stream
// was dropped) could not be cancelled since the last Abort, and why the
// first could not: they are left to the registry, which expires them on
// its own. It is a note for the run's final message, not a failure.
func (us *Uploads) Abort() error {
	us.mu.Lock()
	var ups []*Upload
	for _, u := range us.pending {
		ups = append(ups, u...)
	}
	us.pending = map[string][]*Upload{}
	us.mu.Unlock()
	for _, u := range ups {
		u.wait()
		us.cancel(u)
	}
	us.mu.Lock()
	left := us.left
	us.left = nil
	us.mu.Unlock()
	switch len(left) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("1 upload session could not be cancelled; the registry expires it: %w", left[0])
	}
	return fmt.Errorf("%d upload sessions could not be cancelled; the registry expires them: %w", len(left), left[0])
}

// cancel deletes u's session, with a bounded wait that an interrupt does
// not cut short; a session it cannot delete is counted for Abort.
func (us *Uploads) cancel(u *Upload) {
	u.mu.Lock()
	loc := u.loc
	u.mu.Unlock()
	if loc == "" {
		return
	}
	ctx, stop := context.WithTimeout(context.WithoutCancel(u.ctx), 10*time.Second)
	defer stop()
	err := us.deleteSession(ctx, u.repo, loc)
	if err != nil {
		us.c.log.Debug("cancelling an upload session failed", "url", redactURL(loc), "error", err)
		us.mu.Lock()
		us.left = append(us.left, Classify(err, u.repo.String()))
		us.mu.Unlock()
	}
}

// deleteSession deletes the session at loc, its latest known location.
// When a PATCH was cut short (an interrupt, a dropped connection), the
// registry kept part of it, and loc's state no longer matches the
// session: CNCF distribution checks the state's offset and refuses the
// DELETE (416, or 404 BLOB_UPLOAD_INVALID) and keeps the session. A GET
// of the session's status is answered without checking the state, with
// the session's current location, where the DELETE then succeeds. The
// registry may still be taking in the cut-short PATCH when it is asked,
// so the status and DELETE are tried a few times; a session the GET does
// not know (404) is gone already.
func (us *Uploads) deleteSession(ctx context.Context, repo name.Repository, loc string) error {
	client, err := us.client(ctx, repo)
	if err != nil {
		return err
	}
	err = deleteAt(ctx, client, loc)
	for try := 0; err != nil && try < 3; try++ {
		if try > 0 {
			if serr := sleep(ctx, time.Duration(try)*100*time.Millisecond); serr != nil {
				return err
			}
		}
		resp, serr := send(ctx, client, http.MethodGet, loc, http.StatusNoContent, http.StatusOK)
		var te *transport.Error
		switch {
		case errors.As(serr, &te) && te.StatusCode == http.StatusNotFound:
			return nil
		case serr != nil:
			return fmt.Errorf("%w (asking for the session's status: %w)", err, serr)
		}
		cur, rerr := resolve(resp.Request.URL, resp.Header.Get("Location"))
		if rerr != nil {
			return fmt.Errorf("%w (the session's status: %w)", err, rerr)
		}
		err = deleteAt(ctx, client, cur)
	}
	return err
}

// deleteAt cancels the upload session at loc.
func deleteAt(ctx context.Context, client *http.Client, loc string) error {
	_, err := send(ctx, client, http.MethodDelete, loc, http.StatusNoContent, http.StatusAccepted, http.StatusOK)
	if err != nil {
		return fmt.Errorf("cancelling the upload session: %w", err)
	}
	return nil
}
