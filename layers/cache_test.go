package layers

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func cacheTree(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	writeTree(t, src, map[string]file{
		"a.txt":     {data: "alpha alpha alpha\n"},
		"b/c.txt":   {data: "charlie\n"},
		"b/run":     {data: "#!/bin/sh\n", mode: 0o755},
		"d.js":      {data: "let d = 1;\n"},
		"sym":       {link: "a.txt"},
		"empty/dir": {dir: true},
	})
	setMTimes(t, src, testMTime.Add(-time.Hour))
	return src
}

func cacheSpec(src string) Spec {
	return Spec{Sources: []Source{{From: src, To: "/app"}}, Precompress: true}
}

func TestCacheHit(t *testing.T) {
	src := cacheTree(t)
	cache := newCache(t)
	b := &Builder{Cache: cache, MTime: testMTime}
	entries := mustWalk(t, cacheSpec(src))
	l1 := mustBuild(t, b, entries)
	d1, id1 := digestOf(t, l1)
	st := b.Stats()
	// a.txt, b/c.txt, b/run, d.js and three .gz, read once (no registry
	// to ask first)
	if st.Misses != 1 || st.Hits != 0 || st.FilesRead != 7 {
		t.Fatalf("first build stats %+v, want 1 miss, 7 files read", st)
	}
	if l1.Cached() {
		t.Error("first build reports Cached")
	}
	if got := l1.Path(); filepath.Dir(got) != filepath.Join(cache.Dir(), "blobs", "sha256") || filepath.Base(got) != strings.TrimPrefix(d1, "sha256:") {
		t.Errorf("Path() = %s", got)
	}
	want := readAll(t, l1.Uncompressed)

	// The same entries again: a hit, nothing read.
	l2 := mustBuild(t, b, entries)
	if d, id := digestOf(t, l2); d != d1 || id != id1 || !l2.Cached() {
		t.Errorf("second build: %s %s cached=%v", d, id, l2.Cached())
	}
	if s2 := b.Stats(); s2.FilesRead != st.FilesRead || s2.Hits != 1 || s2.Misses != 1 {
		t.Errorf("second build stats %+v", s2)
	}
	if s1, _ := l1.Size(); func() int64 { s, _ := l2.Size(); return s }() != s1 || l2.UncompressedSize() != l1.UncompressedSize() {
		t.Error("cached layer has other sizes")
	}
	layerTar(t, l2, testMTime)

	// A fresh Builder over the same cache on disk: a hit, nothing read.
	b2 := &Builder{Cache: cache, MTime: testMTime}
	l3 := mustBuild(t, b2, mustWalk(t, cacheSpec(src)))
	if d, _ := digestOf(t, l3); d != d1 || !l3.Cached() {
		t.Errorf("unchanged sources, new Builder: digest %s cached=%v, want hit on %s", d, l3.Cached(), d1)
	}
	if got := readAll(t, l3.Uncompressed); !bytes.Equal(got, want) {
		t.Error("cached layer content changed")
	}
	if s := b2.Stats(); s.FilesRead != 0 || s.Hits != 1 {
		t.Errorf("stats %+v, want 1 hit and no file read", s)
	}

	// Sources gone altogether: the walked entries still hit.
	if err := os.RemoveAll(src); err != nil {
		t.Fatal(err)
	}
	if l, err := b2.Build(context.Background(), entries); err != nil || !l.Cached() {
		t.Errorf("build with removed sources: %v", err)
	}
}

// TestCacheRewriteSameSizeAndMTime: a file rewritten in place with content
// of the same size and its mtime restored (echo 2.0.0 > f; touch -d @0 f)
// is a miss that ships the new content: the selector has the file's ctime
// and inode, which the rewrite changed.
func TestCacheRewriteSameSizeAndMTime(t *testing.T) {
	src := t.TempDir()
	p := filepath.Join(src, "VERSION")
	writeTree(t, src, map[string]file{"VERSION": {data: "1.0.0\n"}})
	epoch := time.Unix(0, 0)
	if err := os.Chtimes(p, epoch, epoch); err != nil {
		t.Fatal(err)
	}
	cache := newCache(t)
	b := &Builder{Cache: cache, MTime: testMTime}
	spec := Spec{Sources: []Source{{From: src, To: "/app"}}}
	l1 := mustBuild(t, b, mustWalk(t, spec))
	before, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	// echo 2.0.0 > VERSION; touch -d @0 VERSION (same inode, size, mtime)
	rewriteKeepingMTime(t, p, "2.0.0\n", before)
	after, _ := os.Stat(p)
	if after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
		t.Fatal("test setup: size or mtime differ")
	}
	l2 := mustBuild(t, b, mustWalk(t, spec))
	if l2.Cached() {
		t.Fatal("rewritten file with the same size and mtime was a cache hit")
	}
	members := layerTar(t, l2, testMTime)
	for _, m := range members {
		if m.hdr.Name == "app/VERSION" && string(m.data) != "2.0.0\n" {
			t.Errorf("layer ships %q, want 2.0.0", m.data)
		}
	}
	if d1, _ := digestOf(t, l1); d1 == func() string { d, _ := digestOf(t, l2); return d }() {
		t.Error("same digest after the content changed")
	}
	// Nothing changed since: a hit.
	if l3 := mustBuild(t, b, mustWalk(t, spec)); !l3.Cached() {
		t.Error("unchanged rebuild is a miss")
	}
}

