package sink_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gantry-dev/gantry/assemble/sink"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// A tarball's references are marked local (tar:FILE:NAME:TAG), so that
// --digest-file, which skips oci: and tar:, lists only pushed references;
// the RepoTags docker load reads stay NAME:TAG.
func TestTarballReferencesAreLocal(t *testing.T) {
	file := filepath.Join(t.TempDir(), "web.tar")
	refs, err := run(context.Background(), sink.Tarball(file, sink.Destinations{Tags: []string{"v1", "latest"}}), randomBuilt(t, "web"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"tar:" + file + ":web:v1", "tar:" + file + ":web:latest"}
	if !slices.Equal(refs, want) {
		t.Errorf("references %q, want %q", refs, want)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(file) })
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, d := range m {
		tags = append(tags, d.RepoTags...)
	}
	slices.Sort(tags)
	if want := []string{"web:latest", "web:v1"}; !slices.Equal(tags, want) {
		t.Errorf("RepoTags %q, want %q", tags, want)
	}
}
