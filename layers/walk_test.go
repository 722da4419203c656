package layers

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// walkTree is a source tree with every kind of entry Walk handles.
func walkTree(t *testing.T) (src, outside string) {
	t.Helper()
	dir := t.TempDir()
	src = filepath.Join(dir, "src")
	outside = filepath.Join(dir, "outside")
	writeTree(t, outside, map[string]file{
		"secret":   {data: "TOPSECRET-CONTENT"},
		"d/inside": {data: "OUTSIDE-DIR-CONTENT"},
	})
	writeTree(t, src, map[string]file{
		"a.txt":       {data: "hello\n", mode: 0o600},
		"ro.txt":      {data: "ro", mode: 0o444},
		"grp.txt":     {data: "g", mode: 0o640},
		"bin":         {dir: true, mode: 0o700},
		"bin/run.sh":  {data: "#!/bin/sh\n", mode: 0o700},
		"bin/x":       {data: "x", mode: 0o711},
		"bin/suid":    {data: "s", mode: 0o755 | os.ModeSetuid},
		"z":           {dir: true, mode: 0o777},
		"z/y.txt":     {data: "y", mode: 0o666},
		"a-b":         {data: "dash"},
		"a.b":         {data: "dot"},
		"link-rel":    {link: "a.txt"},
		"shadow":      {link: "/etc/shadow"},
		"leak":        {link: filepath.Join(outside, "secret")},
		"outdir":      {link: filepath.Join(outside, "d")},
		"dangling":    {link: "../../nowhere"},
		"hard1":       {data: "linked content"},
		"z/deep/file": {data: "deep"},
	})
	if err := os.Link(filepath.Join(src, "hard1"), filepath.Join(src, "z", "hard2")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(src, "hard1"), filepath.Join(src, "bin", "hard0")); err != nil {
		t.Fatal(err)
	}
	// Host ownership that must never leak into the layer (needs root).
	if os.Geteuid() == 0 {
		filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
			if err == nil {
				os.Lchown(p, 4321, 4322)
			}
			return err
		})
	}
	return src, outside
}