// rewriteKeepingMTime rewrites p in place with data and restores its mtime,
// making sure (on file systems with a coarse ctime clock) that the ctime
// moved, as it does for a rewrite that is not immediate.
func rewriteKeepingMTime(t *testing.T, p, data string, before os.FileInfo) {
	t.Helper()
	oldCtime, _ := statOf(before)
	for i := 0; ; i++ {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(data); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, before.ModTime(), before.ModTime()); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if hs, _ := statOf(fi); hs.ctime != oldCtime.ctime || i == 50 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCacheSelector: every input of the layer takes part in the selector.
func TestCacheSelector(t *testing.T) {
	src := cacheTree(t)
	entries := mustWalk(t, cacheSpec(src))
	base := &Builder{MTime: testMTime}
	sel := base.Selector(entries)
	modified := func(f func(e []Entry) []Entry) []Entry {
		c := append([]Entry(nil), entries...)
		return f(c)
	}
	tests := []struct {
		name    string
		b       *Builder
		entries []Entry
		same    bool
	}{
		{"identical", &Builder{MTime: testMTime}, entries, true},
		{"normalized compression", &Builder{MTime: testMTime, Compression: Compression{Gzip, 1}}, entries, true},
		{"sub-second mtime", &Builder{MTime: testMTime.Add(time.Millisecond)}, entries, true},
		{"mtime", &Builder{MTime: testMTime.Add(time.Second)}, entries, false},
		{"gzip level", &Builder{MTime: testMTime, Compression: Compression{Gzip, 2}}, entries, false},
		{"zstd", &Builder{MTime: testMTime, Compression: Compression{Algorithm: Zstd}}, entries, false},
		{"name", base, modified(func(e []Entry) []Entry { e[1].Name += "x"; return e }), false},
		{"mode", base, modified(func(e []Entry) []Entry { e[1].Mode = 0o600; return e }), false},
		{"uid", base, modified(func(e []Entry) []Entry { e[1].UID = 1; return e }), false},
		{"gid", base, modified(func(e []Entry) []Entry { e[1].GID = 1; return e }), false},
		{"size", base, modified(func(e []Entry) []Entry { e[1].Size++; return e }), false},
		{"source mtime", base, modified(func(e []Entry) []Entry { e[1].SourceMTime = e[1].SourceMTime.Add(1); return e }), false},
		{"source ctime", base, modified(func(e []Entry) []Entry { e[1].host.ctime++; return e }), false},
		{"source inode", base, modified(func(e []Entry) []Entry { e[1].host.id.ino++; return e }), false},
		{"source device", base, modified(func(e []Entry) []Entry { e[1].host.id.dev++; return e }), false},
		{"linkname", base, modified(func(e []Entry) []Entry {
			for i := range e {
				if e[i].Type == tar.TypeSymlink {
					e[i].Linkname = "b"
				}
			}
			return e
		}), false},
		{"gzip flag", base, modified(func(e []Entry) []Entry {
			for i := range e {
				if e[i].Gzip {
					e[i].Gzip = false
				}
			}
			return e
		}), false},
		{"data", base, append(append([]Entry(nil), entries...), Entry{Name: "zz", Type: tar.TypeReg, Data: []byte("1")}), false},
		{"one more entry", base, append(append([]Entry(nil), entries...), Entry{Name: "zz", Type: tar.TypeDir}), false},
		{"one entry fewer", base, entries[:len(entries)-1], false},
		{"name/linkname boundary", base, []Entry{{Name: "ab", Type: tar.TypeSymlink, Linkname: "c"}}, false},
	}
	other := (&Builder{MTime: testMTime}).Selector([]Entry{{Name: "a", Type: tar.TypeSymlink, Linkname: "bc"}})
	for _, tt := range tests {
		got := tt.b.Selector(tt.entries)
		if (got == sel) != tt.same {
			t.Errorf("%s: selector equal=%v, want %v", tt.name, got == sel, tt.same)
		}
	}
	if other == (&Builder{MTime: testMTime}).Selector([]Entry{{Name: "ab", Type: tar.TypeSymlink, Linkname: "c"}}) {
		t.Error("entries a→bc and ab→c share a selector")
	}
	a := (&Builder{MTime: testMTime}).Selector([]Entry{{Name: "f", Type: tar.TypeReg, Data: []byte("one")}})
	if a == (&Builder{MTime: testMTime}).Selector([]Entry{{Name: "f", Type: tar.TypeReg, Data: []byte("two")}}) {
		t.Error("inline data is not in the selector")
	}
}

// TestCacheMiss: each change to the source is a miss whose layer is the one
// a fresh cache would build.
func TestCacheMiss(t *testing.T) {
	tests := []struct {
		name       string
		change     func(t *testing.T, src string)
		sameDigest bool
	}{
		{"content and size", func(t *testing.T, src string) {
			p := filepath.Join(src, "a.txt")
			fi, _ := os.Stat(p)
			os.WriteFile(p, []byte("longer content than before\n"), 0o644)
			os.Chtimes(p, fi.ModTime(), fi.ModTime()) // even with the old mtime
		}, false},
		{"content, same size, new mtime", func(t *testing.T, src string) {
			p := filepath.Join(src, "b/c.txt")
			os.WriteFile(p, []byte("CHARLIE\n"), 0o644)
			os.Chtimes(p, time.Now(), testMTime)
		}, false},
		{"mtime only", func(t *testing.T, src string) {
			os.Chtimes(filepath.Join(src, "d.js"), time.Now(), testMTime)
		}, true},
		{"mode", func(t *testing.T, src string) { os.Chmod(filepath.Join(src, "a.txt"), 0o755) }, false},
		{"new file", func(t *testing.T, src string) { os.WriteFile(filepath.Join(src, "new"), nil, 0o644) }, false},
		{"renamed", func(t *testing.T, src string) { os.Rename(filepath.Join(src, "a.txt"), filepath.Join(src, "a2.txt")) }, false},
		{"symlink target", func(t *testing.T, src string) {
			os.Remove(filepath.Join(src, "sym"))
			os.Symlink("b/c.txt", filepath.Join(src, "sym"))
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := cacheTree(t)
			cache := newCache(t)
			b := &Builder{Cache: cache, MTime: testMTime}
			d1, _ := digestOf(t, mustBuild(t, b, mustWalk(t, cacheSpec(src))))
			read := b.Stats().FilesRead
			tt.change(t, src)
			entries := mustWalk(t, cacheSpec(src))
			compressed := b.Stats().Compressed
			b.Cache = reopen(t, cache) // the next run
			l := mustBuild(t, b, entries)
			if b.Stats().Misses != 2 || b.Stats().Hits != 0 {
				t.Fatalf("change was a selector hit (stats %+v)", b.Stats())
			}
			// same bytes (a new mtime only): found by content, nothing
			// compressed; else built
			if st := b.Stats(); l.Cached() != tt.sameDigest || (st.ContentHits == 1) != tt.sameDigest || (st.Compressed == compressed) != tt.sameDigest {
				t.Fatalf("cached %v, stats %+v (compressed %d before)", l.Cached(), st, compressed)
			}
			if b.Stats().FilesRead <= read {
				t.Error("miss read no file")
			}
			d, id := digestOf(t, l)
			if (d == d1) != tt.sameDigest {
				t.Errorf("digest %s vs %s before: same=%v, want %v", d, d1, d == d1, tt.sameDigest)
			}
			fresh := mustBuild(t, &Builder{Cache: newCache(t), MTime: testMTime}, entries)
			if fd, fid := digestOf(t, fresh); fd != d || fid != id {
				t.Errorf("rebuilt %s, a fresh cache gives %s", d, fd)
			}
			layerTar(t, l, testMTime)
			// and now it is a hit again
			if l := mustBuild(t, b, entries); !l.Cached() {
				t.Error("rebuilt layer is not cached")
			}
		})
	}
}

// TestCacheDamagedBlob: a blob that was truncated, removed or rewritten is a
// miss and is rebuilt; one damaged behind the cache's back (size and mtime
// restored) is a hit whose Compressed() fails at EOF.
func TestCacheDamagedBlob(t *testing.T) {
	corrupt := func(t *testing.T, p string) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, blob string, recs []string)
		hit    bool
	}{
		{"truncated", func(t *testing.T, blob string, _ []string) { os.Truncate(blob, 10) }, false},
		{"truncated, mtime restored", func(t *testing.T, blob string, _ []string) {
			fi, _ := os.Stat(blob)
			os.Truncate(blob, fi.Size()-1)
			os.Chtimes(blob, fi.ModTime(), fi.ModTime())
		}, false},
		{"emptied", func(t *testing.T, blob string, _ []string) { os.Truncate(blob, 0) }, false},
		{"appended", func(t *testing.T, blob string, _ []string) { appendFile(blob, "x") }, false},
		{"removed", func(t *testing.T, blob string, _ []string) { os.Remove(blob) }, false},
		{"rewritten, same size, new mtime", func(t *testing.T, blob string, _ []string) {
			corrupt(t, blob)
			os.Chtimes(blob, time.Now(), time.Now().Add(time.Hour))
		}, false},
		{"garbage record", func(t *testing.T, _ string, recs []string) {
			for _, rec := range recs {
				os.WriteFile(rec, []byte("{"), 0o644)
			}
		}, false},
		{"record of another compression", func(t *testing.T, _ string, recs []string) {
			for _, rec := range recs {
				b, _ := os.ReadFile(rec)
				os.WriteFile(rec, bytes.Replace(b, []byte(`"compression":"gzip/`), []byte(`"compression":"zstd/`), 1), 0o644)
			}
		}, false},
		{"corrupt, size and mtime restored", func(t *testing.T, blob string, _ []string) {
			fi, _ := os.Stat(blob)
			corrupt(t, blob)
			os.Chtimes(blob, fi.ModTime(), fi.ModTime())
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := cacheTree(t)
			cache := newCache(t)
			b := &Builder{Cache: cache, MTime: testMTime}
			entries := mustWalk(t, cacheSpec(src))
			l1 := mustBuild(t, b, entries)
			d1, id1 := digestOf(t, l1)
			rec := filepath.Join(cache.Dir(), "layers", b.Selector(entries)+".json")
			// the record by content too: a damaged record is a miss only
			// when both are damaged
			content := cache.contentRecord(contentKeyOf(t, b, entries))
			for _, r := range []string{rec, content} {
				if _, err := os.Stat(r); err != nil {
					t.Fatalf("no cache record: %v", err)
				}
			}
			tt.damage(t, l1.Path(), []string{rec, content})

			l2 := mustBuild(t, b, entries)
			if l2.Cached() != tt.hit {
				t.Fatalf("Cached() = %v, want %v", l2.Cached(), tt.hit)
			}
			if d, id := digestOf(t, l2); d != d1 || id != id1 {
				t.Errorf("digests %s %s, want %s %s", d, id, d1, id1)
			}
			if !tt.hit {
				layerTar(t, l2, testMTime) // checks the rebuilt blob against its digest
				if l3 := mustBuild(t, b, entries); !l3.Cached() {
					t.Error("rebuilt layer is not a hit afterwards")
				}
				return
			}
			// Undetectable without reading: the verifier fails at EOF.
			for _, open := range []func() (io.ReadCloser, error){l2.Compressed, l2.Uncompressed} {
				rc, err := open()
				if err != nil {
					continue // Uncompressed may notice in the header
				}
				_, err = io.Copy(io.Discard, rc)
				rc.Close()
				if err == nil {
					t.Error("reading a corrupt blob succeeded")
				}
			}
			rc, _ := l2.Compressed()
			_, err := io.Copy(io.Discard, rc)
			rc.Close()
			if err == nil || !strings.Contains(err.Error(), "corrupt") || !strings.Contains(err.Error(), d1) {
				t.Errorf("Compressed() error %v, want it to say corrupt and name %s", err, d1)
			}
		})
	}
}

