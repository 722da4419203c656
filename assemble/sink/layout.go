package sink

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/assemble"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// layoutSink writes every image into one OCI image layout. A new layout is
// written beside its final path and renamed into place; an existing one gets
// its blobs first and its index.json replaced atomically last.
//
// A new layout is written in a temporary sibling .NAME.tmp-*, whose lock
// file (lockName) its writer holds from before the lock file has that name
// until the sibling is renamed into place or removed. A run killed on the
// way leaves the sibling behind with its lock released by the kernel, so
// Prepare removes every sibling of the same name whose lock it can take:
// nobody is writing it. A sibling without a lock file, which only a gantry
// from before the lock leaves (a writer has one within microseconds), is
// removed once its directory is over staleAge old.
type layoutSink struct {
	dir      string
	work     string // where blobs go: dir itself, or a temporary sibling
	fresh    bool
	workLock *fileLock // held on the fresh layout's lock file until Commit or Abort
	dest     Destinations
	entries  []v1.Descriptor
	names    map[string]bool
}

// Layout writes an OCI layout at dir, one index.json entry per image
// and tag, named NAME:TAG in org.opencontainers.image.ref.name.
func Layout(dir string, dest Destinations) assemble.Sink {
	return &layoutSink{dir: dir, dest: dest, names: map[string]bool{}}
}

func (s *layoutSink) Prepare(ctx context.Context, images []*assemble.Built) error {
	removeStale(s.dir)
	fi, err := os.Stat(s.dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(s.dir), 0o755); err != nil {
			return fmt.Errorf("output %s: %w", s.dir, err)
		}
		work, err := os.MkdirTemp(filepath.Dir(s.dir), "."+filepath.Base(s.dir)+".tmp-*")
		if err != nil {
			return fmt.Errorf("output %s: %w", s.dir, err)
		}
		s.work, s.fresh = work, true
		if s.workLock, err = newLock(work); err != nil {
			return fmt.Errorf("output %s: locking %s: %w; check the permissions of %s", s.dir, work, err, filepath.Dir(s.dir))
		}
	case err != nil:
		return fmt.Errorf("output %s: %w", s.dir, err)
	case !fi.IsDir():
		return fmt.Errorf("output %s exists and is not a directory", s.dir)
	default:
		if _, err := os.Stat(filepath.Join(s.dir, "oci-layout")); err != nil {
			if entries, _ := os.ReadDir(s.dir); len(entries) > 0 {
				return fmt.Errorf("output %s exists and is not an OCI layout; choose another directory", s.dir)
			}
		}
		s.work = s.dir
	}
	if _, err := os.Stat(filepath.Join(s.work, "oci-layout")); err != nil {
		if err := os.WriteFile(filepath.Join(s.work, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
			return fmt.Errorf("output %s: %w", s.dir, err)
		}
	}
	return os.MkdirAll(filepath.Join(s.work, "blobs", "sha256"), 0o755)
}

func (s *layoutSink) Write(ctx context.Context, b *assemble.Built) ([]string, error) {
	if err := s.writeTaggable(ctx, b.Taggable()); err != nil {
		return nil, fmt.Errorf("writing %s to %s: %w", b.Spec.Name, s.dir, err)
	}
	raw, err := b.Taggable().RawManifest()
	if err != nil {
		return nil, err
	}
	var refs []string
	for _, t := range s.dest.tags(b.Spec) {
		rn := b.Spec.Name + ":" + t
		s.entries = append(s.entries, v1.Descriptor{
			MediaType:   types.MediaType(b.MediaType),
			Size:        int64(len(raw)),
			Digest:      b.Digest,
			Annotations: map[string]string{"org.opencontainers.image.ref.name": rn},
		})
		s.names[rn] = true
		refs = append(refs, "oci:"+s.dir+":"+rn)
	}
	return refs, nil
}

func (s *layoutSink) writeTaggable(ctx context.Context, t remote.Taggable) error {
	if idx, ok := t.(v1.ImageIndex); ok {
		im, err := idx.IndexManifest()
		if err != nil {
			return err
		}
		for _, d := range im.Manifests {
			img, err := idx.Image(d.Digest)
			if err != nil {
				return err
			}
			if err := s.writeTaggable(ctx, img); err != nil {
				return err
			}
		}
	} else if img, ok := t.(v1.Image); ok {
		ls, err := img.Layers()
		if err != nil {
			return err
		}
		for _, l := range ls {
			if err := s.writeLayer(ctx, l); err != nil {
				return err
			}
		}
		cfg, err := img.RawConfigFile()
		if err != nil {
			return err
		}
		if err := s.writeBytes(cfg); err != nil {
			return err
		}
	}
	raw, err := t.RawManifest()
	if err != nil {
		return err
	}
	return s.writeBytes(raw)
}

func (s *layoutSink) blobPath(h v1.Hash) string {
	return filepath.Join(s.work, "blobs", h.Algorithm, h.Hex)
}

