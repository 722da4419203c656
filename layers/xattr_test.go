package layers

import (
	"bytes"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestWalkXattrs: extended attributes of source files are not written to
// the layer, and each file that has them is named in a warning (the SELinux
// label excepted); without a logger the walk is silent.
func TestWalkXattrs(t *testing.T) {
	src := t.TempDir()
	files := map[string]file{"ping": {data: "#!/bin/sh\n", mode: 0o755}, "plain.txt": {data: "x"}, "sub/dir": {dir: true}}
	for i := range 12 {
		files[fmt.Sprintf("a-many/f%02d", i)] = file{data: "m"}
	}
	writeTree(t, src, files)
	set := func(rel, name string, value []byte) error {
		return syscall.Setxattr(filepath.Join(src, rel), name, value, 0)
	}
	if err := set("ping", "user.origin", []byte("https://example.com")); err != nil {
		t.Skipf("file system of %s has no user xattrs: %v", src, err)
	}
	// security.capability needs CAP_SETFCAP: cap_net_raw+ep, VFS v2 format
	capV2 := []byte{0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	haveCap := set("ping", "security.capability", capV2) == nil
	set("sub/dir", "user.dir", []byte("d"))
	for i := range 12 {
		set(fmt.Sprintf("a-many/f%02d", i), "user.m", []byte("m"))
	}

	var logs bytes.Buffer
	spec := Spec{Sources: []Source{{From: src, To: "/app"}}, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	entries := mustWalk(t, spec)
	out := logs.String()
	for _, want := range []string{filepath.Join(src, "ping") + " (user.origin, security.capability)", filepath.Join(src, "a-many", "f00") + " (user.m)", "level=WARN"} {
		if strings.Contains(want, "ping") && !haveCap {
			continue
		}
		if !strings.Contains(out, want) {
			t.Errorf("warnings do not mention %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "plain.txt") {
		t.Errorf("warning about a file without xattrs:\n%s", out)
	}
	// the 12 a-many files come first: 10 are named, then ping if it has a
	// capability (always named), and the rest counted
	named, counted := maxXattrWarnings, 4
	if haveCap {
		named, counted = maxXattrWarnings+1, 3
	}
	if n := strings.Count(out, "level=WARN"); n != named+1 {
		t.Errorf("%d warnings for 14 files, want %d named and one count:\n%s", n, named, out)
	}
	if !strings.Contains(out, fmt.Sprintf("files=%d", counted)) {
		t.Errorf("no count of the %d files not named:\n%s", counted, out)
	}
	// nothing of them reaches the tar (layerTar refuses SCHILY.xattr records)
	l := mustBuild(t, &Builder{Cache: newCache(t), MTime: testMTime}, entries)
	for _, m := range layerTar(t, l, testMTime) {
		if len(m.hdr.Xattrs) != 0 || len(m.hdr.PAXRecords) != 0 {
			t.Errorf("%s: xattrs %v PAX %v in the layer", m.hdr.Name, m.hdr.Xattrs, m.hdr.PAXRecords)
		}
	}
	// no logger: no panic, the same entries
	spec.Log = nil
	if got := mustWalk(t, spec); len(got) != len(entries) {
		t.Errorf("walk without a logger: %d entries, want %d", len(got), len(entries))
	}
}

// TestWalkManyFilesInOrder: a tree large enough that its metadata is read
// on several workers gives every entry, and names the files with xattrs in
// the walk's order, the same at every walk.
func TestWalkManyFilesInOrder(t *testing.T) {
	src := t.TempDir()
	files := map[string]file{}
	for i := range 600 {
		files[fmt.Sprintf("d%02d/f%03d", i%20, i)] = file{data: "x"}
	}
	writeTree(t, src, files)
	var marked []string // in walk order: d00/f000, d00/f020, ..., d01/f001, ...
	for d := range 20 {
		for i := d; i < 600; i += 20 {
			if i%7 == 3 {
				rel := fmt.Sprintf("d%02d/f%03d", d, i)
				if err := syscall.Setxattr(filepath.Join(src, rel), "user.m", []byte("m"), 0); err != nil {
					t.Skipf("file system of %s has no user xattrs: %v", src, err)
				}
				marked = append(marked, rel)
			}
		}
	}
	var first string
	for run := range 3 {
		var logs bytes.Buffer
		noTime := func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
		log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{ReplaceAttr: noTime}))
		entries := mustWalk(t, Spec{Sources: []Source{{From: src, To: "/app"}}, Log: log})
		if len(entries) != 1+20+600 {
			t.Fatalf("walk %d: %d entries, want %d", run, len(entries), 1+20+600)
		}
		out := logs.String()
		for i, rel := range marked {
			if named := strings.Contains(out, filepath.Join(src, rel)+" (user.m)"); named != (i < maxXattrWarnings) {
				t.Errorf("walk %d: %s (file %d with xattrs) named: %v", run, rel, i, named)
			}
		}
		if !strings.Contains(out, fmt.Sprintf("files=%d", len(marked)-maxXattrWarnings)) {
			t.Errorf("walk %d: no count of the %d files not named:\n%s", run, len(marked)-maxXattrWarnings, out)
		}
		if run == 0 {
			first = out
		} else if out != first {
			t.Errorf("walk %d warned otherwise than walk 0:\n%s\nthen:\n%s", run, first, out)
		}
	}
}