func TestWalkTree(t *testing.T) {
	src, outside := walkTree(t)
	wantNames := []string{
		"app/sub",
		"app/sub/a-b",
		"app/sub/a.b",
		"app/sub/a.txt",
		"app/sub/bin",
		"app/sub/bin/hard0",
		"app/sub/bin/run.sh",
		"app/sub/bin/suid",
		"app/sub/bin/x",
		"app/sub/dangling",
		"app/sub/grp.txt",
		"app/sub/hard1",
		"app/sub/leak",
		"app/sub/link-rel",
		"app/sub/outdir",
		"app/sub/ro.txt",
		"app/sub/shadow",
		"app/sub/z",
		"app/sub/z/deep",
		"app/sub/z/deep/file",
		"app/sub/z/hard2",
		"app/sub/z/y.txt",
	}
	type want struct {
		typ      byte
		mode     int64
		linkname string
		size     int64
	}
	defaultModes := map[string]want{
		"app/sub":             {tar.TypeDir, 0o755, "", 0},
		"app/sub/a-b":         {tar.TypeReg, 0o644, "", 4},
		"app/sub/a.b":         {tar.TypeReg, 0o644, "", 3},
		"app/sub/a.txt":       {tar.TypeReg, 0o644, "", 6},
		"app/sub/bin":         {tar.TypeDir, 0o755, "", 0},
		"app/sub/bin/hard0":   {tar.TypeReg, 0o644, "", 14}, // first name of the inode
		"app/sub/bin/run.sh":  {tar.TypeReg, 0o755, "", 10},
		"app/sub/bin/suid":    {tar.TypeReg, 0o755, "", 1},
		"app/sub/bin/x":       {tar.TypeReg, 0o755, "", 1},
		"app/sub/dangling":    {tar.TypeSymlink, 0o777, "../../nowhere", 0},
		"app/sub/grp.txt":     {tar.TypeReg, 0o644, "", 1},
		"app/sub/hard1":       {tar.TypeLink, 0o644, "app/sub/bin/hard0", 0},
		"app/sub/leak":        {tar.TypeSymlink, 0o777, filepath.Join(outside, "secret"), 0},
		"app/sub/link-rel":    {tar.TypeSymlink, 0o777, "a.txt", 0},
		"app/sub/outdir":      {tar.TypeSymlink, 0o777, filepath.Join(outside, "d"), 0},
		"app/sub/ro.txt":      {tar.TypeReg, 0o644, "", 2},
		"app/sub/shadow":      {tar.TypeSymlink, 0o777, "/etc/shadow", 0},
		"app/sub/z":           {tar.TypeDir, 0o755, "", 0},
		"app/sub/z/deep":      {tar.TypeDir, 0o755, "", 0},
		"app/sub/z/deep/file": {tar.TypeReg, 0o644, "", 4},
		"app/sub/z/hard2":     {tar.TypeLink, 0o644, "app/sub/bin/hard0", 0},
		"app/sub/z/y.txt":     {tar.TypeReg, 0o644, "", 1},
	}
	overridden := map[string]want{}
	for n, w := range defaultModes {
		switch w.typ {
		case tar.TypeReg, tar.TypeLink:
			w.mode = 0o600
		case tar.TypeDir:
			w.mode = 0o750
		}
		overridden[n] = w
	}

	tests := []struct {
		name     string
		spec     Spec
		uid, gid int
		want     map[string]want
	}{
		{"defaults", Spec{}, 0, 0, defaultModes},
		{"owner", Spec{Owner: &Owner{UID: 1000, GID: 1001}}, 1000, 1001, defaultModes},
		{"explicit root owner", Spec{Owner: &Owner{}}, 0, 0, defaultModes},
		{"mode overrides", Spec{FileMode: 0o600, DirMode: 0o750}, 0, 0, overridden},
		{"mode overrides drop type bits", Spec{FileMode: fs.ModeSetuid | 0o600, DirMode: fs.ModeDir | 0o750}, 0, 0, overridden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.spec
			s.Sources = []Source{{From: src, To: "/app/sub"}}
			entries := mustWalk(t, s)
			if got := names(entries); !reflect.DeepEqual(got, wantNames) {
				t.Fatalf("names:\n got %q\nwant %q", got, wantNames)
			}
			if !sort.SliceIsSorted(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name }) {
				t.Error("entries not sorted")
			}
			for _, e := range entries {
				w := tt.want[e.Name]
				if e.Type != w.typ || e.Mode != w.mode || e.Linkname != w.linkname || e.Size != w.size {
					t.Errorf("%s: type %c mode %#o link %q size %d; want type %c mode %#o link %q size %d",
						e.Name, e.Type, e.Mode, e.Linkname, e.Size, w.typ, w.mode, w.linkname, w.size)
				}
				if e.UID != tt.uid || e.GID != tt.gid {
					t.Errorf("%s: owner %d:%d, want %d:%d", e.Name, e.UID, e.GID, tt.uid, tt.gid)
				}
				if (e.Type == tar.TypeReg) != (e.Source != "") {
					t.Errorf("%s: type %c with Source %q", e.Name, e.Type, e.Source)
				}
				if e.Type == tar.TypeReg && !strings.HasPrefix(e.Source, src) {
					t.Errorf("%s: Source %q outside the source tree", e.Name, e.Source)
				}
				if e.Gzip || e.Data != nil {
					t.Errorf("%s: unexpected Gzip/Data", e.Name)
				}
			}
		})
	}
}