// TestCompressedVerifier: the verifier passes good blobs read in any chunk
// size, and fails a blob with the right bytes but a wrong expected size.
func TestCompressedVerifier(t *testing.T) {
	src := cacheTree(t)
	b := &Builder{Cache: newCache(t), MTime: testMTime}
	l := mustBuild(t, b, mustWalk(t, cacheSpec(src)))
	want := readAll(t, l.Compressed)
	for _, chunk := range []int{1, 7, 512, 1 << 20} {
		rc, _ := l.Compressed()
		var got []byte
		buf := make([]byte, chunk)
		for {
			n, err := rc.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("chunk %d: %v", chunk, err)
			}
		}
		rc.Close()
		if !bytes.Equal(got, want) {
			t.Errorf("chunk %d: other bytes", chunk)
		}
	}
	bad := *l
	bad.size++
	rc, _ := bad.Compressed()
	if _, err := io.Copy(io.Discard, rc); err == nil {
		t.Error("size mismatch not reported")
	}
	rc.Close()
	gone := *l
	gone.path = filepath.Join(t.TempDir(), "missing")
	if _, err := gone.Compressed(); err == nil {
		t.Error("Compressed() of a missing blob succeeded")
	}
}

// TestCacheSharedBlob: two selectors with the same bytes (the same tree in
// two places, with other mtimes) share one blob; building one must not turn
// the other into a miss.
func TestCacheSharedBlob(t *testing.T) {
	one := cacheTree(t)
	two := filepath.Join(t.TempDir(), "two")
	copyTree(t, one, two)
	setMTimes(t, two, testMTime.Add(-2*time.Hour))
	cache := newCache(t)
	b := &Builder{Cache: cache, MTime: testMTime}
	e1, e2 := mustWalk(t, cacheSpec(one)), mustWalk(t, cacheSpec(two))
	if b.Selector(e1) == b.Selector(e2) {
		t.Fatal("test setup: same selector")
	}
	l1 := mustBuild(t, b, e1)
	l2 := mustBuild(t, b, e2)
	if d1, _ := digestOf(t, l1); d1 != func() string { d, _ := digestOf(t, l2); return d }() {
		t.Fatal("the two trees give different layers")
	}
	for i, e := range [][]Entry{e1, e2, e1, e2} {
		if l := mustBuild(t, b, e); !l.Cached() {
			t.Errorf("build %d after both were cached: miss", i)
		}
	}
	layerTar(t, l1, testMTime)
}

