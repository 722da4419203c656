package layers

import (
	"archive/tar"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The file list is the SHA-256 of every regular member as the layer holds
// it (a .gz sibling's of its gzip), and a cache hit gives the same list
// without reading a file.
func TestLayerFiles(t *testing.T) {
	src := cacheTree(t)
	cache := newCache(t)
	b := &Builder{Cache: cache, MTime: testMTime}
	entries := mustWalk(t, cacheSpec(src))
	l := mustBuild(t, b, entries)
	var want []FileDigest
	for _, m := range layerTar(t, l, testMTime) {
		if m.hdr.Typeflag == tar.TypeReg {
			want = append(want, FileDigest{Name: m.hdr.Name, SHA256: strings.TrimPrefix(sha(m.data), "sha256:")})
		}
	}
	if len(want) != 7 || !reflect.DeepEqual(l.Files(), want) {
		t.Fatalf("Files() = %v\nwant %v", l.Files(), want)
	}
	read := b.Stats().FilesRead
	hit := mustBuild(t, b, entries)
	if !hit.Cached() || b.Stats().FilesRead != read || !reflect.DeepEqual(hit.Files(), want) {
		t.Fatalf("hit: cached=%v read %d more, Files() = %v", hit.Cached(), b.Stats().FilesRead-read, hit.Files())
	}
}

// A record an older gantry wrote (no file list) is a miss, so the SBOM of
// a layer never silently lacks its files.
func TestCacheRecordWithoutFilesIsMiss(t *testing.T) {
	src := cacheTree(t)
	cache := newCache(t)
	b := &Builder{Cache: cache, MTime: testMTime}
	entries := mustWalk(t, cacheSpec(src))
	mustBuild(t, b, entries)
	// the record by selector and the one by content
	recs, _ := filepath.Glob(filepath.Join(cache.Dir(), "layers", "*.json"))
	content, _ := filepath.Glob(filepath.Join(cache.Dir(), "content", "*.json"))
	if len(recs) != 1 || len(content) != 1 {
		t.Fatalf("records: %v %v", recs, content)
	}
	for _, rec := range append(recs, content...) {
		raw, err := os.ReadFile(rec)
		if err != nil {
			t.Fatal(err)
		}
		var r map[string]any
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		delete(r, "files")
		raw, _ = json.Marshal(r)
		if err := os.WriteFile(rec, raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l := mustBuild(t, b, entries)
	if l.Cached() || len(l.Files()) != 7 {
		t.Fatalf("old record: cached=%v, %d files", l.Cached(), len(l.Files()))
	}
}

// TestFileListJSON: a record's file list round-trips names with spaces,
// newlines, quotes and non-ASCII; an empty list stays non-nil (a record
// without one is an older gantry's, a miss); an older record's array of
// objects decodes; a damaged list is an error, not a wrong list.
func TestFileListJSON(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	files := fileList{{Name: "a b/c.txt", SHA256: sum}, {Name: "line\nbreak", SHA256: sum}, {Name: `q"uo\te`, SHA256: sum}, {Name: "ünï/ç.js", SHA256: sum}, {Name: "x", SHA256: ""}}
	b, err := json.Marshal(struct {
		Files fileList `json:"files"`
	}{files})
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Files fileList `json:"files"`
	}
	if err := json.Unmarshal(b, &r); err != nil || !slices.Equal(r.Files, files) {
		t.Fatalf("round trip of %s: %v %q", b, err, r.Files)
	}
	for _, tc := range []struct {
		json string
		want fileList
	}{
		{`{"files":""}`, fileList{}},
		{`{"files":[{"name":"old/a","sha256":"` + sum + `"}]}`, fileList{{Name: "old/a", SHA256: sum}}},
	} {
		r.Files = nil
		if err := json.Unmarshal([]byte(tc.json), &r); err != nil || r.Files == nil || !slices.Equal(r.Files, tc.want) {
			t.Errorf("%s: %v %#v", tc.json, err, r.Files)
		}
	}
	for _, bad := range []string{`{"files":"` + sum + ` a\u0000nospace"}`, `{"files":"` + sum + ` unterminated"}`, `{"files":3}`} {
		if err := json.Unmarshal([]byte(bad), &r); err == nil {
			t.Errorf("%s decoded: %q", bad, r.Files)
		}
	}
}