// TestWalkTreeLayer builds the walked tree and checks what reaches the tar:
// symlinks are not followed, hard links are stored once.
func TestWalkTreeLayer(t *testing.T) {
	src, _ := walkTree(t)
	entries := mustWalk(t, Spec{Sources: []Source{{From: src, To: "/app/sub"}}})
	b := &Builder{Cache: newCache(t), MTime: testMTime}
	l := mustBuild(t, b, entries)
	raw := readAll(t, l.Uncompressed)
	for _, secret := range []string{"TOPSECRET-CONTENT", "OUTSIDE-DIR-CONTENT", "inside"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("layer contains %q from outside the source tree", secret)
		}
	}
	if n := bytes.Count(raw, []byte("linked content")); n != 1 {
		t.Errorf("hard-linked content stored %d times, want once", n)
	}
	members := layerTar(t, l, testMTime)
	got := map[string]tarMember{}
	for _, m := range members {
		if m.hdr.Uid != 0 || m.hdr.Gid != 0 {
			t.Errorf("%s: owner %d:%d", m.hdr.Name, m.hdr.Uid, m.hdr.Gid)
		}
		got[m.hdr.Name] = m
	}
	if len(members) != len(entries) {
		t.Errorf("%d tar members for %d entries", len(members), len(entries))
	}
	checks := []struct {
		name     string
		typ      byte
		linkname string
		data     string
	}{
		{"app/sub/", tar.TypeDir, "", ""},
		{"app/sub/z/deep/", tar.TypeDir, "", ""},
		{"app/sub/shadow", tar.TypeSymlink, "/etc/shadow", ""},
		{"app/sub/link-rel", tar.TypeSymlink, "a.txt", ""},
		{"app/sub/bin/hard0", tar.TypeReg, "", "linked content"},
		{"app/sub/hard1", tar.TypeLink, "app/sub/bin/hard0", ""},
		{"app/sub/z/hard2", tar.TypeLink, "app/sub/bin/hard0", ""},
		{"app/sub/a.txt", tar.TypeReg, "", "hello\n"},
	}
	for _, c := range checks {
		m, ok := got[c.name]
		if !ok {
			t.Errorf("%s missing from the tar; have %q", c.name, memberNames(members))
			continue
		}
		if m.hdr.Typeflag != c.typ || m.hdr.Linkname != c.linkname || string(m.data) != c.data {
			t.Errorf("%s: type %c link %q data %q; want %c %q %q", c.name, m.hdr.Typeflag, m.hdr.Linkname, m.data, c.typ, c.linkname, c.data)
		}
	}
	// A hard link must come after the name it points to.
	seen := map[string]bool{}
	for _, m := range members {
		if m.hdr.Typeflag == tar.TypeLink && !seen[m.hdr.Linkname] {
			t.Errorf("hard link %s precedes its target %s", m.hdr.Name, m.hdr.Linkname)
		}
		seen[m.hdr.Name] = true
	}
}

