package sink_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"strings"
	"syscall"
	"time"

	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gantry-dev/gantry/assemble"

	"github.com/gantry-dev/gantry/assemble/sink"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"go.uber.org/goleak"
)

// A tarball's references are marked local (tar:FILE:NAME:TAG), so that
// --digest-file, which skips oci: and tar:, lists only pushed references;
// the RepoTags docker load reads stay NAME:TAG.
func TestTarballReferencesAreLocal(t *testing.T) {
	file := filepath.Join(t.TempDir(), "web.tar")
	refs, err := run(context.Background(), sink.Tarball(file, nil, sink.Destinations{Tags: []string{"v1", "latest"}}), randomBuilt(t, "web"))
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

// readFIFO reads the FIFO at path in a goroutine until its writer closes
// it. wait returns what was read; it first releases the reader through
// keep, a hard link to the same FIFO, when no writer came (the FIFO at
// path was replaced), so that the goroutine always ends.
func readFIFO(t *testing.T, path, keep string) (wait func() []byte) {
	t.Helper()
	var got []byte
	var rerr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		f, err := os.Open(path)
		if err != nil {
			rerr = err
			return
		}
		defer f.Close()
		got, rerr = io.ReadAll(f)
	}()
	return func() []byte {
		for {
			select {
			case <-done:
				if rerr != nil {
					t.Fatal(rerr)
				}
				return got
			case <-time.After(20 * time.Millisecond):
				if w, err := os.OpenFile(keep, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					w.Close()
				}
			}
		}
	}
}

// checkTarball checks that raw is a docker-loadable tarball of b's image.
func checkTarball(t *testing.T, raw []byte, b *assemble.Built) {
	t.Helper()
	img, err := tarball.Image(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }, nil)
	if err != nil {
		t.Fatalf("not a tarball (%d bytes): %v", len(raw), err)
	}
	got, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if got != b.Digest {
		t.Errorf("tarball holds %s, want %s", got, b.Digest)
	}
}

// tar:FIFO writes into the FIFO (as tar:/dev/stdout | docker load needs)
// instead of replacing it with a regular file.
func TestTarballWritesIntoFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo, keep := filepath.Join(dir, "pipe"), filepath.Join(dir, "pipe.keep")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(fifo, keep); err != nil {
		t.Fatal(err)
	}
	wait := readFIFO(t, fifo, keep)
	b := randomBuilt(t, "web")
	_, err := run(context.Background(), tarballSink(fifo, nil), b)
	raw := wait()
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Fatalf("%s is no longer a FIFO: %v %v", fifo, fi.Mode(), err)
	}
	checkTarball(t, raw, b)
	noTemp(t, dir)
}

// tar:LINK, a symlink to a regular file, replaces the file it points to by
// a temporary file beside it and a rename; the link stays.
func TestTarballThroughSymlink(t *testing.T) {
	dir, targetDir := t.TempDir(), t.TempDir()
	target, link := filepath.Join(targetDir, "real.tar"), filepath.Join(dir, "link.tar")
	if err := os.WriteFile(target, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	b := randomBuilt(t, "web")
	if _, err := run(context.Background(), tarballSink(link, nil), b); err != nil {
		t.Fatal(err)
	}
	if dest, err := os.Readlink(link); err != nil || dest != target {
		t.Fatalf("%s is no longer a symlink to %s: %q %v", link, target, dest, err)
	}
	raw, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	checkTarball(t, raw, b)
	noTemp(t, dir)
	noTemp(t, targetDir)
}

// noTemp fails when dir holds a temporary file.
func noTemp(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("%s left behind in %s", e.Name(), dir)
		}
	}
}

// tar:- writes the tarball to the stdout the sink was given.
func TestTarballToStdout(t *testing.T) {
	var out bytes.Buffer
	b := randomBuilt(t, "web")
	refs, err := run(context.Background(), tarballSink("-", &out), b)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"tar:-:web:latest"}; !slices.Equal(refs, want) {
		t.Errorf("references %q, want %q", refs, want)
	}
	checkTarball(t, out.Bytes(), b)
	if _, err := run(context.Background(), tarballSink("-", nil), b); err == nil || !strings.Contains(err.Error(), "no standard output") {
		t.Errorf("tar:- without a stdout: %v", err)
	}
}

// A FIFO nobody reads does not hang the run: the write ends with the
// context, and nothing it started is left running.
func TestTarballFIFOWithoutReaderStopsWithContext(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	fifo := filepath.Join(t.TempDir(), "pipe")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := run(ctx, tarballSink(fifo, nil), randomBuilt(t, "web"))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), fifo) {
		t.Fatalf("got %v, want the deadline, naming %s", err, fifo)
	}
}

// A reader that stops reading does not hang the run either: the blocked
// write ends with the context.
func TestTarballFIFOStalledReaderStopsWithContext(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	fifo := filepath.Join(t.TempDir(), "pipe")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0) // opened, never read
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	img, err := random.Image(1<<20, 1) // more than a pipe buffer
	if err != nil {
		t.Fatal(err)
	}
	b := randomBuilt(t, "web")
	b.Image = img
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := run(ctx, tarballSink(fifo, nil), b); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the deadline", err)
	}
}

// tar:DIR is refused before anything is written, naming the path.
func TestTarballRefusesDirectory(t *testing.T) {
	dir := t.TempDir()
	_, err := run(context.Background(), tarballSink(dir, nil), randomBuilt(t, "web"))
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("got %v", err)
	}
}
