package verify

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"net/http/httptest"
)

func tarOf(t *testing.T, files map[string]string, order ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, n := range order {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(files[n]))
	}
	tw.Close()
	return b.Bytes()
}

// image is a base layer and a gantry layer made of files.
func image(t *testing.T, files map[string]string, order []string, env string) v1.Image {
	t.Helper()
	base := static.NewLayer(tarOf(t, map[string]string{"etc/os-release": "ID=test\n"}, "etc/os-release"), types.DockerUncompressedLayer)
	app := static.NewLayer(tarOf(t, files, order...), types.DockerUncompressedLayer)
	img, err := mutate.Append(empty.Image,
		mutate.Addendum{Layer: base, History: v1.History{CreatedBy: "/bin/sh -c #(nop) ADD rootfs"}},
		mutate.Addendum{Layer: app, History: v1.History{CreatedBy: "gantry: COPY app → /app"}})
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf.Config.Env = []string{env}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func pushed(t *testing.T, img v1.Image) (string, *remote.Descriptor) {
	t.Helper()
	srv := httptest.NewServer(registry.New())
	t.Cleanup(srv.Close)
	ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://") + "/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, err := remote.Get(ref)
	if err != nil {
		t.Fatal(err)
	}
	return ref.String(), d
}

func TestCompareImages(t *testing.T) {
	files := map[string]string{"app/a.py": "a", "app/b.py": "b"}
	at := image(t, files, []string{"app/a.py", "app/b.py"}, "X=1")
	ref, desc := pushed(t, at)
	ctx := context.Background()
	if err := Compare(ctx, ref, image(t, files, []string{"app/a.py", "app/b.py"}, "X=1"), desc); err != nil {
		t.Fatalf("the same image: %v", err)
	}
	for _, tc := range []struct {
		name  string
		local v1.Image
		want  []string
	}{
		{"changed file", image(t, map[string]string{"app/a.py": "a", "app/b.py": "B"}, []string{"app/a.py", "app/b.py"}, "X=1"),
			[]string{"layer 2 (gantry: COPY app → /app)", "/app/b.py: content sha256:"}},
		{"new file", image(t, map[string]string{"app/a.py": "a", "app/a2.py": "", "app/b.py": "b"}, []string{"app/a.py", "app/a2.py", "app/b.py"}, "X=1"),
			[]string{"/app/a2.py: only in the rebuild"}},
		{"env", image(t, files, []string{"app/a.py", "app/b.py"}, "X=2"),
			[]string{"config: the image configs differ in config.Env"}},
	} {
		err := Compare(ctx, ref, tc.local, desc)
		var d *Difference
		if !errors.As(err, &d) {
			t.Fatalf("%s: %v, want a Difference", tc.name, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", tc.name, err, w)
			}
		}
	}
	// an index against a single image
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: at, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
	if err := Compare(ctx, ref, idx, desc); err == nil || !strings.Contains(err.Error(), "the rebuild is a multi-platform index") {
		t.Errorf("index against image: %v", err)
	}
}

func TestCompareIndexes(t *testing.T) {
	files := map[string]string{"app/a.py": "a"}
	amd := image(t, files, []string{"app/a.py"}, "X=amd64")
	arm := image(t, files, []string{"app/a.py"}, "X=arm64")
	index := func(imgs ...v1.Image) v1.ImageIndex {
		idx := v1.ImageIndex(empty.Index)
		for i, img := range imgs {
			arch := []string{"amd64", "arm64"}[i]
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
		}
		return idx
	}
	srv := httptest.NewServer(registry.New())
	t.Cleanup(srv.Close)
	ref, _ := name.ParseReference(strings.TrimPrefix(srv.URL, "http://") + "/app:v1")
	if err := remote.WriteIndex(ref, index(amd, arm)); err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(ref)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := Compare(ctx, ref.String(), index(amd, arm), desc); err != nil {
		t.Fatalf("the same index: %v", err)
	}
	for _, tc := range []struct {
		local v1.ImageIndex
		want  string
	}{
		{index(amd), "linux/arm64: " + ref.String() + " has this platform, the rebuild does not"},
		{index(amd, image(t, files, []string{"app/a.py"}, "X=changed")), "linux/arm64: config: the image configs differ in config.Env"},
	} {
		if err := Compare(ctx, ref.String(), tc.local, desc); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v, want %q", err, tc.want)
		}
	}
}