// TestCacheConcurrent: concurrent builds sharing a cache (and sometimes a
// Builder) all succeed with the same layer; run with -race.
func TestCacheConcurrent(t *testing.T) {
	src := cacheTree(t)
	// a bigger file so that builds overlap
	writeTree(t, src, map[string]file{"big.txt": {data: strings.Repeat("concurrent builds\n", 20000)}})
	cache := newCache(t)
	entries := mustWalk(t, cacheSpec(src))
	shared := &Builder{Cache: cache, MTime: testMTime}
	const n = 8
	type result struct {
		digest, diffID string
		err            error
	}
	results := make([]result, 2*n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 2 * n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			b := shared
			if i%2 == 1 {
				b = &Builder{Cache: cache, MTime: testMTime}
			}
			mtime := testMTime
			if i >= n { // a second layer built concurrently in the same cache
				b = &Builder{Cache: cache, MTime: testMTime.Add(time.Hour)}
				mtime = b.MTime
			}
			l, err := b.Build(context.Background(), entries)
			if err != nil {
				results[i].err = err
				return
			}
			d, _ := l.Digest()
			id, _ := l.DiffID()
			results[i] = result{d.String(), id.String(), nil}
			rc, err := l.Uncompressed()
			if err == nil {
				var h *tar.Header
				tr := tar.NewReader(rc)
				for h, err = tr.Next(); err == nil; h, err = tr.Next() {
					if !h.ModTime.Equal(mtime) {
						err = fmt.Errorf("%s: mtime %v", h.Name, h.ModTime)
						break
					}
				}
				if err == io.EOF {
					_, err = io.Copy(io.Discard, rc)
				}
				rc.Close()
			}
			if err != nil {
				results[i].err = err
			}
		}()
	}
	close(start)
	wg.Wait()
	for i, r := range results {
		if r.err != nil {
			t.Errorf("build %d: %v", i, r.err)
			continue
		}
		ref := results[0]
		if i >= n {
			ref = results[n]
		}
		if r != ref {
			t.Errorf("build %d: %+v, want %+v", i, r, ref)
		}
	}
	if results[0].digest == results[n].digest {
		t.Error("the two layers have the same digest")
	}
	if s := shared.Stats(); s.Hits+s.Misses != n/2 {
		t.Errorf("shared builder stats %+v, want %d builds", s, n/2)
	}
	des, _ := os.ReadDir(filepath.Join(cache.Dir(), "tmp"))
	if len(des) != 0 {
		t.Errorf("%d temporary files left", len(des))
	}
	// Afterwards the cache is consistent: a build gives the same layer.
	l := mustBuild(t, &Builder{Cache: cache, MTime: testMTime}, entries)
	if d, _ := digestOf(t, l); d != results[0].digest {
		t.Errorf("after concurrent builds: %s", d)
	}
	layerTar(t, l, testMTime)
}

