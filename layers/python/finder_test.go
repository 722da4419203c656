package python

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gantry-dev/gantry/layers"
)

// testIndex is a simple index on loopback serving a wheelhouse directory,
// as PEP 503 HTML or (when asked for it) PEP 691 JSON.
type testIndex struct {
	*httptest.Server
	dir       string
	json      bool              // answer PEP 691 requests with JSON
	noHashes  bool              // leave hashes out of the pages
	tamper    map[string][]byte // filename → bytes served instead
	requests  atomic.Int64
	downloads atomic.Int64
}

// requiresPython is what the fixtures' METADATA say.
var requiresPython = map[string]string{"taskflow-admin": ">=3.9", "taskflow-deps": ">=3.9", "tfnative": ">=3.8"}

func newIndex(t *testing.T, dir string, asJSON bool) *testIndex {
	ix := &testIndex{dir: dir, json: asJSON}
	ix.Server = httptest.NewServer(http.HandlerFunc(ix.serve))
	t.Cleanup(ix.Close)
	return ix
}

func (ix *testIndex) URL() string { return ix.Server.URL + "/simple/" }

func (ix *testIndex) serve(w http.ResponseWriter, r *http.Request) {
	ix.requests.Add(1)
	if name, ok := strings.CutPrefix(r.URL.Path, "/files/"); ok {
		data, err := os.ReadFile(filepath.Join(ix.dir, filepath.Base(name)))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		if b, ok := ix.tamper[name]; ok {
			data = b
		}
		ix.downloads.Add(1)
		w.Write(data)
		return
	}
	project, ok := strings.CutPrefix(r.URL.Path, "/simple/")
	project = strings.TrimSuffix(project, "/")
	if !ok || project != normalizeName(project) {
		http.NotFound(w, r)
		return
	}
	ents, _ := os.ReadDir(ix.dir)
	type file struct {
		Filename       string            `json:"filename"`
		URL            string            `json:"url"`
		Hashes         map[string]string `json:"hashes"`
		RequiresPython string            `json:"requires-python,omitempty"`
	}
	var files []file
	for _, e := range ents {
		if fileProject(e.Name()) != project {
			continue
		}
		f := file{Filename: e.Name(), URL: "/files/" + e.Name(), Hashes: map[string]string{}, RequiresPython: requiresPython[project]}
		if !ix.noHashes {
			data, _ := os.ReadFile(filepath.Join(ix.dir, e.Name()))
			f.Hashes["sha256"] = shaHex(data)
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		http.NotFound(w, r)
		return
	}
	if ix.json && strings.Contains(r.Header.Get("Accept"), simpleJSONType) {
		w.Header().Set("Content-Type", simpleJSONType)
		json.NewEncoder(w).Encode(map[string]any{"meta": map[string]string{"api-version": "1.1"}, "name": project, "files": files})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<!DOCTYPE html>\n<html><head><title>Links for %s</title></head><body>\n", project)
	for _, f := range files {
		href := "../../files/" + f.Filename
		if h := f.Hashes["sha256"]; h != "" {
			href += "#sha256=" + h
		}
		fmt.Fprintf(w, "<a href=\"%s\" data-requires-python=\"%s\">%s</a><br/>\n", href, html.EscapeString(f.RequiresPython), f.Filename)
	}
	fmt.Fprint(w, "</body></html>\n")
}

func mustSelect(t testing.TB, f *Finder, reqs []Requirement, tg Target) []Wheel {
	t.Helper()
	ws, err := Select(context.Background(), f, reqs, tg)
	if err != nil {
		t.Fatalf("Select: %v", err)
	}
	return ws
}

func mustLock(t testing.TB, name string) []Requirement {
	t.Helper()
	reqs, err := ParseLock(filepath.Join(fixtures, name), nil)
	if err != nil {
		t.Fatal(err)
	}
	return reqs
}

func alpineTarget() Target {
	return Target{
		OS: "linux", Arch: "arm64", Variant: "v8", Python: Version{3, 12, 8}, Libc: Libc{Musl, 1, 2},
		SiteDir: "/usr/local/lib/python3.12/site-packages", ScriptsDir: "/usr/local/bin",
		Interpreter: "/usr/local/bin/python3", Prefix: "/usr/local",
	}
}

// TestSources installs the fixtures from a find-links directory, a PEP 503
// index, a PEP 691 index and pylock.toml's paths, for three platforms: the
// entries must be the same, and a second run must make no request.
func TestSources(t *testing.T) {
	htmlIndex := newIndex(t, fixtures, false)
	jsonIndex := newIndex(t, fixtures, true)
	for _, tc := range []struct {
		target Target
		native string
	}{
		{slimTarget("amd64"), nativeAMD64},
		{slimTarget("arm64"), nativeARM64},
		{alpineTarget(), "tfnative-1.0.0-py3-none-musllinux_1_2_aarch64.whl"},
	} {
		t.Run(tc.target.Platform()+" "+tc.target.Libc.Kind, func(t *testing.T) {
			installCache := t.TempDir()
			var first []layers.Entry
			for _, src := range []struct {
				name    string
				lock    string
				sources []string
				index   *testIndex
			}{
				{"find-links", "requirements.lock", []string{fixtures}, nil},
				{"PEP 503", "requirements.lock", []string{htmlIndex.URL()}, htmlIndex},
				{"PEP 691", "requirements.lock", []string{jsonIndex.URL()}, jsonIndex},
				{"pylock.toml", "pylock.toml", nil, nil},
				{"empty dir, then index", "requirements.lock", []string{t.TempDir(), jsonIndex.URL()}, jsonIndex},
			} {
				f := &Finder{Sources: src.sources, Cache: t.TempDir(), Client: http.DefaultClient}
				reqs := mustLock(t, src.lock)
				wheels := mustSelect(t, f, reqs, tc.target)
				var names []string
				for _, w := range wheels {
					names = append(names, w.Filename)
				}
				if want := []string{adminWheel, depsWheel, tc.native}; !reflect.DeepEqual(names, want) {
					t.Errorf("%s: picked %v, want %v", src.name, names, want)
				}
				es := mustInstall(t, wheels, tc.target, InstallOptions{Cache: installCache})
				if first == nil {
					first = es
				} else if !reflect.DeepEqual(es, first) {
					t.Errorf("%s: other entries than from find-links", src.name)
				}
				if src.index == nil {
					continue
				}
				before := src.index.requests.Load()
				again := mustSelect(t, f, reqs, tc.target)
				if n := src.index.requests.Load() - before; n != 0 {
					t.Errorf("%s: a rebuild made %d requests", src.name, n)
				}
				if !reflect.DeepEqual(again, wheels) {
					t.Errorf("%s: a rebuild picked %v", src.name, again)
				}
			}
		})
	}
}

func TestCandidates(t *testing.T) {
	jsonIndex := newIndex(t, fixtures, true)
	htmlIndex := newIndex(t, fixtures, false)
	f := &Finder{Sources: []string{fixtures, htmlIndex.URL(), jsonIndex.URL()}, Cache: t.TempDir()}
	cs, err := f.Candidates(context.Background(), "TFNative")
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 12 {
		t.Fatalf("%d candidates, want 4 from each source: %+v", len(cs), cs)
	}
	for i, c := range cs {
		switch {
		case i < 4 && (c.Path == "" || c.URL != "" || c.SHA256 != ""):
			t.Errorf("find-links candidate %+v", c)
		case i >= 4 && (c.URL == "" || !strings.HasPrefix(c.URL, "http://127.0.0.1:") || c.SHA256 != fileSHA(t, filepath.Join(fixtures, c.Filename)) || c.RequiresPython != ">=3.8"):
			t.Errorf("index candidate %+v", c)
		}
	}
	if cs, err := f.Candidates(context.Background(), "no-such-project"); err != nil || len(cs) != 0 {
		t.Errorf("a missing project: %v, %v", cs, err)
	}
}

func lockText(t *testing.T, lines ...string) []Requirement {
	t.Helper()
	reqs, err := ParseLock(writeLock(t, "requirements.txt", strings.Join(lines, "\n")+"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return reqs
}

func fixtureHash(t *testing.T, name string) string {
	return "sha256:" + fileSHA(t, filepath.Join(fixtures, name))
}

func cacheFiles(t *testing.T, cache string) []string {
	var out []string
	filepath.WalkDir(cache, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func TestSelectErrors(t *testing.T) {
	ctx := context.Background()
	amd64 := slimTarget("amd64")

	t.Run("hash mismatch on download", func(t *testing.T) {
		ix := newIndex(t, fixtures, true)
		ix.noHashes = true
		ix.tamper = map[string][]byte{adminWheel: []byte("not the locked wheel")}
		f := &Finder{Sources: []string{ix.URL()}, Cache: t.TempDir()}
		_, err := Select(ctx, f, mustLock(t, "requirements.lock")[:1], amd64)
		errContains(t, err, "requirements.lock:7: taskflow-admin==0.3.0", "hash mismatch: no wheel for linux/amd64 has a sha256 the lock allows", adminWheel+" from http://127.0.0.1:", "has sha256:"+shaHex([]byte("not the locked wheel")), "re-lock with pip-compile --generate-hashes")
		if files := cacheFiles(t, f.Cache); len(files) != 0 {
			t.Errorf("the cache has %v after a mismatch", files)
		}
	})
	t.Run("hash mismatch from the index page", func(t *testing.T) {
		ix := newIndex(t, fixtures, false)
		reqs := lockText(t, "taskflow-admin==0.3.0 --hash="+hashA)
		f := &Finder{Sources: []string{ix.URL()}, Cache: t.TempDir()}
		_, err := Select(ctx, f, reqs, amd64)
		errContains(t, err, "requirements.txt:1: taskflow-admin==0.3.0", "hash mismatch", adminWheel+" has "+fixtureHash(t, adminWheel), hashA)
		if n := ix.downloads.Load(); n != 0 {
			t.Errorf("%d downloads of a file the index says is not locked", n)
		}
	})
	t.Run("hash mismatch in find-links", func(t *testing.T) {
		reqs := lockText(t, "taskflow-deps==1.0.0 --hash="+hashB)
		_, err := Select(ctx, &Finder{Sources: []string{fixtures}, Cache: t.TempDir()}, reqs, amd64)
		errContains(t, err, "taskflow-deps==1.0.0", "hash mismatch", depsWheel+" from testdata/wheels/"+depsWheel+" has "+fixtureHash(t, depsWheel), "the lock allows ("+hashB+")")
	})
	t.Run("no wheel for the platform", func(t *testing.T) {
		tg := slimTarget("ppc64le")
		_, err := Select(ctx, &Finder{Sources: []string{fixtures}, Cache: t.TempDir()}, mustLock(t, "requirements.lock")[2:], tg)
		errContains(t, err, "requirements.lock:13: tfnative==1.0.0: no wheel for linux/ppc64le (CPython 3.13, glibc 2.36)",
			"there are wheels for py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64, py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64, py3-none-musllinux_1_2_aarch64, py3-none-musllinux_1_2_x86_64",
			"pip download --only-binary=:all: --platform manylinux_2_36_ppc64le --platform manylinux2014_ppc64le --python-version 3.13 --implementation cp --abi cp313 tfnative==1.0.0")
	})
	t.Run("musl wheel only for a glibc platform", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "tfnative-1.0.0-py3-none-musllinux_1_2_x86_64.whl")
		data, _ := os.ReadFile(filepath.Join(fixtures, filepath.Base(p)))
		os.WriteFile(p, data, 0o644)
		_, err := Select(ctx, &Finder{Sources: []string{dir}, Cache: t.TempDir()}, mustLock(t, "requirements.lock")[2:], amd64)
		errContains(t, err, "no wheel for linux/amd64", "there are wheels for py3-none-musllinux_1_2_x86_64")
	})
	t.Run("sdist only", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "Foo_Bar-1.0.tar.gz"), []byte("sdist"), 0o644)
		_, err := Select(ctx, &Finder{Sources: []string{dir}, Cache: t.TempDir()}, lockText(t, "foo-bar==1.0 --hash="+hashA), amd64)
		errContains(t, err, "requirements.txt:1: foo-bar==1.0: only a source distribution (Foo_Bar-1.0.tar.gz), no wheel", "gantry installs wheels only", "pip download")
	})
	t.Run("no files", func(t *testing.T) {
		ix := newIndex(t, fixtures, true)
		_, err := Select(ctx, &Finder{Sources: []string{fixtures, ix.URL()}, Cache: t.TempDir()}, lockText(t, "tfnative==2.0 --hash="+hashA), amd64)
		errContains(t, err, "tfnative==2.0: no files for this version in testdata/wheels, http://127.0.0.1:")
	})
	t.Run("Requires-Python from METADATA", func(t *testing.T) {
		old := amd64
		old.Python = Version{3, 8, 18}
		_, err := Select(ctx, &Finder{Sources: []string{fixtures}, Cache: t.TempDir()}, mustLock(t, "requirements.lock")[:1], old)
		errContains(t, err, "taskflow-admin==0.3.0: no wheel for linux/amd64 supports Python 3.8.18", adminWheel+" requires Python >=3.9")
	})
	t.Run("Requires-Python from the index", func(t *testing.T) {
		ix := newIndex(t, fixtures, false)
		old := amd64
		old.Python = Version{3, 8, 0}
		_, err := Select(ctx, &Finder{Sources: []string{ix.URL()}, Cache: t.TempDir()}, mustLock(t, "requirements.lock")[:1], old)
		errContains(t, err, "no wheel for linux/amd64 supports Python 3.8.0", "requires Python >=3.9")
		if n := ix.downloads.Load(); n != 0 {
			t.Errorf("%d downloads", n)
		}
	})
	t.Run("Requires-Python of the lock", func(t *testing.T) {
		old := amd64
		old.Python = Version{3, 8, 0}
		_, err := Select(ctx, &Finder{Cache: t.TempDir()}, mustLock(t, "pylock.toml"), old)
		errContains(t, err, "pylock.toml:5: taskflow-admin: the lock requires Python >=3.9; linux/amd64 has 3.8.0")
	})
	t.Run("no sources", func(t *testing.T) {
		_, err := Select(ctx, &Finder{Cache: t.TempDir()}, mustLock(t, "requirements.lock"), amd64)
		errContains(t, err, "taskflow-admin==0.3.0: no sources to find wheels in")
	})
	t.Run("index error", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusBadGateway) }))
		defer srv.Close()
		_, err := Select(ctx, &Finder{Sources: []string{srv.URL + "/simple"}, Cache: t.TempDir()}, mustLock(t, "requirements.lock"), amd64)
		errContains(t, err, "listing taskflow-admin on index "+srv.URL+"/simple", "502 Bad Gateway")
	})
}

