package layers

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// randomText returns n bytes of compressible, word-like text.
func randomText(r *rand.Rand, n int) []byte {
	words := []string{"layer", "image", "gantry", "digest", "tar", "blob", "cache", "func", "return", "nil", "err", "\n", "{", "}", "\t"}
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(' ')
	}
	return b.Bytes()[:n]
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

var longName = strings.Repeat("long-directory-name/", 6) + strings.Repeat("x", 120) + ".txt"

// detTree writes a tree that exercises pgzip's multi-block output, long
// (PAX) names, non-ASCII names, empty files and dirs, links.
func detTree(t testing.TB, dir string) {
	t.Helper()
	r := rand.New(rand.NewChaCha8([32]byte{1, 2, 3}))
	writeTree(t, dir, map[string]file{
		"random.bin":         {data: string(randomBytes(r, 1<<20+64<<10))}, // > 1 pgzip block
		"text/big.dat":       {data: string(randomText(r, 128<<10))},
		"text/small.txt":     {data: "small\n"},
		"ünïcødé/文件.txt":     {data: "unicode"},
		"empty":              {},
		"emptydir":           {dir: true},
		"bin/tool":           {data: "#!/bin/sh\nexit 0\n", mode: 0o755},
		"link":               {link: "text/small.txt"},
		longName:             {data: "long"},
		"app.js":             {data: string(randomText(r, 4<<10))},
		"nested/a/b/c/d.txt": {data: "d"},
	})
	if err := os.Link(filepath.Join(dir, "text", "small.txt"), filepath.Join(dir, "hardlink")); err != nil {
		t.Fatal(err)
	}
}

var compressions = []struct {
	name string
	c    Compression
	algo string
}{
	{"zero value", Compression{}, Gzip},
	{"gzip", Compression{Algorithm: Gzip}, Gzip},
	{"zstd", Compression{Algorithm: Zstd}, Zstd},
}