func TestOpenCache(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	c, err := OpenCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Dir() != dir {
		t.Errorf("Dir() = %s", c.Dir())
	}
	for _, sub := range []string{"blobs/sha256", "layers", "base", "tmp"} {
		if fi, err := os.Stat(filepath.Join(dir, sub)); err != nil || !fi.IsDir() {
			t.Errorf("%s: %v", sub, err)
		}
	}
	if _, err := OpenCache(dir); err != nil { // reopening is fine
		t.Error(err)
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	if _, err := OpenCache(f); err == nil {
		t.Error("OpenCache over a file succeeded")
	}
}

// TestMemo: a document is made once and then taken from its record without
// being read; a blob that is missing, rewritten or of another size, or a
// record of an older gantry, has it made again; the same bytes stored
// already are kept; a failed write records nothing and leaves no file
// behind.
func TestMemo(t *testing.T) {
	c := newCache(t)
	made := 0
	memo := func(key, doc string) Doc {
		t.Helper()
		d, err := c.Memo(key, func(w io.Writer) error {
			made++
			_, err := io.WriteString(w, doc)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := memo("k", "the document")
	want, _, _ := v1.SHA256(strings.NewReader("the document"))
	if b, _ := os.ReadFile(d.Path); string(b) != "the document" || d.Digest != want || d.Size != 12 || made != 1 {
		t.Fatalf("made %d: %+v holds %q, want %s", made, d, b, want)
	}
	// a hit reads only the record: a blob rewritten in place, same size
	// and mtime, is what it gives
	fi, _ := os.Stat(d.Path)
	os.WriteFile(d.Path, []byte("THE DOCUMENT"), 0o644)
	os.Chtimes(d.Path, fi.ModTime(), fi.ModTime())
	if again := memo("k", "the document"); again != d || made != 1 {
		t.Errorf("hit: made %d, %+v, want %+v", made, again, d)
	}
	for _, damage := range []func(){
		func() { os.WriteFile(d.Path, []byte("{}"), 0o644) },                                     // other size
		func() { os.Chtimes(d.Path, time.Unix(1, 0), time.Unix(1, 0)) },                          // rewritten since
		func() { os.Remove(d.Path) },                                                             // missing
		func() { os.WriteFile(filepath.Join(c.dir, "memo", "k"), []byte(want.String()), 0o644) }, // an older gantry's record
	} {
		before := made
		damage()
		if again := memo("k", "the document"); again != d || made != before+1 {
			t.Errorf("after damage: made %d times more, %+v", made-before, again)
		}
		if b, _ := os.ReadFile(d.Path); string(b) != "the document" {
			t.Errorf("after damage the blob holds %q", b)
		}
	}
	// the same bytes stored already are kept with their mtime (another
	// record may check it), and the new record takes that mtime
	kept := time.Unix(7, 0)
	os.Chtimes(d.Path, kept, kept)
	os.Remove(filepath.Join(c.dir, "memo", "k"))
	before := made
	if again := memo("k", "the document"); again != d || made != before+1 {
		t.Errorf("remade: made %d times more, %+v", made-before, again)
	}
	if fi, err := os.Stat(d.Path); err != nil || !fi.ModTime().Equal(kept) {
		t.Errorf("the stored blob was replaced: %v %v", fi.ModTime(), err)
	}
	if again := memo("k", "the document"); again != d || made != before+1 {
		t.Errorf("after remaking onto a kept blob, no hit: made %d times more", made-before)
	}
	// a failed write: the error, no record, no temporary file
	_, err := c.Memo("failed", func(w io.Writer) error {
		io.WriteString(w, "half")
		return errors.New("disk on fire")
	})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") || !strings.Contains(err.Error(), "failed") {
		t.Errorf("failed write: %v", err)
	}
	if _, err := os.Stat(filepath.Join(c.dir, "memo", "failed")); err == nil {
		t.Error("a failed write was recorded")
	}
	if tmp, _ := os.ReadDir(filepath.Join(c.dir, "tmp")); len(tmp) != 0 {
		t.Errorf("a failed write left %d files in tmp", len(tmp))
	}
}
