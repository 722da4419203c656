package debian

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/gantry-dev/gantry/layers"
)

// debManifest is what a verified .deb holds, so that a rebuild reads no
// .deb: its control files and its data members, whose contents are in the
// file store by sha256.
type debManifest struct {
	Format  int               `json:"format"`
	Control map[string][]byte `json:"control"`
	Members []debMember       `json:"members"`
}

type debMember struct {
	Name   string `json:"name"` // clean, relative to "/" ("usr/bin/ps"); "" is the root
	Type   byte   `json:"type"`
	Mode   int64  `json:"mode"`
	UID    int    `json:"uid"`
	GID    int    `json:"gid"`
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Link   string `json:"link,omitempty"` // symlink target as written; hard link target, clean
}

const debManifestFormat = 1

// store is the extracted-file store: <cache>/debian/files/<sha256> holds
// contents, <cache>/debian/unpacked/<deb sha256>.json what a .deb holds.
type store struct{ files, unpacked string }

func openStore(cache string) (store, error) {
	s := store{files: filepath.Join(cache, "debian", "files"), unpacked: filepath.Join(cache, "debian", "unpacked")}
	for _, d := range []string{s.files, s.unpacked} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return store{}, fmt.Errorf("creating the debian file store: %w", err)
		}
	}
	return s, nil
}

func (s store) path(sha string) string { return filepath.Join(s.files, sha) }

// unpack returns what the .deb with this sha256 holds, extracting it (from
// the verified download open gives) unless an earlier build did.
func (s store) unpack(ctx context.Context, sha string, open func() (io.ReadCloser, error)) (*debManifest, error) {
	if m, ok := s.cached(sha); ok {
		return m, nil
	}
	mpath := filepath.Join(s.unpacked, sha+".json")
	r, err := open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	m := &debManifest{Format: debManifestFormat}
	m.Control, err = readDeb(layers.ContextReader(ctx, r), func(h *tar.Header, r io.Reader) error {
		mem, err := s.member(ctx, h, r)
		if err == nil {
			m.Members = append(m.Members, mem)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	tmp := mpath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return nil, fmt.Errorf("writing the debian file store: %w", err)
	}
	return m, os.Rename(tmp, mpath)
}

// cached is what an earlier build found in the .deb with this sha256, if
// the store still has all of it.
func (s store) cached(sha string) (*debManifest, bool) {
	b, err := os.ReadFile(filepath.Join(s.unpacked, sha+".json"))
	if err != nil {
		return nil, false
	}
	var m debManifest
	if json.Unmarshal(b, &m) != nil || m.Format != debManifestFormat || !s.complete(&m) {
		return nil, false
	}
	return &m, true
}

// complete reports whether the store still has every member's content.
func (s store) complete(m *debManifest) bool {
	for _, mem := range m.Members {
		if mem.Type == tar.TypeReg {
			if fi, err := os.Stat(s.path(mem.SHA256)); err != nil || fi.Size() != mem.Size {
				return false
			}
		}
	}
	return true
}

// cleanMember is a data.tar name made relative to "/", refusing names
// that climb out.
func cleanMember(name string) (string, error) {
	n := strings.TrimSuffix(strings.TrimPrefix(name, "./"), "/")
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "", fmt.Errorf("data member %q leaves the root", name)
		}
	}
	return strings.Trim(path.Clean("/"+n), "/"), nil
}

func (s store) member(ctx context.Context, h *tar.Header, r io.Reader) (debMember, error) {
	name, err := cleanMember(h.Name)
	if err != nil {
		return debMember{}, err
	}
	m := debMember{Name: name, Type: h.Typeflag, Mode: h.Mode & 0o7777, UID: h.Uid, GID: h.Gid}
	switch h.Typeflag {
	case tar.TypeDir, tar.TypeSymlink:
		m.Link = h.Linkname
	case tar.TypeLink:
		if m.Link, err = cleanMember(h.Linkname); err != nil {
			return debMember{}, err
		}
	case tar.TypeReg, tar.TypeRegA:
		m.Type = tar.TypeReg
		m.SHA256, m.Size, err = s.put(ctx, r, h.Size)
	default:
		return debMember{}, fmt.Errorf("data member %s: type %q is not supported (devices and fifos are not made)", h.Name, h.Typeflag)
	}
	return m, err
}

// put copies a member's content into the store.
func (s store) put(ctx context.Context, r io.Reader, size int64) (string, int64, error) {
	return layers.StoreFile(ctx, s.files, r, size, nil)
}

// fill points a regular entry at its store file, which must still have
// the size it was stored with.
func (s store) fill(e *layers.Entry, m debMember) error {
	e.Source, e.Size = s.path(m.SHA256), m.Size
	fi, err := os.Stat(e.Source)
	if err != nil {
		return fmt.Errorf("debian file store: %w", err)
	}
	if fi.Size() != m.Size {
		return fmt.Errorf("debian file store: %s has %d bytes, want %d (the cache was altered; delete %s)", e.Source, fi.Size(), m.Size, s.files)
	}
	e.SourceMTime = fi.ModTime()
	return nil
}
