package layers

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// testMTime is the Builder.MTime used by most tests; it is far from any host
// timestamp a test file could have.
var testMTime = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)

// file describes a host file for writeTree.
type file struct {
	data string
	mode os.FileMode // 0 → 0644
	link string      // non-empty: a symlink to this target (data ignored)
	dir  bool
}

// writeTree creates files under root (paths are slash-separated).
func writeTree(t testing.TB, root string, files map[string]file) {
	t.Helper()
	for name, f := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case f.dir:
			mode := f.mode
			if mode == 0 {
				mode = 0o755
			}
			if err := os.MkdirAll(p, mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
		case f.link != "":
			if err := os.Symlink(f.link, p); err != nil {
				t.Fatal(err)
			}
		default:
			mode := f.mode
			if mode == 0 {
				mode = 0o644
			}
			if err := os.WriteFile(p, []byte(f.data), mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, mode); err != nil { // umask-independent
				t.Fatal(err)
			}
		}
	}
}

func newCache(t testing.TB) *Cache {
	t.Helper()
	c, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// reopen opens c's directory again, as the next run does.
func reopen(t testing.TB, c *Cache) *Cache {
	t.Helper()
	c2, err := OpenCache(c.Dir())
	if err != nil {
		t.Fatal(err)
	}
	return c2
}

func mustWalk(t testing.TB, s Spec) []Entry {
	t.Helper()
	entries, err := Walk(s)
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return entries
}

func mustBuild(t testing.TB, b *Builder, entries []Entry) *Layer {
	t.Helper()
	l, err := b.Build(context.Background(), entries)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return l
}

func names(entries []Entry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Name)
	}
	return out
}

func byName(entries []Entry) map[string]Entry {
	m := map[string]Entry{}
	for _, e := range entries {
		m[e.Name] = e
	}
	return m
}

func readAll(t testing.TB, open func() (io.ReadCloser, error)) []byte {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// tarMember is one header of a tar stream and its contents.
type tarMember struct {
	hdr  *tar.Header
	data []byte
}

func readTar(t testing.TB, b []byte) []tarMember {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var out []tarMember
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("reading tar: %v", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("reading tar member %s: %v", h.Name, err)
		}
		out = append(out, tarMember{h, data})
	}
}

// layerTar returns the members of l's uncompressed stream, checking the
// layer's digests, sizes and header hygiene on the way.
func layerTar(t testing.TB, l *Layer, mtime time.Time) []tarMember {
	t.Helper()
	compressed := readAll(t, l.Compressed)
	uncompressed := readAll(t, l.Uncompressed)
	dig, _ := l.Digest()
	diff, _ := l.DiffID()
	size, _ := l.Size()
	if got := sha(compressed); got != dig.String() {
		t.Errorf("Digest %s, sha256 of Compressed() %s", dig, got)
	}
	if got := sha(uncompressed); got != diff.String() {
		t.Errorf("DiffID %s, sha256 of Uncompressed() %s", diff, got)
	}
	if size != int64(len(compressed)) {
		t.Errorf("Size %d, Compressed() has %d bytes", size, len(compressed))
	}
	if l.UncompressedSize() != int64(len(uncompressed)) {
		t.Errorf("UncompressedSize %d, Uncompressed() has %d bytes", l.UncompressedSize(), len(uncompressed))
	}
	members := readTar(t, uncompressed)
	for _, m := range members {
		h := m.hdr
		if !h.ModTime.Equal(mtime) {
			t.Errorf("%s: ModTime %v, want %v", h.Name, h.ModTime, mtime)
		}
		if !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
			t.Errorf("%s: has atime %v / ctime %v", h.Name, h.AccessTime, h.ChangeTime)
		}
		for k := range h.PAXRecords {
			if strings.Contains(k, "atime") || strings.Contains(k, "ctime") || strings.HasPrefix(k, "SCHILY.") || strings.HasPrefix(k, "LIBARCHIVE.") {
				t.Errorf("%s: PAX record %q", h.Name, k)
			}
		}
		if h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: Uname %q Gname %q, want empty", h.Name, h.Uname, h.Gname)
		}
		if h.Devmajor != 0 || h.Devminor != 0 {
			t.Errorf("%s: device numbers %d,%d", h.Name, h.Devmajor, h.Devminor)
		}
	}
	return members
}

func memberNames(ms []tarMember) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.hdr.Name)
	}
	return out
}

func digestOf(t testing.TB, l *Layer) (string, string) {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	di, err := l.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	return d.String(), di.String()
}

// copyTree copies the regular files, directories and symlinks of src to dst
// (new mtimes: the copies are written now).
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case fi.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			return os.Chmod(target, fi.Mode().Perm())
		case fi.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(target, b, fi.Mode().Perm()); err != nil {
				return err
			}
			return os.Chmod(target, fi.Mode().Perm())
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// setMTimes gives every path under root the same mtime (and atime).
func setMTimes(t testing.TB, root string, tm time.Time) {
	t.Helper()
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.Mode()&os.ModeSymlink != 0 {
			return err
		}
		return os.Chtimes(p, tm, tm)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func mustHash(t testing.TB, s string) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// contentKeyOf is the content key b gives entries.
func contentKeyOf(t *testing.T, b *Builder, entries []Entry) string {
	t.Helper()
	comp, known := sumsOf(t, b, entries)
	return b.contentKey(comp, entries, known)
}

// sumsOf is b's compression, normalized, and the sums of entries' files.
func sumsOf(t *testing.T, b *Builder, entries []Entry) (Compression, sums) {
	t.Helper()
	comp, err := b.Compression.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	known, err := b.sourceSums(context.Background(), entries)
	if err != nil {
		t.Fatal(err)
	}
	return comp, known
}