func TestWalkTargets(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]file{"d/f": {data: "f"}, "d/g/h": {data: "h"}})
	tests := []struct {
		to   string
		want []string
	}{
		{"/", []string{"f", "g", "g/h"}},
		{"/opt", []string{"opt", "opt/f", "opt/g", "opt/g/h"}},
		{"/opt/", []string{"opt", "opt/f", "opt/g", "opt/g/h"}},
		{"/a/b/c", []string{"a/b/c", "a/b/c/f", "a/b/c/g", "a/b/c/g/h"}},
		{"/a/../x/./y", []string{"x/y", "x/y/f", "x/y/g", "x/y/g/h"}},
	}
	for _, tt := range tests {
		t.Run(tt.to, func(t *testing.T) {
			got := names(mustWalk(t, Spec{Sources: []Source{{From: filepath.Join(dir, "d"), To: tt.to}}}))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWalkSingleFile(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]file{
		"conf.ini": {data: "k=v\n", mode: 0o600},
		"tool":     {data: "#!", mode: 0o750},
		"ln":       {link: "conf.ini"},
	})
	tests := []struct {
		from, to string
		spec     Spec
		want     Entry
	}{
		{"conf.ini", "/etc/app.conf", Spec{}, Entry{Name: "etc/app.conf", Type: tar.TypeReg, Mode: 0o644, Size: 4}},
		{"conf.ini", "/etc/", Spec{}, Entry{Name: "etc/conf.ini", Type: tar.TypeReg, Mode: 0o644, Size: 4}},
		{"conf.ini", "/", Spec{}, Entry{Name: "conf.ini", Type: tar.TypeReg, Mode: 0o644, Size: 4}},
		{"tool", "/usr/local/bin/", Spec{}, Entry{Name: "usr/local/bin/tool", Type: tar.TypeReg, Mode: 0o755, Size: 2}},
		{"tool", "/t", Spec{FileMode: 0o700, Owner: &Owner{UID: 7, GID: 8}}, Entry{Name: "t", Type: tar.TypeReg, Mode: 0o700, UID: 7, GID: 8, Size: 2}},
		// a source that is a symlink is followed (see TestWalkSymlinkedRoot)
		{"ln", "/etc/l", Spec{}, Entry{Name: "etc/l", Type: tar.TypeReg, Mode: 0o644, Size: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.from+"→"+tt.to, func(t *testing.T) {
			s := tt.spec
			s.Sources = []Source{{From: filepath.Join(dir, tt.from), To: tt.to}}
			entries := mustWalk(t, s)
			if len(entries) != 1 {
				t.Fatalf("got %d entries %q, want 1 (no parent directories)", len(entries), names(entries))
			}
			e := entries[0]
			if e.Name != tt.want.Name || e.Type != tt.want.Type || e.Mode != tt.want.Mode || e.Size != tt.want.Size ||
				e.UID != tt.want.UID || e.GID != tt.want.GID || e.Linkname != tt.want.Linkname {
				t.Errorf("got %+v, want %+v", e, tt.want)
			}
		})
	}
}

func TestWalkErrors(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]file{"ok/a": {data: "a"}, "fifo/a": {data: "a"}, "bad/a": {data: "a"}})
	fifo := filepath.Join(dir, "fifo", "pipe")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	badName := filepath.Join(dir, "bad", "caf\xe9.txt") // Latin-1 é
	if err := os.WriteFile(badName, nil, 0o644); err != nil {
		t.Skipf("file system refuses non-UTF-8 names: %v", err)
	}
	missing := filepath.Join(dir, "does-not-exist")
	tests := []struct {
		name string
		spec Spec
		want []string // substrings of the error
	}{
		{"missing source", Spec{Sources: []Source{{From: missing, To: "/x"}}}, []string{missing, "no such file"}},
		{"missing second source", Spec{Sources: []Source{{From: filepath.Join(dir, "ok"), To: "/x"}, {From: missing, To: "/y"}}}, []string{missing}},
		{"relative target", Spec{Sources: []Source{{From: filepath.Join(dir, "ok"), To: "x"}}}, []string{`"x"`, "absolute"}},
		{"fifo", Spec{Sources: []Source{{From: filepath.Join(dir, "fifo"), To: "/x"}}}, []string{fifo, "FIFO"}},
		{"fifo as single file", Spec{Sources: []Source{{From: fifo, To: "/x"}}}, []string{fifo, "FIFO"}},
		{"non-UTF-8 name", Spec{Sources: []Source{{From: filepath.Join(dir, "bad"), To: "/x"}}}, []string{"not valid UTF-8", filepath.Join(dir, "bad")}},
		{"bad exclude pattern", Spec{Sources: []Source{{From: filepath.Join(dir, "ok"), To: "/x"}}, Exclude: []string{"[z-a"}}, []string{"exclude"}},
		{"bad include pattern", Spec{Sources: []Source{{From: filepath.Join(dir, "ok"), To: "/x"}}, Include: []string{"[z-a"}}, []string{"include"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, err := Walk(tt.spec)
			if err == nil {
				t.Fatalf("no error; entries %q", names(entries))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}

	// Excluding the offending files makes the same sources acceptable.
	for _, s := range []Spec{
		{Sources: []Source{{From: filepath.Join(dir, "fifo"), To: "/x"}}, Exclude: []string{"pipe"}},
		{Sources: []Source{{From: filepath.Join(dir, "fifo"), To: "/x"}}, Include: []string{"a"}},
		{Sources: []Source{{From: filepath.Join(dir, "bad"), To: "/x"}}, Exclude: []string{"*.txt"}},
	} {
		entries, err := Walk(s)
		if err != nil {
			t.Errorf("Walk with %q/%q: %v", s.Include, s.Exclude, err)
		} else if got := names(entries); !reflect.DeepEqual(got, []string{"x", "x/a"}) {
			t.Errorf("Walk with %q/%q: %q", s.Include, s.Exclude, got)
		}
	}
}

func TestWalkPatterns(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]file{
		"keep.txt":              {data: "k"},
		"drop.log":              {data: "d"},
		"sub/a.log":             {data: "a"},
		"sub/b.txt":             {data: "b"},
		"sub/deep/c.log":        {data: "c"},
		"node_modules/x/y.js":   {data: "y"},
		"docs/readme.md":        {data: "r"},
		"docs/empty":            {dir: true},
		"docs/inner/keep.txt":   {data: "k"},
		"docs/inner/other.bin":  {data: "o"},
		"vendor/lib/notes.txt":  {data: "n"},
		"vendor/lib/module.txt": {data: "m"},
	})
	tests := []struct {
		name             string
		include, exclude []string
		want             []string
	}{
		{"none", nil, nil, []string{"", "docs", "docs/empty", "docs/inner", "docs/inner/keep.txt", "docs/inner/other.bin", "docs/readme.md", "drop.log", "keep.txt", "node_modules", "node_modules/x", "node_modules/x/y.js", "sub", "sub/a.log", "sub/b.txt", "sub/deep", "sub/deep/c.log", "vendor", "vendor/lib", "vendor/lib/module.txt", "vendor/lib/notes.txt"}},
		{"root-level glob", nil, []string{"*.log"}, []string{"", "docs", "docs/empty", "docs/inner", "docs/inner/keep.txt", "docs/inner/other.bin", "docs/readme.md", "keep.txt", "node_modules", "node_modules/x", "node_modules/x/y.js", "sub", "sub/a.log", "sub/b.txt", "sub/deep", "sub/deep/c.log", "vendor", "vendor/lib", "vendor/lib/module.txt", "vendor/lib/notes.txt"}},
		{"double star", nil, []string{"**/*.log", "node_modules", "docs", "vendor"}, []string{"", "keep.txt", "sub", "sub/b.txt", "sub/deep"}},
		{"exclusion", nil, []string{"**/*.log", "!sub/deep/c.log", "node_modules", "docs", "vendor"}, []string{"", "keep.txt", "sub", "sub/b.txt", "sub/deep", "sub/deep/c.log"}},
		{"dir pattern with trailing slash", nil, []string{"node_modules/", "docs/", "sub/deep/", "vendor"}, []string{"", "drop.log", "keep.txt", "sub", "sub/a.log", "sub/b.txt"}},
		{"include double star prunes empty dirs", []string{"**/*.txt"}, nil, []string{"", "docs", "docs/inner", "docs/inner/keep.txt", "keep.txt", "sub", "sub/b.txt", "vendor", "vendor/lib", "vendor/lib/module.txt", "vendor/lib/notes.txt"}},
		{"include directory takes its contents", []string{"sub"}, nil, []string{"", "sub", "sub/a.log", "sub/b.txt", "sub/deep", "sub/deep/c.log"}},
		{"include and exclude", []string{"**/*.log"}, []string{"sub/deep"}, []string{"", "drop.log", "sub", "sub/a.log"}},
		{"include nothing matches", []string{"*.none"}, nil, []string{""}},
		{"exclude wins over include", []string{"**/*.txt"}, []string{"**/notes.txt", "docs"}, []string{"", "keep.txt", "sub", "sub/b.txt", "vendor", "vendor/lib", "vendor/lib/module.txt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries := mustWalk(t, Spec{Sources: []Source{{From: src, To: "/r"}}, Include: tt.include, Exclude: tt.exclude})
			var want []string
			for _, w := range tt.want {
				if w == "" {
					want = append(want, "r")
				} else {
					want = append(want, "r/"+w)
				}
			}
			if got := names(entries); !reflect.DeepEqual(got, want) {
				t.Errorf("include %q exclude %q:\n got %q\nwant %q", tt.include, tt.exclude, got, want)
			}
		})
	}
}

func TestWalkIgnoreFile(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]file{
		IgnoreFile:          {data: "# build output\n*.log\nsecret/\n\n!important.log\n"},
		"app.py":            {data: "print()"},
		"debug.log":         {data: "d"},
		"important.log":     {data: "i"},
		"secret/key":        {data: "k"},
		"sub/" + IgnoreFile: {data: "app.py\n"}, // only the root's ignore file counts
		"sub/app.py":        {data: "s"},
		"sub/x.log":         {data: "x"}, // "*.log" is root-relative
		"cache/blob":        {data: "c"},
	})
	tests := []struct {
		name    string
		exclude []string
		want    []string
	}{
		{"ignore file only", nil, []string{"w", "w/app.py", "w/cache", "w/cache/blob", "w/important.log", "w/sub", "w/sub/" + IgnoreFile, "w/sub/app.py", "w/sub/x.log"}},
		{"plus spec excludes", []string{"cache"}, []string{"w", "w/app.py", "w/important.log", "w/sub", "w/sub/" + IgnoreFile, "w/sub/app.py", "w/sub/x.log"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries := mustWalk(t, Spec{Sources: []Source{{From: src, To: "/w"}}, Exclude: tt.exclude})
			if got := names(entries); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}

	// The ignore file of one source does not apply to another source.
	other := t.TempDir()
	writeTree(t, other, map[string]file{"debug.log": {data: "d"}})
	entries := mustWalk(t, Spec{Sources: []Source{{From: src, To: "/w"}, {From: other, To: "/o"}}})
	if _, ok := byName(entries)["o/debug.log"]; !ok {
		t.Errorf("ignore file of the first source applied to the second: %q", names(entries))
	}
	if _, ok := byName(entries)["w/debug.log"]; ok {
		t.Errorf("w/debug.log not ignored")
	}
}

func TestWalkPrecompress(t *testing.T) {
	src := t.TempDir()
	pre := gzipBytes(t, "precompressed by the user")
	writeTree(t, src, map[string]file{
		"app.js":         {data: strings.Repeat("console.log('hi');\n", 50)},
		"style.CSS":      {data: strings.Repeat("body{margin:0}\n", 30)},
		"index.html":     {data: "<html></html>"},
		"mod.wasm":       {data: "\x00asm"},
		"img.png":        {data: "\x89PNG"},
		"noext":          {data: "plain"},
		"data.json":      {data: `{"a":1}`},
		"data.json.gz":   {data: string(pre)},
		"dir.js":         {dir: true},
		"dir.js/in.txt":  {data: "text"},
		"archive.tar.gz": {data: "not really"},
		"ln.js":          {link: "app.js"},
	})
	entries := mustWalk(t, Spec{Sources: []Source{{From: src, To: "/s"}}, Precompress: true})
	want := []string{"s", "s/app.js", "s/app.js.gz", "s/archive.tar.gz", "s/data.json", "s/data.json.gz",
		"s/dir.js", "s/dir.js/in.txt", "s/dir.js/in.txt.gz", "s/img.png", "s/index.html", "s/index.html.gz",
		"s/ln.js", "s/mod.wasm", "s/mod.wasm.gz", "s/noext", "s/style.CSS", "s/style.CSS.gz"}
	if got := names(entries); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	m := byName(entries)
	for name, e := range m {
		wantGzip := strings.HasSuffix(name, ".gz") && name != "s/data.json.gz" && name != "s/archive.tar.gz"
		if e.Gzip != wantGzip {
			t.Errorf("%s: Gzip %v, want %v", name, e.Gzip, wantGzip)
		}
	}

	b := &Builder{Cache: newCache(t), MTime: testMTime}
	l := mustBuild(t, b, entries)
	members := layerTar(t, l, testMTime)
	content := map[string][]byte{}
	for _, mb := range members {
		content[strings.TrimSuffix(mb.hdr.Name, "/")] = mb.data
		if int64(len(mb.data)) != mb.hdr.Size {
			t.Errorf("%s: header size %d, %d bytes", mb.hdr.Name, mb.hdr.Size, len(mb.data))
		}
	}
	for _, n := range []string{"app.js", "style.CSS", "index.html", "mod.wasm", "dir.js/in.txt"} {
		orig, _ := os.ReadFile(filepath.Join(src, n))
		gz := content["s/"+n+".gz"]
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Errorf("%s.gz: %v", n, err)
			continue
		}
		if zr.Name != "" || !zr.ModTime.IsZero() {
			t.Errorf("%s.gz: gzip header has name %q mtime %v", n, zr.Name, zr.ModTime)
		}
		got, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(got, orig) {
			t.Errorf("%s.gz decompresses to %q (%v), want %q", n, got, err, orig)
		}
	}
	if !bytes.Equal(content["s/data.json.gz"], pre) {
		t.Errorf("the source's own data.json.gz was replaced")
	}
	if len(content["s/app.js.gz"]) >= len(content["s/app.js"]) {
		t.Errorf("app.js.gz (%d bytes) not smaller than app.js (%d)", len(content["s/app.js.gz"]), len(content["s/app.js"]))
	}

	// The precompressed bytes are deterministic: a second build (new cache,
	// other source mtimes) is identical.
	setMTimes(t, src, testMTime.Add(12345e9))
	l2 := mustBuild(t, &Builder{Cache: newCache(t), MTime: testMTime}, mustWalk(t, Spec{Sources: []Source{{From: src, To: "/s"}}, Precompress: true}))
	if d1, _ := digestOf(t, l); true {
		if d2, _ := digestOf(t, l2); d1 != d2 {
			t.Errorf("precompressed layer not reproducible: %s vs %s", d1, d2)
		}
	}
}

