package sink_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/gantry-dev/gantry/assemble"
	"github.com/gantry-dev/gantry/assemble/registry"
	"github.com/gantry-dev/gantry/assemble/sink"
	"github.com/gantry-dev/gantry/assemble/spec"
	"github.com/gantry-dev/gantry/layers"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// randomBuilt is a one-platform image named name, made of random layers.
func randomBuilt(t *testing.T, name string) *assemble.Built {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	mt, err := img.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	return &assemble.Built{
		Spec: spec.ImageSpec{Name: name}, Image: img, Digest: d, MediaType: string(mt),
		Platforms: []assemble.PlatformResult{{Platform: "linux/amd64", Digest: d.String()}},
	}
}

// nginxIndex builds an image with the engine on the two-platform nginx
// stand-in base, an index of two platform images, and returns it renamed
// by the name it is given each time. Its layer cache lives as long as t.
func nginxIndex(t *testing.T) func(name string) *assemble.Built {
	t.Helper()
	built, err := buildNginx(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return func(name string) *assemble.Built {
		b := *built
		b.Spec.Name = name
		return &b
	}
}

func buildNginx(dir string) (*assemble.Built, error) {
	base, err := filepath.Abs("../../testdata/bases/nginx-alpine")
	if err != nil {
		return nil, err
	}
	site := filepath.Join(dir, "site")
	if err := os.MkdirAll(site, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(site, "index.html"), []byte("<h1>sink</h1>"), 0o644); err != nil {
		return nil, err
	}
	c, err := registry.New(registry.Options{})
	if err != nil {
		return nil, err
	}
	e, err := assemble.NewEngine(assemble.Options{CacheDir: filepath.Join(dir, "cache"), Registry: c})
	if err != nil {
		return nil, err
	}
	s := spec.ImageSpec{
		Name: "site", Base: "oci:" + base,
		Layers: []spec.LayerSpec{{Name: "site", Spec: layers.Spec{Sources: []layers.Source{{From: site, To: "/usr/share/nginx/html"}}}}},
	}
	s.Compression, _ = layers.Compression{}.Normalize()
	s.Policy.AllowRoot = true
	built, err := e.Build(context.Background(), []spec.ImageSpec{s})
	if err != nil {
		return nil, err
	}
	return built[0], nil
}

// run prepares, writes and commits images to s, aborting on failure as
// assemble.Run does.
func run(ctx context.Context, s assemble.Sink, images ...*assemble.Built) (refs []string, err error) {
	defer func() {
		if err != nil {
			s.Abort()
		}
	}()
	if err := s.Prepare(ctx, images); err != nil {
		return nil, err
	}
	for _, b := range images {
		r, err := s.Write(ctx, b)
		if err != nil {
			return nil, err
		}
		refs = append(refs, r...)
	}
	return refs, s.Commit(ctx)
}

// tarballSink is sink.Tarball on file with the default destinations.
func tarballSink(file string, stdout io.Writer) assemble.Sink {
	return sink.Tarball(file, stdout, sink.Destinations{})
}
