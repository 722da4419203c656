package layers

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Layer is a built layer whose blob sits in the cache, or in a registry
// that had it already. Digest, DiffID and Size are known without reading;
// Compressed re-opens the blob on every call (safe for retries and
// concurrent uploads) and checks it against Digest.
type Layer struct {
	digest, diffID   v1.Hash
	size             int64
	uncompressedSize int64
	mediaType        types.MediaType
	compression      string
	path             string
	cached           bool
	reusedFrom       string                        // "registry" for a blob only a registry has
	open             func() (io.ReadCloser, error) // reads that blob
	secrets          []SecretFinding               // contents that looked like secrets, allowed when built
	elf              []ELFFile                     // ELF files, sorted by name
	files            []FileDigest                  // regular files and their SHA-256, in layer order
}

var _ v1.Layer = (*Layer)(nil)

// WithMediaType returns a copy of l with the given media type (the bytes, and
// so the digests, are the same for Docker and OCI layer types).
func (l *Layer) WithMediaType(mt types.MediaType) *Layer {
	c := *l
	c.mediaType = mt
	return &c
}

func (l *Layer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *Layer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *Layer) Size() (int64, error)                { return l.size, nil }
func (l *Layer) MediaType() (types.MediaType, error) { return l.mediaType, nil }
func (l *Layer) UncompressedSize() int64             { return l.uncompressedSize }
func (l *Layer) Compression() string                 { return l.compression }
func (l *Layer) Cached() bool                        { return l.cached }
func (l *Layer) Path() string                        { return l.path }

// Remote reports whether the blob is in a registry only (found there by
// content, not built or cached here).
func (l *Layer) Remote() bool { return l.reusedFrom == "registry" }

// Compressed opens the blob. Reading it to the end fails if its bytes do not
// hash to Digest, so a damaged cache can never be uploaded or copied.
func (l *Layer) Compressed() (io.ReadCloser, error) {
	if l.open != nil {
		rc, err := l.open()
		if err != nil {
			return nil, fmt.Errorf("reading layer %s from the registry: %w", l.digest, err)
		}
		return &verifier{rc: rc, h: sha256.New(), want: l.digest, size: l.size, name: "layer " + l.digest.String() + " from the registry"}, nil
	}
	f, err := os.Open(l.path)
	if err != nil {
		return nil, fmt.Errorf("opening cached layer %s: %w", l.digest, err)
	}
	return &verifier{rc: f, h: sha256.New(), want: l.digest, size: l.size, name: l.path}, nil
}

// Uncompressed opens the blob and decompresses it.
func (l *Layer) Uncompressed() (io.ReadCloser, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	zr, err := decompress(rc)
	if err != nil {
		rc.Close()
		return nil, fmt.Errorf("decompressing cached layer %s: %w", l.digest, err)
	}
	return readCloser{zr, func() error { zr.Close(); return rc.Close() }}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// verifier checks a stream against its digest and size at EOF.
type verifier struct {
	rc   io.ReadCloser
	h    hash.Hash
	n    int64
	size int64
	want v1.Hash
	name string
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.rc.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if err == io.EOF {
		got := hex.EncodeToString(v.h.Sum(nil))
		if v.n != v.size || got != v.want.Hex {
			return n, fmt.Errorf("%s is corrupt: got %d bytes with sha256:%s, want %d bytes with %s (delete it or run with an empty --cache-dir)", v.name, v.n, got, v.size, v.want)
		}
	}
	return n, err
}

func (v *verifier) Close() error { return v.rc.Close() }