// TestWalkPrecompressOverride: when a later source replaces a file, its
// generated .gz sibling must be made from the replacement.
func TestWalkPrecompressOverride(t *testing.T) {
	one, two := t.TempDir(), t.TempDir()
	writeTree(t, one, map[string]file{"app.js": {data: "old version"}, "keep.js": {data: "keep"}})
	writeTree(t, two, map[string]file{"app.js": {data: "new version!"}})
	entries := mustWalk(t, Spec{Sources: []Source{{From: one, To: "/s"}, {From: two, To: "/s"}}, Precompress: true})
	m := byName(entries)
	if m["s/app.js"].Source != filepath.Join(two, "app.js") {
		t.Fatalf("s/app.js from %q, want the later source", m["s/app.js"].Source)
	}
	if gz := m["s/app.js.gz"]; !gz.Gzip || gz.Source != filepath.Join(two, "app.js") {
		t.Errorf("s/app.js.gz is made from %q, want %q", gz.Source, filepath.Join(two, "app.js"))
	}
	if gz := m["s/keep.js.gz"]; !gz.Gzip || gz.Source != filepath.Join(one, "keep.js") {
		t.Errorf("s/keep.js.gz: %+v", gz)
	}

	// A user-supplied .gz from a later source replaces a generated one; a
	// later plain file does not replace a user-supplied .gz.
	three := t.TempDir()
	writeTree(t, three, map[string]file{"app.js.gz": {data: "user gz"}})
	entries = mustWalk(t, Spec{Sources: []Source{{From: one, To: "/s"}, {From: three, To: "/s"}, {From: two, To: "/s"}}, Precompress: true})
	if gz := byName(entries)["s/app.js.gz"]; gz.Gzip || gz.Source != filepath.Join(three, "app.js.gz") {
		t.Errorf("s/app.js.gz: %+v, want the user's file", gz)
	}
}

