package python

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/layers"
)

var layerMTime = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)

func buildLayer(t *testing.T, cacheDir string, es []layers.Entry) (digest string, cached bool, tarBytes []byte) {
	t.Helper()
	c, err := layers.OpenCache(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	b := &layers.Builder{Cache: c, MTime: layerMTime}
	l, err := b.Build(context.Background(), es)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	d, _ := l.Digest()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return d.String(), l.Cached(), data
}

// TestLayer builds layers from installed entries: the same digest from a
// find-links directory and from an index, with separate install caches
// (the second found in the layer cache by content), and a cache hit the
// second time.
func TestLayer(t *testing.T) {
	tg := slimTarget("arm64")
	ix := newIndex(t, fixtures, true)
	layerCache := t.TempDir()
	var digests []string
	for i, src := range []string{fixtures, ix.URL()} {
		f := &Finder{Sources: []string{src}, Cache: t.TempDir(), Client: http.DefaultClient}
		es := mustInstall(t, mustSelect(t, f, mustLock(t, "requirements.lock"), tg), tg, InstallOptions{Cache: t.TempDir()})
		d, cached, data := buildLayer(t, layerCache, es)
		if cached != (i > 0) {
			t.Errorf("source %d: cached %v: the first build is a miss, the same content from a new install cache a hit", i, cached)
		}
		digests = append(digests, d)
		again, cached, _ := buildLayer(t, layerCache, es)
		if again != d || !cached {
			t.Errorf("source %d: rebuilt %s (cached %v), first %s", i, again, cached, d)
		}
		if i == 0 {
			checkLayerTar(t, data, es)
		}
	}
	if digests[0] != digests[1] {
		t.Errorf("find-links layer %s, index layer %s", digests[0], digests[1])
	}
}

// checkLayerTar compares the tar stream with the entries it was built from.
func checkLayerTar(t *testing.T, data []byte, es []layers.Entry) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	i := 0
	for ; ; i++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i >= len(es) {
			t.Fatalf("extra tar member %s", h.Name)
		}
		e := es[i]
		name := e.Name
		if e.Type == tar.TypeDir {
			name += "/"
		}
		if h.Name != name || h.Typeflag != e.Type || h.Mode != e.Mode || h.Uid != e.UID || !h.ModTime.Equal(layerMTime) {
			t.Errorf("member %d: %s %c %o %d %v; want %s %c %o %d", i, h.Name, h.Typeflag, h.Mode, h.Uid, h.ModTime, name, e.Type, e.Mode, e.UID)
		}
		body, _ := io.ReadAll(tr)
		if e.Type == tar.TypeReg && !bytes.Equal(body, content(t, e)) {
			t.Errorf("%s: tar content differs from the entry's", h.Name)
		}
		if h.Name == "usr/local/bin/taskflow-admin" && string(body) != wantLauncher {
			t.Errorf("launcher in the layer:\n%s", body)
		}
	}
	if i != len(es) {
		t.Errorf("%d tar members, %d entries", i, len(es))
	}
}