func (s *layoutSink) writeBytes(b []byte) error {
	h, _, err := v1.SHA256(bytes.NewReader(b))
	if err != nil {
		return err
	}
	return s.writeBlob(h, int64(len(b)), func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

func (s *layoutSink) writeLayer(ctx context.Context, l v1.Layer) error {
	h, err := l.Digest()
	if err != nil {
		return err
	}
	size, err := l.Size()
	if err != nil {
		return err
	}
	return s.writeBlob(h, size, func() (io.ReadCloser, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return l.Compressed()
	})
}

// writeBlob writes a blob by temp file and rename, checking its size and
// digest, so a corrupt source never lands in the layout.
func (s *layoutSink) writeBlob(h v1.Hash, size int64, open func() (io.ReadCloser, error)) error {
	dst := s.blobPath(h)
	if fi, err := os.Stat(dst); err == nil && fi.Size() == size {
		return nil
	}
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.CreateTemp(filepath.Dir(dst), ".tmp-"+h.Hex[:12]+"-*")
	if err != nil {
		return err
	}
	hasher := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, hasher), rc)
	cerr := f.Close()
	if err == nil && n != size {
		err = fmt.Errorf("blob %s: got %d bytes, want %d", h, n, size)
	}
	if got := hex.EncodeToString(hasher.Sum(nil)); err == nil && got != h.Hex {
		err = fmt.Errorf("blob %s: its bytes hash to sha256:%s; the source is corrupt", h, got)
	}
	if err = errors.Join(err, cerr); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), dst)
}

func (s *layoutSink) Commit(ctx context.Context) error {
	if !s.fresh {
		return s.addToIndex(ctx, s.dir)
	}
	if err := s.writeIndex(s.work); err != nil { // nobody else writes there
		return err
	}
	err := os.Rename(s.work, s.dir)
	if err == nil {
		s.work = ""
		s.workLock.unlock() // now the layout's own lock file
		return nil
	}
	if fi, serr := os.Stat(s.dir); serr != nil || !fi.IsDir() {
		return fmt.Errorf("output %s: %w; check that %s is writable", s.dir, err, filepath.Dir(s.dir))
	}
	// Another run made the layout since Prepare: add to it instead.
	return s.merge(ctx)
}

// merge moves the blobs of the fresh layout in s.work into the layout
// another run renamed to s.dir meanwhile, then adds s's entries to its
// index.json. A blob either has is the same bytes (its name is their
// digest, checked when written), so replacing it is harmless.
func (s *layoutSink) merge(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(s.dir, "oci-layout")); err != nil {
		return fmt.Errorf("output %s appeared during the run and is not an OCI layout; choose another directory", s.dir)
	}
	src, dst := filepath.Join(s.work, "blobs", "sha256"), filepath.Join(s.dir, "blobs", "sha256")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("output %s: %w; check its permissions", s.dir, err)
	}
	blobs, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("output %s: reading %s: %w", s.dir, src, err)
	}
	for _, b := range blobs {
		if err := os.Rename(filepath.Join(src, b.Name()), filepath.Join(dst, b.Name())); err != nil {
			return fmt.Errorf("output %s: %w; check its permissions", s.dir, err)
		}
	}
	if err := s.addToIndex(ctx, s.dir); err != nil {
		return err
	}
	os.RemoveAll(s.work)
	s.work = ""
	s.workLock.unlock()
	return nil
}

// addToIndex adds s's entries to dir's index.json under dir's lock, so
// that runs writing into one layout at once each keep their entries.
func (s *layoutSink) addToIndex(ctx context.Context, dir string) error {
	l, err := lockFile(ctx, filepath.Join(dir, lockName))
	if err != nil {
		return fmt.Errorf("output %s: locking index.json: %w; another gantry run is writing the layout, or check its permissions", s.dir, err)
	}
	defer l.unlock()
	return s.writeIndex(dir)
}

// writeIndex replaces dir's index.json with its entries and s's (which
// replace those of the same name), through a temporary file of its own.
// The caller excludes other writers of dir.
func (s *layoutSink) writeIndex(dir string) error {
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	old, err := readIndex(dir)
	if err != nil {
		return fmt.Errorf("output %s: %w", s.dir, err)
	}
	for _, d := range old {
		if !s.names[d.Annotations["org.opencontainers.image.ref.name"]] {
			index.Manifests = append(index.Manifests, d)
		}
	}
	index.Manifests = append(index.Manifests, s.entries...)
	raw, err := json.MarshalIndent(index, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, "index.json"), raw); err != nil {
		return fmt.Errorf("output %s: writing index.json: %w; check the free space and permissions", s.dir, err)
	}
	return nil
}

// readIndex reads dir's index.json; a missing one has no entries.
func readIndex(dir string) ([]v1.Descriptor, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading index.json: %w", err)
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("index.json is not a valid image index (%v); restore it, or remove the directory to start a new layout", err)
	}
	return im.Manifests, nil
}

// writeFileAtomic replaces path with data (mode 0644) by a temporary file
// of its own beside it and a rename.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

func (s *layoutSink) Abort() {
	if s.fresh && s.work != "" {
		os.RemoveAll(s.work)
		s.work = ""
	}
	s.workLock.unlock()
}

// staleAge is how old a temporary sibling without a lock file must be to
// be removed (see layoutSink).
const staleAge = time.Hour

// removeStale removes the temporary siblings of the layout dir that no
// live writer holds (see layoutSink). It is best effort: a sibling it
// cannot judge or remove stays.
func removeStale(dir string) {
	parent, prefix := filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-"
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), prefix) {
			removeIfStale(filepath.Join(parent, e.Name()))
		}
	}
}

func removeIfStale(sibling string) {
	f, err := os.Open(filepath.Join(sibling, lockName))
	if errors.Is(err, fs.ErrNotExist) {
		if fi, err := os.Lstat(sibling); err == nil && time.Since(fi.ModTime()) > staleAge {
			os.RemoveAll(sibling)
		}
		return
	}
	if err != nil {
		return
	}
	defer f.Close()
	if ok, _ := tryLock(f); ok { // held while it is removed
		os.RemoveAll(sibling)
	}
}