func TestBuildDeterministic(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	detTree(t, src)
	spec := func(from string) Spec {
		return Spec{Sources: []Source{{From: from, To: "/srv"}}, Precompress: true, Owner: &Owner{UID: 1000, GID: 1000}}
	}
	entries := mustWalk(t, spec(src))

	// A copy of the tree elsewhere, with other host mtimes and atimes.
	cp := filepath.Join(dir, "copy")
	copyTree(t, src, cp)
	setMTimes(t, cp, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	if err := os.Link(filepath.Join(cp, "text", "small.txt"), filepath.Join(cp, "hardlink2")); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(cp, "hardlink"))
	if err := os.Rename(filepath.Join(cp, "hardlink2"), filepath.Join(cp, "hardlink")); err != nil {
		t.Fatal(err)
	}
	copied := mustWalk(t, spec(cp))
	if reflect.DeepEqual(entries[1].SourceMTime, copied[1].SourceMTime) {
		t.Fatal("test setup: copy has the same mtimes")
	}

	diffIDs := map[string]string{}
	for _, cc := range compressions {
		t.Run(cc.name, func(t *testing.T) {
			build := func(entries []Entry, mtime time.Time) *Layer {
				b := &Builder{Cache: newCache(t), Compression: cc.c, MTime: mtime}
				l := mustBuild(t, b, entries)
				if l.Cached() {
					t.Error("fresh cache gave a cached layer")
				}
				return l
			}
			l1 := build(entries, testMTime)
			d1, id1 := digestOf(t, l1)
			if l1.Compression() != cc.algo {
				t.Errorf("Compression() = %q, want %q", l1.Compression(), cc.algo)
			}
			blob := readAll(t, l1.Compressed)
			magic := map[string][]byte{Gzip: {0x1f, 0x8b}, Zstd: {0x28, 0xb5, 0x2f, 0xfd}}[cc.algo]
			if !bytes.HasPrefix(blob, magic) {
				t.Errorf("blob starts % x, want %s magic % x", blob[:4], cc.algo, magic)
			}
			// Compressed at all (the tree is mostly compressible text apart
			// from random.bin).
			if size, _ := l1.Size(); size >= l1.UncompressedSize() {
				t.Errorf("compressed size %d >= uncompressed %d", size, l1.UncompressedSize())
			}

			// Same tree, another cache.
			if d, id := digestOf(t, build(entries, testMTime)); d != d1 || id != id1 {
				t.Errorf("second build: %s %s, want %s %s", d, id, d1, id1)
			}
			// After reading every file (atime changes) and an explicit atime.
			for _, e := range entries {
				if e.Source != "" {
					os.Chtimes(e.Source, time.Now().Add(time.Hour), e.SourceMTime)
				}
			}
			// (Chtimes moved the ctimes: the old walk is stale now.)
			entries = mustWalk(t, spec(src))
			if d, id := digestOf(t, build(entries, testMTime)); d != d1 || id != id1 {
				t.Errorf("after atime change: %s %s, want %s %s", d, id, d1, id1)
			}
			// Another directory with other mtimes.
			if d, id := digestOf(t, build(copied, testMTime)); d != d1 || id != id1 {
				t.Errorf("copied tree: %s %s, want %s %s", d, id, d1, id1)
			}
			// Another MTime changes both.
			if d, id := digestOf(t, build(entries, testMTime.Add(time.Second))); d == d1 || id == id1 {
				t.Errorf("MTime+1s gave the same digest %s / diffID %s", d, id)
			}
			// Sub-second MTime differences are truncated, as in the tar.
			if d, _ := digestOf(t, build(entries, testMTime.Add(300*time.Millisecond))); d != d1 {
				t.Errorf("MTime+300ms changed the digest")
			}
			// Independent of the number of CPUs.
			for _, procs := range []int{1, 5} {
				old := runtime.GOMAXPROCS(procs)
				d, id := digestOf(t, build(entries, testMTime))
				runtime.GOMAXPROCS(old)
				if d != d1 || id != id1 {
					t.Errorf("GOMAXPROCS=%d: %s %s, want %s %s", procs, d, id, d1, id1)
				}
			}

			members := layerTar(t, l1, testMTime)
			if len(members) != len(entries) {
				t.Errorf("%d members for %d entries", len(members), len(entries))
			}
			for i, m := range members {
				if i < len(entries) {
					want := entries[i].Name
					if entries[i].Type == tar.TypeDir {
						want += "/"
					}
					if m.hdr.Name != want {
						t.Errorf("member %d is %q, want %q", i, m.hdr.Name, want)
					}
				}
				if m.hdr.Uid != 1000 || m.hdr.Gid != 1000 {
					t.Errorf("%s: owner %d:%d", m.hdr.Name, m.hdr.Uid, m.hdr.Gid)
				}
				if e := entries[i]; e.Type == tar.TypeReg && !e.Gzip {
					want, _ := os.ReadFile(e.Source)
					if !bytes.Equal(m.data, want) {
						t.Errorf("%s: content differs from %s", m.hdr.Name, e.Source)
					}
				}
			}
			diffIDs[cc.name] = id1

			// WriteTar gives exactly the uncompressed stream.
			var buf bytes.Buffer
			b := &Builder{Compression: cc.c, MTime: testMTime}
			if err := b.WriteTar(context.Background(), &buf, entries); err != nil {
				t.Fatal(err)
			}
			if got := sha(buf.Bytes()); got != id1 {
				t.Errorf("WriteTar sha256 %s, DiffID %s", got, id1)
			}
		})
	}
	// The tar stream does not depend on the compression.
	if diffIDs["gzip"] != diffIDs["zstd"] || diffIDs["gzip"] != diffIDs["zero value"] {
		t.Errorf("diffIDs differ between compressions: %v", diffIDs)
	}
}

