package registrytest

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// The helpers below read or write a registry directly, as the test (not
// through the code under test): opts are remote options such as
// Registry.Options or OptionsAs; none reach a plain-HTTP registry
// anonymously.

// PushLayout pushes the image or index that the OCI layout dir names
// first in its index.json to ref: a base for the code under test.
func PushLayout(t testing.TB, dir, ref string, opts ...remote.Option) {
	t.Helper()
	top, d := firstInLayout(t, dir)
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if d.MediaType.IsIndex() {
		idx, err := top.ImageIndex(d.Digest)
		if err == nil {
			err = remote.WriteIndex(r, idx, opts...)
		}
		if err != nil {
			t.Fatalf("pushing %s to %s: %v", dir, ref, err)
		}
		return
	}
	img, err := top.Image(d.Digest)
	if err == nil {
		err = remote.Write(r, img, opts...)
	}
	if err != nil {
		t.Fatalf("pushing %s to %s: %v", dir, ref, err)
	}
}

// LayoutIndex is the index that the OCI layout dir names first in its
// index.json (as gantry writes its output); t fails if that is no index.
func LayoutIndex(t testing.TB, dir string) v1.ImageIndex {
	t.Helper()
	top, d := firstInLayout(t, dir)
	if !d.MediaType.IsIndex() {
		t.Fatalf("layout %s names %s first, not an index", dir, d.MediaType)
	}
	idx, err := top.ImageIndex(d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// firstInLayout is the top index of layout dir and its first descriptor.
func firstInLayout(t testing.TB, dir string) (v1.ImageIndex, v1.Descriptor) {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) == 0 {
		t.Fatalf("layout %s is empty", dir)
	}
	return top, im.Manifests[0]
}

// Catalog lists the repositories of the registry at host (all pages).
func Catalog(t testing.TB, host string, opts ...remote.Option) []string {
	t.Helper()
	reg, err := name.NewRegistry(host)
	if err != nil {
		t.Fatal(err)
	}
	repos, err := remote.Catalog(context.Background(), reg, opts...)
	if err != nil {
		t.Fatalf("catalog of %s: %v", host, err)
	}
	return repos
}

// Tags lists the tags of repo (HOST/NAME); none when the repository does
// not exist.
func Tags(t testing.TB, repo string, opts ...remote.Option) []string {
	t.Helper()
	r, err := name.NewRepository(repo)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(r, opts...)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("listing tags of %s: %v", repo, err)
	}
	return tags
}

// TagExists reports whether ref resolves on its registry (a HEAD): false
// on 404, a failed test on any other error.
func TagExists(t testing.TB, ref string, opts ...remote.Option) bool {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	_, err = remote.Head(r, opts...)
	if isNotFound(err) {
		return false
	}
	if err != nil {
		t.Fatalf("HEAD %s: %v", ref, err)
	}
	return true
}

func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}

// CheckConsistent walks every tag of every repository on the registry at
// host: each tag must resolve to a manifest or index whose manifests
// (nested indexes too), configs and layers all exist; each that does not
// is an error of t. An empty catalog fails t at once (the wrong host). It
// returns "REPOSITORY:TAG" → digest.
func CheckConsistent(t testing.TB, host string, opts ...remote.Option) map[string]string {
	t.Helper()
	repos := Catalog(t, host, opts...)
	if len(repos) == 0 {
		t.Fatalf("the catalog of %s is empty", host)
	}
	out := map[string]string{}
	for _, repo := range repos {
		for _, tag := range Tags(t, host+"/"+repo, opts...) {
			ref, err := name.NewTag(host + "/" + repo + ":" + tag)
			if err != nil {
				t.Fatal(err)
			}
			desc, err := remote.Get(ref, opts...)
			if err != nil {
				t.Errorf("tag %s does not resolve: %v", ref, err)
				continue
			}
			out[repo+":"+tag] = desc.Digest.String()
			checkManifest(t, ref, ref.Context(), desc.Descriptor, opts)
		}
	}
	return out
}

// checkManifest checks that the manifest or index d of repo and all it
// names exist.
func checkManifest(t testing.TB, tag name.Tag, repo name.Repository, d v1.Descriptor, opts []remote.Option) {
	t.Helper()
	ref := repo.Digest(d.Digest.String())
	if d.MediaType.IsIndex() {
		idx, err := remote.Index(ref, opts...)
		if err != nil {
			t.Errorf("tag %s: index %s is missing: %v", tag, d.Digest, err)
			return
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Errorf("tag %s: index %s: %v", tag, d.Digest, err)
			return
		}
		for _, m := range im.Manifests {
			checkManifest(t, tag, repo, m, opts)
		}
		return
	}
	img, err := remote.Image(ref, opts...)
	if err != nil {
		t.Errorf("tag %s: manifest %s is missing: %v", tag, d.Digest, err)
		return
	}
	m, err := img.Manifest()
	if err != nil {
		t.Errorf("tag %s: manifest %s: %v", tag, d.Digest, err)
		return
	}
	for _, b := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		l, err := remote.Layer(repo.Digest(b.Digest.String()), opts...)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := partial.Exists(l); !ok {
			t.Errorf("tag %s: manifest %s names blob %s, which is missing (%v)", tag, d.Digest, b.Digest, err)
		}
	}
}
