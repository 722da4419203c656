package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/assemble/registrytest"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// corruptLayer is a cached layer whose file no longer matches its digest:
// reading it fails at the end the way the layers package's verifier does.
type corruptLayer struct{ data []byte }

const corruptMsg = "/cache/blobs/sha256-1234 is corrupt: got 4096 bytes with sha256:beef, want 4096 bytes with sha256:1234 (delete it or run with an empty --cache-dir)"

func (l corruptLayer) Digest() (v1.Hash, error) {
	sum := sha256.Sum256(l.data)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}, nil
}
func (l corruptLayer) DiffID() (v1.Hash, error) { return l.Digest() }
func (l corruptLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(io.MultiReader(bytes.NewReader(l.data), failReader{})), nil
}
func (l corruptLayer) Uncompressed() (io.ReadCloser, error) { return l.Compressed() }
func (l corruptLayer) Size() (int64, error)                 { return int64(len(l.data)), nil }
func (l corruptLayer) MediaType() (types.MediaType, error)  { return types.OCILayer, nil }

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, errors.New(corruptMsg) }

// A push that fails because a local cache file is corrupt is not a
// registry error: Classify returns the local error (the CLI exits 1 with
// it), without the upload's URL around it.
func TestClassifyCorruptCacheIsLocal(t *testing.T) {
	noLeaks(t)
	reg := registrytest.New(t)
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	img, err := mutate.AppendLayers(empty.Image, corruptLayer{bytes.Repeat([]byte("layer"), 1000)})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(reg.Host + "/web/site:v1")
	if err != nil {
		t.Fatal(err)
	}
	err = remote.Write(ref, img, c.RemoteOptions(context.Background())...)
	if err == nil {
		t.Fatal("pushing a corrupt layer succeeded")
	}
	got := Classify(err, ref.Context().String())
	var re *Error
	if errors.As(got, &re) {
		t.Errorf("a corrupt cache file classified as a registry error: %v", got)
	}
	if got.Error() != corruptMsg {
		t.Errorf("Classify = %q, want the local message %q", got, corruptMsg)
	}
}

// localFileError is what the layers package could return for a cache file
// it cannot use.
type localFileError struct{ path string }

func (e *localFileError) Error() string     { return e.path + " is unreadable" }
func (e *localFileError) LocalFile() string { return e.path }

func TestClassifyLocalErrors(t *testing.T) {
	in := func(err error) error {
		return fmt.Errorf("pushing: %w", &url.Error{Op: "Patch", URL: "http://reg.example/v2/web/blobs/uploads/u1?_state=SECRET", Err: err})
	}
	lf := &localFileError{"/cache/blobs/sha256-1"}
	pe := &fs.PathError{Op: "open", Path: "/cache/blobs/sha256-2", Err: fs.ErrNotExist}
	for _, tc := range []struct {
		err, want error
	}{
		{in(lf), lf},
		{in(pe), pe},
	} {
		if got := Classify(tc.err, "reg.example/web"); got != tc.want {
			t.Errorf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	if got := Classify(errors.New("manifest invalid"), "reg.example/web"); !strings.Contains(got.Error(), "reg.example/web") {
		t.Errorf("a registry error lost where: %v", got)
	}
}
