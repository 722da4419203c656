package sink

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gantry-dev/gantry/assemble"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// tarballSink writes a `docker load` tarball of one image and platform.
type tarballSink struct {
	file string
	dest Destinations
	tmp  string
}

// Tarball writes a docker-loadable tarball to file. Its references are
// tar:FILE:NAME:TAG, marked local as the layout's oci:DIR:NAME:TAG are: the
// tarball holds the platform image, not the digest a run reports, and
// nothing was pushed. Inside, docker load reads NAME:TAG.
func Tarball(file string, dest Destinations) assemble.Sink {
	return &tarballSink{file: file, dest: dest}
}

func (s *tarballSink) Prepare(ctx context.Context, images []*assemble.Built) error {
	if len(images) != 1 {
		return fmt.Errorf("--output tar: holds one image; this build has %d (pick one with --image)", len(images))
	}
	if n := len(images[0].Platforms); n != 1 {
		return fmt.Errorf("--output tar: holds one platform; image %s has %d (pick one with --platform, e.g. linux/amd64)", images[0].Spec.Name, n)
	}
	return nil
}

func (s *tarballSink) Write(ctx context.Context, b *assemble.Built) ([]string, error) {
	img := b.Image
	if img == nil {
		im, err := b.Index.IndexManifest()
		if err != nil {
			return nil, err
		}
		if img, err = b.Index.Image(im.Manifests[0].Digest); err != nil {
			return nil, err
		}
	}
	refs := map[name.Reference]v1.Image{}
	var out []string
	for _, t := range s.dest.tags(b.Spec) {
		r, err := name.NewTag(b.Spec.Name + ":" + t)
		if err != nil {
			return nil, err
		}
		refs[r] = img
		out = append(out, "tar:"+s.file+":"+b.Spec.Name+":"+t)
	}
	f, err := os.CreateTemp(filepath.Dir(s.file), "."+filepath.Base(s.file)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", s.file, err)
	}
	s.tmp = f.Name()
	err = tarball.MultiRefWrite(refs, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", s.file, err)
	}
	return out, nil
}

func (s *tarballSink) Commit(ctx context.Context) error {
	if s.tmp == "" {
		return nil
	}
	if err := os.Rename(s.tmp, s.file); err != nil {
		return fmt.Errorf("output %s: %w", s.file, err)
	}
	return nil
}

func (s *tarballSink) Abort() {
	if s.tmp != "" {
		os.Remove(s.tmp)
	}
}