func TestSelectMarkers(t *testing.T) {
	h := fixtureHash(t, nativeAMD64)
	a := fixtureHash(t, nativeARM64)
	reqs := lockText(t,
		`tfnative==1.0.0 ; platform_machine == "x86_64" --hash=`+h,
		`tfnative==1.0.0 ; platform_machine == "aarch64" --hash=`+a,
		`taskflow-deps==1.0.0 ; python_version < "3.10" --hash=`+fixtureHash(t, depsWheel),
	)
	for _, tc := range []struct {
		target Target
		want   string
	}{{slimTarget("amd64"), nativeAMD64}, {slimTarget("arm64"), nativeARM64}} {
		ws := mustSelect(t, &Finder{Sources: []string{fixtures}, Cache: t.TempDir()}, reqs, tc.target)
		if len(ws) != 1 || ws[0].Filename != tc.want || ws[0].Requirement.Line == 0 {
			t.Errorf("%s: %+v", tc.target.Arch, ws)
		}
	}
	both := lockText(t, `tfnative==1.0.0 ; os_name == "posix" --hash=`+h, `tfnative==1.0.0 ; sys_platform == "linux" --hash=`+h)
	_, err := Select(context.Background(), &Finder{Sources: []string{fixtures}, Cache: t.TempDir()}, both, slimTarget("amd64"))
	errContains(t, err, "requirements.txt:2: tfnative: on linux/amd64 both this and line 1 apply")
	none := lockText(t, `tfnative==1.0.0 ; sys_platform == "win32" --hash=`+h)
	_, err = Select(context.Background(), &Finder{Sources: []string{fixtures}, Cache: t.TempDir()}, none, slimTarget("amd64"))
	errContains(t, err, "the markers of every requirement", "exclude linux/amd64")
}

func shaHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