func gzipBytes(t *testing.T, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(s))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestWalkSymlinkedRoot: a source that is itself a symlink (to a directory
// or a file) is followed, with or without FollowSymlinks; symlinks inside
// it stay symlinks unless FollowSymlinks.
func TestWalkSymlinkedRoot(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]file{
		"real/index.html":    {data: "<h1>hi</h1>"},
		"real/sub/app.js":    {data: "let a;"},
		"real/inner":         {link: "index.html"},
		"real.conf":          {data: "k=v\n"},
		"linkroot":           {link: "real"},
		"abslink":            {link: filepath.Join(dir, "real")},
		"chain":              {link: "linkroot"},
		"conf-link":          {link: "real.conf"},
		"dangling-root":      {link: "nowhere"},
		"real/.gantryignore": {data: "sub/\n"},
	})
	for _, from := range []string{"linkroot", "abslink", "chain"} {
		for _, follow := range []bool{false, true} {
			entries := mustWalk(t, Spec{Sources: []Source{{From: filepath.Join(dir, from), To: "/srv"}}, FollowSymlinks: follow})
			m := byName(entries)
			want := []string{"srv", "srv/index.html", "srv/inner"}
			if got := names(entries); !reflect.DeepEqual(got, want) {
				t.Errorf("%s follow=%v: entries %q, want %q (the ignore file of the target applies)", from, follow, got, want)
				continue
			}
			if e := m["srv"]; e.Type != tar.TypeDir {
				t.Errorf("%s follow=%v: srv is %c → %q, want a directory", from, follow, e.Type, e.Linkname)
			}
			inner := m["srv/inner"]
			if follow && inner.Type != tar.TypeReg || !follow && (inner.Type != tar.TypeSymlink || inner.Linkname != "index.html") {
				t.Errorf("%s follow=%v: inner symlink became %c %q", from, follow, inner.Type, inner.Linkname)
			}
		}
	}
	// a symlink to a file: its content, under the link's name
	entries := mustWalk(t, Spec{Sources: []Source{{From: filepath.Join(dir, "conf-link"), To: "/etc/"}}})
	if len(entries) != 1 || entries[0].Name != "etc/conf-link" || entries[0].Type != tar.TypeReg || entries[0].Size != 4 {
		t.Errorf("symlinked file source: %+v", entries)
	}
	l := mustBuild(t, &Builder{Cache: newCache(t), MTime: testMTime}, entries)
	if ms := layerTar(t, l, testMTime); len(ms) != 1 || string(ms[0].data) != "k=v\n" {
		t.Errorf("symlinked file source in the layer: %+v", ms)
	}
	// a dangling one is an error naming it
	if _, err := Walk(Spec{Sources: []Source{{From: filepath.Join(dir, "dangling-root"), To: "/x"}}}); err == nil || !strings.Contains(err.Error(), "dangling-root") {
		t.Errorf("dangling symlink source: %v", err)
	}
}