// TestBuildCompressionLevels: each level gives a valid, reproducible layer
// with the same diffID, levels are part of the cache key, and bad settings
// are refused.
func TestBuildCompressionLevels(t *testing.T) {
	r := rand.New(rand.NewChaCha8([32]byte{9}))
	entries := []Entry{
		{Name: "a.txt", Type: tar.TypeReg, Mode: 0o644, Data: randomText(r, 100<<10)},
		{Name: "b.bin", Type: tar.TypeReg, Mode: 0o644, Data: randomBytes(r, 64<<10)},
	}
	cache := newCache(t)
	var diffID string
	sizes := map[string]int64{}
	for _, c := range []Compression{{Gzip, 1}, {Gzip, 6}, {Gzip, 9}, {Zstd, 1}, {Zstd, 2}, {Zstd, 3}, {Zstd, 4}} {
		name := fmt.Sprintf("%s-%d", c.Algorithm, c.Level)
		b := &Builder{Cache: cache, Compression: c, MTime: testMTime}
		l := mustBuild(t, b, entries)
		if l.Cached() {
			t.Errorf("%s: hit in a cache holding only other levels", name)
		}
		layerTar(t, l, testMTime)
		_, id := digestOf(t, l)
		if diffID == "" {
			diffID = id
		} else if id != diffID {
			t.Errorf("%s: diffID %s, want %s", name, id, diffID)
		}
		// Same level again, other cache: same bytes.
		b2 := &Builder{Cache: newCache(t), Compression: c, MTime: testMTime}
		if d1, _ := digestOf(t, l); d1 != func() string { d, _ := digestOf(t, mustBuild(t, b2, entries)); return d }() {
			t.Errorf("%s: not reproducible", name)
		}
		sizes[name], _ = l.Size()
	}
	if sizes["gzip-9"] >= sizes["gzip-1"] {
		t.Errorf("gzip level 9 (%d bytes) not smaller than level 1 (%d)", sizes["gzip-9"], sizes["gzip-1"])
	}
	if sizes["zstd-4"] >= sizes["zstd-1"] {
		t.Errorf("zstd level 4 (%d bytes) not smaller than level 1 (%d)", sizes["zstd-4"], sizes["zstd-1"])
	}

	for _, c := range []Compression{{Gzip, 10}, {Gzip, -1}, {Zstd, 5}, {"brotli", 0}} {
		b := &Builder{Cache: cache, Compression: c, MTime: testMTime}
		if l, err := b.Build(context.Background(), entries); err == nil {
			t.Errorf("%+v: built %v, want an error", c, l)
		}
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		in      Compression
		want    Compression
		wantErr bool
	}{
		{Compression{}, Compression{Gzip, 1}, false},
		{Compression{Gzip, 0}, Compression{Gzip, 1}, false},
		{Compression{Gzip, 9}, Compression{Gzip, 9}, false},
		{Compression{Zstd, 0}, Compression{Zstd, 1}, false},
		{Compression{Zstd, 4}, Compression{Zstd, 4}, false},
		{Compression{Gzip, 10}, Compression{}, true},
		{Compression{Zstd, 5}, Compression{}, true},
		{Compression{Zstd, -1}, Compression{}, true},
		{Compression{"xz", 1}, Compression{}, true},
	}
	for _, tt := range tests {
		got, err := tt.in.Normalize()
		if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
			t.Errorf("%+v.Normalize() = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	keys := map[string]Compression{}
	for _, c := range []Compression{{Gzip, 1}, {Gzip, 2}, {Zstd, 1}, {Zstd, 2}} {
		k := c.Key()
		if other, dup := keys[k]; dup {
			t.Errorf("%+v and %+v share the key %q", c, other, k)
		}
		keys[k] = c
	}
}

// TestBuildHeaders checks the tar headers of generated and special entries:
// large ids and long names may need PAX records, but never times or names.
func TestBuildHeaders(t *testing.T) {
	entries := []Entry{
		{Name: "big-ids", Type: tar.TypeReg, Mode: 0o600, UID: 3000000, GID: 4000000, Data: []byte("x")},
		{Name: "d", Type: tar.TypeDir, Mode: 0o700, UID: 1, GID: 2},
		{Name: "d/" + longName, Type: tar.TypeReg, Mode: 0o644, Data: []byte("long")},
		{Name: "d/sym", Type: tar.TypeSymlink, Mode: 0o777, Linkname: "/" + longName},
		{Name: "empty", Type: tar.TypeReg, Mode: 0o644, Data: []byte{}},
		{Name: "ünï", Type: tar.TypeReg, Mode: 0o644, Data: []byte("u")},
	}
	for _, mtime := range []time.Time{testMTime, time.Unix(0, 0), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)} {
		b := &Builder{Cache: newCache(t), MTime: mtime.In(time.FixedZone("X", 3600))}
		l := mustBuild(t, b, entries)
		members := layerTar(t, l, mtime)
		want := []string{"big-ids", "d/", "d/" + longName, "d/sym", "empty", "ünï"}
		if got := memberNames(members); !reflect.DeepEqual(got, want) {
			t.Fatalf("members %q, want %q", got, want)
		}
		h := members[0].hdr
		if h.Uid != 3000000 || h.Gid != 4000000 || h.Mode != 0o600 || string(members[0].data) != "x" {
			t.Errorf("big-ids: %+v", h)
		}
		if h := members[1].hdr; h.Typeflag != tar.TypeDir || h.Mode != 0o700 || h.Uid != 1 || h.Gid != 2 {
			t.Errorf("d/: %+v", h)
		}
		if h := members[3].hdr; h.Linkname != "/"+longName {
			t.Errorf("long symlink target %q", h.Linkname)
		}
		if h := members[4].hdr; h.Size != 0 || h.Typeflag != tar.TypeReg {
			t.Errorf("empty: %+v", h)
		}
	}
}

// TestBuildSourceChanged: a source that differs from what Walk saw fails the
// build, and leaves nothing in the cache; read ahead too (among many small
// files) or not.
func TestBuildSourceChanged(t *testing.T) {
	tests := []struct {
		name    string
		precomp bool
		change  func(p string) error
		want    string
	}{
		{"grown", false, func(p string) error { return appendFile(p, "more") }, "changed while"},
		{"shrunk", false, func(p string) error { return os.Truncate(p, 3) }, "changed while"},
		{"same size, new mtime", false, func(p string) error {
			if err := os.WriteFile(p, []byte("HELLO WORLD\n"), 0o644); err != nil {
				return err
			}
			return os.Chtimes(p, time.Now(), time.Now().Add(time.Hour))
		}, "changed while"},
		{"removed", false, os.Remove, "no such file"},
		{"grown, precompressed", true, func(p string) error { return appendFile(p, "more") }, "changed while"},
	}
	for _, tt := range tests {
		for _, many := range []bool{false, true} {
			name := tt.name
			if many {
				name += ", read ahead"
			}
			t.Run(name, func(t *testing.T) { buildSourceChanged(t, tt.precomp, many, tt.change, tt.want, tt.name == "removed") })
		}
	}
}

func buildSourceChanged(t *testing.T, precomp, many bool, change func(string) error, want string, removed bool) {
	src := t.TempDir()
	files := map[string]file{"a.js": {data: "hello world\n"}, "b.txt": {data: "b"}}
	for i := range 3 * readAheadFiles {
		files[fmt.Sprintf("%c/f%03d", 'A'+i%3, i)] = file{data: strings.Repeat("x", i)} // before and after a.js
	}
	if !many {
		files = map[string]file{"a.js": files["a.js"], "b.txt": files["b.txt"]}
	}
	writeTree(t, src, files)
	setMTimes(t, src, testMTime)
	spec := Spec{Sources: []Source{{From: src, To: "/x"}}, Precompress: precomp}
	entries := mustWalk(t, spec)
	if precomp { // only the .gz sibling reads a.js
		var gz []Entry
		for _, e := range entries {
			if e.Name != "x/a.js" {
				gz = append(gz, e)
			}
		}
		entries = gz
	}
	target := filepath.Join(src, "a.js")
	if err := change(target); err != nil {
		t.Fatal(err)
	}
	cache := newCache(t)
	b := &Builder{Cache: cache, MTime: testMTime}
	l, err := b.Build(context.Background(), entries)
	if err == nil {
		t.Fatalf("built %v from a changed source", l)
	}
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), target) {
		t.Errorf("error %q, want it to name %s and say %q", err, target, want)
	}
	assertCacheEmpty(t, cache)
	if removed {
		return
	}
	// Walking again picks up the change and builds: every file read once,
	// each member holding its file's bytes
	entries = mustWalk(t, spec)
	b = &Builder{Cache: newCache(t), MTime: testMTime}
	l = mustBuild(t, b, entries)
	regular := 0
	for _, e := range entries {
		if e.Type == tar.TypeReg {
			regular++
		}
	}
	if got := b.Stats().FilesRead; got != int64(regular) {
		t.Errorf("%d files read for %d regular entries", got, regular)
	}
	for _, m := range layerTar(t, l, testMTime) {
		if m.hdr.Typeflag != tar.TypeReg || strings.HasSuffix(m.hdr.Name, ".gz") {
			continue
		}
		if disk, err := os.ReadFile(filepath.Join(src, strings.TrimPrefix(m.hdr.Name, "x/"))); err != nil || string(disk) != string(m.data) {
			t.Errorf("%s: %d bytes in the layer, the file has %d (%v)", m.hdr.Name, len(m.data), len(disk), err)
		}
	}
}

