package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	have     map[v1.Hash]bool // blobs written or checked by this run
	refs     map[v1.Hash]bool // the referrers in refEntries
	// refEntries are the images' SBOM and provenance artifacts, listed
	// after the named entries and without a name.
	refEntries []v1.Descriptor
}

// Layout writes an OCI layout at dir, one index.json entry per image
// and tag, named NAME:TAG in org.opencontainers.image.ref.name.
func Layout(dir string, dest Destinations) assemble.Sink {
	return &layoutSink{dir: dir, dest: dest, names: map[string]bool{}, have: map[v1.Hash]bool{}, refs: map[v1.Hash]bool{}}
}

// Prepare checks an existing layout (its oci-layout file, its index.json)
// or starts a new one in a temporary sibling, before anything is written.
func (s *layoutSink) Prepare(ctx context.Context, images []*assemble.Built) error {
	removeStale(s.dir)
	fi, err := os.Stat(s.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		parent := filepath.Dir(s.dir)
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return fmt.Errorf("output %s: %w; check the path and its permissions", s.dir, err)
		}
		work, err := os.MkdirTemp(parent, "."+filepath.Base(s.dir)+".tmp-*")
		if err != nil {
			return fmt.Errorf("output %s: %w; check that %s is writable", s.dir, err, parent)
		}
		s.work, s.fresh = work, true
		if s.workLock, err = newLock(work); err != nil {
			return fmt.Errorf("output %s: locking %s: %w; check that %s is writable", s.dir, work, err, parent)
		}
	case err != nil:
		return fmt.Errorf("output %s: %w; check the path and its permissions", s.dir, err)
	case !fi.IsDir():
		return fmt.Errorf("output %s exists and is not a directory; choose a directory for the OCI layout", s.dir)
	default:
		if err := checkLayout(s.dir); err != nil {
			return err
		}
		s.work = s.dir
	}
	if _, err := os.Stat(filepath.Join(s.work, "oci-layout")); errors.Is(err, fs.ErrNotExist) {
		err = writeFileAtomic(filepath.Join(s.work, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`))
		if err != nil {
			return fmt.Errorf("output %s: writing oci-layout: %w; check that it is writable", s.dir, err)
		}
	}
	if err := os.MkdirAll(filepath.Join(s.work, "blobs", "sha256"), 0o755); err != nil {
		return fmt.Errorf("output %s: %w; check that it is writable", s.dir, err)
	}
	return nil
}

// checkLayout checks that the existing directory dir is an OCI layout
// gantry can add to (its oci-layout file and index.json parse), or empty.
func checkLayout(dir string) error {
	raw, err := os.ReadFile(filepath.Join(dir, "oci-layout"))
	if errors.Is(err, fs.ErrNotExist) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("output %s: %w; check its permissions", dir, err)
		}
		for _, e := range entries {
			if e.Name() == "oci-layout" {
				// another run wrote it since the read above
				return checkLayout(dir)
			}
		}
		for _, e := range entries {
			// another run starting a layout in the same empty directory
			if n := e.Name(); n != lockName && !strings.HasPrefix(n, ".oci-layout.tmp-") {
				return fmt.Errorf("output %s exists and is not an OCI layout (it has no oci-layout file); choose a new or empty directory", dir)
			}
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("output %s: reading oci-layout: %w; check its permissions", dir, err)
	}
	var ol struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(raw, &ol); err != nil || ol.Version == "" {
		return fmt.Errorf(`output %s: its oci-layout file is not {"imageLayoutVersion": "1.0.0"}; fix it, or choose another directory`, dir)
	}
	if _, err := readIndex(dir); err != nil {
		return fmt.Errorf("output %s: %w", dir, err)
	}
	return nil
}

func (s *layoutSink) Write(ctx context.Context, b *assemble.Built) ([]string, error) {
	if err := s.writeTaggable(ctx, b.Taggable()); err != nil {
		return nil, fmt.Errorf("output %s: writing %s: %w", s.dir, b.Spec.Name, err)
	}
	if err := s.writeReferrers(ctx, b); err != nil {
		return nil, fmt.Errorf("output %s: writing the SBOM and provenance of %s: %w", s.dir, b.Spec.Name, err)
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
		if err := s.writeBytes(ctx, cfg); err != nil {
			return err
		}
	}
	raw, err := t.RawManifest()
	if err != nil {
		return err
	}
	return s.writeBytes(ctx, raw)
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
		if s.isReferrer(d) {
			continue // written again below
		}
		if !s.names[d.Annotations["org.opencontainers.image.ref.name"]] {
			index.Manifests = append(index.Manifests, d)
		}
	}
	index.Manifests = append(append(index.Manifests, s.entries...), s.refEntries...)
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
		return nil, fmt.Errorf("reading index.json: %w; check its permissions", err)
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("index.json is not a valid image index (%w); restore it, or remove the directory to start a new layout", err)
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
