package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/gantry-dev/gantry/assemble"
	"github.com/gantry-dev/gantry/assemble/spec"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// tarballSink writes a `docker load` tarball of one image and platform.
type tarballSink struct {
	file   string
	stdout io.Writer
	dest   Destinations
	// stream is set when the tarball goes straight into file (stdout, a
	// device, a FIFO, a socket): no temporary file, no rename.
	stream bool
	// target is the regular file the tarball replaces (file, or the file a
	// symlink file points to), tmp the temporary file beside it that
	// Commit renames to it.
	target string
	tmp    *os.File
	mode   fs.FileMode
	wrote  bool
}

// Tarball writes a docker-loadable tarball to file; "-" is stdout. Its
// references are tar:FILE:NAME:TAG, marked local as the layout's
// oci:DIR:NAME:TAG are: the tarball holds the platform image, not the
// digest a run reports, and nothing was pushed. Inside, docker load reads
// NAME:TAG.
//
// A regular file (or a symlink to one) is replaced atomically: the tarball
// is written to a temporary file beside the file (the link's target, so
// the link stays a link) and renamed over it by Commit, and Abort leaves
// the old file as it was. Anything else that exists — stdout, a device, a
// FIFO, or a symlink to one — is written straight into, by Write: those
// bytes cannot be taken back, so a failure after them leaves a partial
// stream (docker load rejects it as truncated).
func Tarball(file string, stdout io.Writer, dest Destinations) assemble.Sink {
	return &tarballSink{file: file, stdout: stdout, dest: dest}
}

func (s *tarballSink) Prepare(ctx context.Context, images []*assemble.Built) error {
	if len(images) != 1 {
		return &spec.ConfigError{Path: "--output", Msg: fmt.Sprintf("tar: holds one image; this build has %d (pick one with --image)", len(images))}
	}
	if n := len(images[0].Platforms); n != 1 {
		return &spec.ConfigError{Path: "--output", Msg: fmt.Sprintf("tar: holds one platform; image %s has %d (pick one with --platform, e.g. linux/amd64)", images[0].Spec.Name, n)}
	}
	if s.file == "-" {
		if s.stdout == nil {
			return errors.New("output tar:-: there is no standard output to write to; name a file instead")
		}
		s.stream = true
		return nil
	}
	fi, err := os.Stat(s.file) // through a symlink
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if lfi, lerr := os.Lstat(s.file); lerr == nil && lfi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("output tar:%s is a symlink to a file that does not exist; point it at an existing file or remove it", s.file)
		}
		s.target, s.mode = s.file, 0o644
	case err != nil:
		return fmt.Errorf("output tar:%s: %w; check the path and its permissions", s.file, err)
	case fi.IsDir():
		return fmt.Errorf("output tar:%s is a directory; name a file for the tarball", s.file)
	case fi.Mode().IsRegular():
		if s.target, err = filepath.EvalSymlinks(s.file); err != nil {
			return fmt.Errorf("output tar:%s: %w; check the path and its permissions", s.file, err)
		}
		s.mode = fi.Mode().Perm()
	default: // a device, a FIFO, a socket
		if err := syscall.Access(s.file, 2 /* W_OK */); err != nil {
			return fmt.Errorf("output tar:%s: cannot write to it: %w; check its permissions", s.file, err)
		}
		s.stream = true
		return nil
	}
	// the temporary file now, so that an unwritable directory fails the
	// run before anything is written anywhere
	f, err := os.CreateTemp(filepath.Dir(s.target), "."+filepath.Base(s.target)+".tmp-*")
	if err != nil {
		return fmt.Errorf("output tar:%s: cannot create a file in %s: %w; check that the directory exists and is writable", s.file, filepath.Dir(s.target), err)
	}
	s.tmp = f
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
	write := func(w io.Writer) error { return tarball.MultiRefWrite(refs, w) }
	if s.stream {
		if err := s.writeStream(ctx, write); err != nil {
			return nil, fmt.Errorf("output tar:%s: writing the tarball: %w; what was written is incomplete", s.file, err)
		}
		return out, nil
	}
	err := writeCtx(ctx, s.tmp, write)
	if err == nil {
		err = s.tmp.Chmod(s.mode)
	}
	if cerr := s.tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("output tar:%s: writing %s: %w; check the free space in %s", s.file, s.tmp.Name(), err, filepath.Dir(s.target))
	}
	s.wrote = true
	return out, nil
}

// writeStream writes straight into stdout or the file.
func (s *tarballSink) writeStream(ctx context.Context, write func(io.Writer) error) error {
	if s.file == "-" {
		return writeCtx(ctx, s.stdout, write)
	}
	f, err := openStream(ctx, s.file)
	if err != nil {
		return err
	}
	err = writeCtx(ctx, f, write)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// openStream opens path, which is not a regular file, for writing. A FIFO
// is opened without blocking, again until a reader has opened it or ctx
// ends, so that no reader does not mean a run that cannot be stopped.
func openStream(ctx context.Context, path string) (*os.File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeNamedPipe == 0 {
		return os.OpenFile(path, os.O_WRONLY, 0)
	}
	var f *os.File
	err = poll(ctx, func() (bool, error) {
		var err error
		f, err = os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if errors.Is(err, syscall.ENXIO) { // no reader yet
			return false, nil
		}
		return err == nil, err
	})
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("no reader opened the FIFO: %w", err)
	}
	return f, err
}

func (s *tarballSink) Commit(ctx context.Context) error {
	if s.tmp == nil {
		return nil
	}
	if !s.wrote {
		s.Abort()
		return nil
	}
	if err := os.Rename(s.tmp.Name(), s.target); err != nil {
		return fmt.Errorf("output tar:%s: %w; check that %s can be replaced", s.file, err, s.target)
	}
	s.tmp = nil
	return nil
}

// Abort removes the temporary file; a stream's bytes are already out.
func (s *tarballSink) Abort() {
	if s.tmp != nil {
		s.tmp.Close()
		os.Remove(s.tmp.Name())
		s.tmp = nil
	}
}