// TestBuildGrowsDuringRead: a file that grows while it is copied (after the
// size check at open) is caught by the check after the copy.
func TestBuildGrowsDuringRead(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]file{"a": {data: "aaaa"}})
	entries := mustWalk(t, Spec{Sources: []Source{{From: src, To: "/"}}})
	b := &Builder{Cache: newCache(t), MTime: testMTime}
	w := &hookWriter{after: 0, hook: func() { appendFile(filepath.Join(src, "a"), "grown") }}
	err := b.copyFile(w, &entries[0], &notes{}, nil)
	if err == nil || !strings.Contains(err.Error(), "changed while") {
		t.Errorf("copyFile of a file grown during the copy: %v", err)
	}
}

type hookWriter struct {
	after int
	n     int
	hook  func()
}

func (h *hookWriter) Write(p []byte) (int, error) {
	h.n += len(p)
	if h.hook != nil && h.n > h.after {
		h.hook()
		h.hook = nil
	}
	return len(p), nil
}

func TestBuildCancelled(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]file{"a": {data: "a"}, "b": {data: "b"}})
	entries := mustWalk(t, Spec{Sources: []Source{{From: src, To: "/"}}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cache := newCache(t)
	b := &Builder{Cache: cache, MTime: testMTime}
	if _, err := b.Build(ctx, entries); !errors.Is(err, context.Canceled) {
		t.Errorf("Build with a cancelled context: %v", err)
	}
	assertCacheEmpty(t, cache)
	if s := b.Stats(); s.FilesRead != 0 {
		t.Errorf("cancelled build read %d files", s.FilesRead)
	}
}

func appendFile(p, s string) error {
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	return errors.Join(err, f.Close())
}

// assertCacheEmpty checks that no blob, record or temporary file is left.
func assertCacheEmpty(t *testing.T, c *Cache) {
	t.Helper()
	for _, sub := range []string{"blobs/sha256", "layers", "tmp"} {
		des, err := os.ReadDir(filepath.Join(c.Dir(), sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range des {
			t.Errorf("left in the cache: %s/%s", sub, de.Name())
		}
	}
}
