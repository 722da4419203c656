package debian

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/gantry-dev/gantry/layers"
)

// ErrHashMismatch is wrapped by errors for a download whose size or
// sha256 is not what the signed index says.
var ErrHashMismatch = errors.New("hash mismatch")

// maxRelease bounds InRelease/Release/Release.gpg downloads.
const maxRelease = 32 << 20

// fetcher downloads from archives into a content-addressed cache:
// <cache>/debian/blobs/<sha256>.
type fetcher struct {
	client *http.Client
	blobs  string
}

func newFetcher(client *http.Client, cache string) (*fetcher, error) {
	if cache == "" {
		return nil, errors.New("debian: no cache directory")
	}
	if client == nil {
		client = defaultClient()
	}
	f := &fetcher{client: client, blobs: filepath.Join(cache, "debian", "blobs")}
	if err := os.MkdirAll(f.blobs, 0o755); err != nil {
		return nil, fmt.Errorf("creating the debian download cache: %w", err)
	}
	return f, nil
}

// defaultClient reaches http(s) archives and file: ones (an archive in a
// directory of the build machine, as apt's file: sources).
func defaultClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.RegisterProtocol("file", http.NewFileTransport(http.Dir("/")))
	return &http.Client{Transport: t}
}

// errNotFound is a 404 or 410 from the archive.
var errNotFound = errors.New("not found")

// open starts a GET of url; the caller closes the body.
func (f *fetcher) open(ctx context.Context, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, transferError(ctx, url, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone {
			return nil, fmt.Errorf("fetching %s: %s: %w", url, resp.Status, errNotFound)
		}
		return nil, fmt.Errorf("fetching %s: %s", url, resp.Status)
	}
	return resp.Body, nil
}

// transferError is a failed request or download from an archive: the
// archive's failure, not the base's registry's.
func transferError(ctx context.Context, url string, err error) error {
	return layers.SourceFailure(ctx, "fetching "+url, "is the archive reachable?", err)
}

// small fetches a small file (a Release file, its signature) whole.
func (f *fetcher) small(ctx context.Context, url string) ([]byte, error) {
	body, err := f.open(ctx, url)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(layers.ContextReader(ctx, body), maxRelease+1))
	if err != nil {
		return nil, transferError(ctx, url, err)
	}
	if len(b) > maxRelease {
		return nil, fmt.Errorf("fetching %s: over %d MiB", url, maxRelease>>20)
	}
	return b, nil
}

// path is where the cache keeps the file with this sha256.
func (f *fetcher) path(sha string) string { return filepath.Join(f.blobs, sha) }

// blob returns the cached file with this sha256 and size, downloading it
// from url first if the cache lacks it. A download is checked for its
// size and sha256 before it enters the cache; a cached file of the wrong
// size is fetched again.
func (f *fetcher) blob(ctx context.Context, url, sha string, size int64) (string, error) {
	p := f.path(sha)
	if fi, err := os.Stat(p); err == nil && fi.Size() == size {
		return p, nil
	}
	body, err := f.open(ctx, url)
	if err != nil {
		return "", err
	}
	defer body.Close()
	tmp, err := os.CreateTemp(f.blobs, ".tmp-*")
	if err != nil {
		return "", fmt.Errorf("creating a file in the debian download cache: %w", err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(layers.ContextReader(ctx, body), size+1))
	if err != nil {
		return "", transferError(ctx, url, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != size || got != sha {
		return "", fmt.Errorf("%s: %w: the signed index says %d bytes, sha256:%s; the archive sent %d bytes, sha256:%s", url, ErrHashMismatch, size, sha, n, got)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("writing the debian download cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", fmt.Errorf("writing the debian download cache: %w", err)
	}
	tmp = nil
	return p, nil
}

// verified opens the cached file with this sha256 and checks, as it is
// read to the end, that it still has it (a cache file altered since is an
// error, never used).
func (f *fetcher) verified(sha string) (io.ReadCloser, error) {
	file, err := os.Open(f.path(sha))
	if err != nil {
		return nil, err
	}
	return &hashReader{f: file, h: sha256.New(), want: sha}, nil
}

type hashReader struct {
	f    *os.File
	h    hash.Hash
	want string
}

func (r *hashReader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	r.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		if got := hex.EncodeToString(r.h.Sum(nil)); got != r.want {
			return n, fmt.Errorf("%s: %w: the cache file has sha256:%s (delete it)", r.f.Name(), ErrHashMismatch, got)
		}
	}
	return n, err
}

func (r *hashReader) Close() error { return r.f.Close() }
