package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Blobs asks one repository about its blobs with one token (push scope):
// whether it has one, mounting one from another repository of the same
// registry, and reading one.
type Blobs struct {
	c      *Client
	repo   name.Repository
	client *http.Client
}

// Blobs returns a client for repo's blobs.
func (c *Client) Blobs(ctx context.Context, repo name.Repository) (*Blobs, error) {
	client, err := c.authorized(ctx, repo, transport.PushScope)
	if err != nil {
		return nil, Classify(err, repo.String())
	}
	return &Blobs{c: c, repo: repo, client: client}, nil
}

// Has reports whether the repository has blob d of the given size (a HEAD).
func (b *Blobs) Has(ctx context.Context, d v1.Hash, size int64) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, blobURL(b.repo, d.String()), nil)
	if err != nil {
		return false, err
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return false, Classify(err, b.repo.String())
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return resp.ContentLength < 0 || resp.ContentLength == size, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("HEAD %s in %s: %s", d, b.repo, resp.Status)
}

// Mount asks the registry to link blob d from repository from into this
// one without uploading it; false when the registry would not (it then
// offers an upload, which is cancelled).
func (b *Blobs) Mount(ctx context.Context, d v1.Hash, from name.Repository) (bool, error) {
	client, err := b.c.authorized(ctx, b.repo, transport.PushScope, from.Scope(transport.PullScope))
	if err != nil {
		return false, Classify(err, b.repo.String())
	}
	u := uploadsURL(b.repo) + "?" + url.Values{"mount": {d.String()}, "from": {from.RepositoryStr()}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return false, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, Classify(err, b.repo.String())
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusCreated:
		return true, nil
	case http.StatusAccepted:
		if loc, err := resolve(resp.Request.URL, resp.Header.Get("Location")); err == nil {
			if err := deleteAt(context.WithoutCancel(ctx), client, loc); err != nil {
				b.c.log.Debug("cancelling an upload session failed", "url", redactURL(loc), "error", err)
			}
		}
		return false, nil
	}
	return false, fmt.Errorf("mounting %s from %s into %s: %s", d, from, b.repo, resp.Status)
}

// Open reads blob d (its bytes are not checked here: the caller knows
// the digest and checks it).
func (b *Blobs) Open(ctx context.Context, d v1.Hash) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, blobURL(b.repo, d.String()), nil)
	if err != nil {
		return nil, err
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, Classify(err, b.repo.String())
	}
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		resp.Body.Close()
		return nil, Classify(err, b.repo.String())
	}
	return resp.Body, nil
}
