package assemble

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// tail reads the last n bytes of a layer's compressed blob: with an HTTP
// range request for a registry layer, else by streaming a local blob.
func (e *Engine) tail(ctx context.Context, l v1.Layer, n int64) ([]byte, error) {
	size, err := l.Size()
	if err != nil {
		return nil, err
	}
	if ml, ok := l.(*remote.MountableLayer); ok {
		return e.rangeTail(ctx, ml, size, n)
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

func (e *Engine) rangeTail(ctx context.Context, ml *remote.MountableLayer, size, n int64) ([]byte, error) {
	repo := ml.Reference.Context()
	dig, err := ml.Digest()
	if err != nil {
		return nil, err
	}
	auth, err := authn.Resolve(ctx, e.opts.Keychain, repo)
	if err != nil {
		return nil, err
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, e.opts.Transport, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, err
	}
	url := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", repo.Registry.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), dig)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", size-n, size-1))
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		return nil, fmt.Errorf("range request for %s: %s", dig, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, n))
}
