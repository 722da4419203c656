package python

import (
	"archive/tar"
	"context"
	"sort"
	"strings"
	"testing"
)

// fixtures is the directory of the generated wheels and locks.
const fixtures = "testdata/wheels"

// fakeFile is one path of a fake base filesystem.
type fakeFile struct {
	typ  byte
	link string
	data string
}

// fakeFS is a BaseFS over a map; like the real one it does not follow
// symlinks.
type fakeFS map[string]fakeFile

func (f fakeFS) Stat(_ context.Context, name string) (byte, string, bool, error) {
	e, ok := f[name]
	if !ok {
		// a parent directory of a listed path exists implicitly
		for k := range f {
			if strings.HasPrefix(k, name+"/") {
				return tar.TypeDir, "", true, nil
			}
		}
		return 0, "", false, nil
	}
	return e.typ, e.link, true, nil
}

func (f fakeFS) ReadDir(_ context.Context, dir string) ([]string, error) {
	seen := map[string]bool{}
	for k := range f {
		if rest, ok := strings.CutPrefix(k, dir+"/"); ok {
			first, _, _ := strings.Cut(rest, "/")
			seen[first] = true
		}
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

func (f fakeFS) ReadFile(_ context.Context, name string) ([]byte, bool, error) {
	e, ok := f[name]
	if !ok || e.typ != tar.TypeReg {
		return nil, false, nil
	}
	return []byte(e.data), true, nil
}

func dir() fakeFile                  { return fakeFile{typ: tar.TypeDir} }
func reg(data string) fakeFile       { return fakeFile{typ: tar.TypeReg, data: data} }
func symlink(target string) fakeFile { return fakeFile{typ: tar.TypeSymlink, link: target} }

// merge returns the union of fake filesystems (later ones win).
func merge(fss ...fakeFS) fakeFS {
	out := fakeFS{}
	for _, f := range fss {
		for k, v := range f {
			out[k] = v
		}
	}
	return out
}

const dpkgStatus = `Package: base-files
Status: install ok installed
Version: 12.4+deb12u7

Package: libc6
Status: install ok installed
Multi-Arch: same
Architecture: amd64
Version: 2.36-9+deb12u7
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.
`

// bookworm is a Debian 12 root (merged /usr).
func bookworm() fakeFS {
	return fakeFS{
		"bin": symlink("usr/bin"), "lib": symlink("usr/lib"), "lib64": symlink("usr/lib64"),
		"usr/lib/x86_64-linux-gnu/libc.so.6": reg("\x7fELF"),
		"usr/local/bin":                      dir(), "usr/local/lib": dir(), "usr/local/share": dir(),
		"var/lib/dpkg/status": reg(dpkgStatus),
	}
}

// pythonSlim is python:3.13-slim for amd64.
func pythonSlim() fakeFS {
	return merge(bookworm(), fakeFS{
		"usr/local/bin/python3":                             symlink("python3.13"),
		"usr/local/bin/python3.13":                          reg("\x7fELF"),
		"usr/local/lib/python3.13/os.py":                    reg(""),
		"usr/local/lib/python3.13/site-packages/README.txt": reg(""),
		"usr/local/include/python3.13/Python.h":             reg(""),
	})
}

var slimEnv = []string{"PATH=/usr/local/bin:/usr/bin", "LANG=C.UTF-8", "PYTHON_VERSION=3.13.1"}

// slimTarget is what DetectTarget finds in pythonSlim for arch.
func slimTarget(arch string) Target {
	return Target{
		OS: "linux", Arch: arch, Python: Version{3, 13, 1}, Libc: Libc{Glibc, 2, 36},
		SiteDir: "/usr/local/lib/python3.13/site-packages", ScriptsDir: "/usr/local/bin",
		Interpreter: "/usr/local/bin/python3", Prefix: "/usr/local",
	}
}

func errContains(t testing.TB, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q\n  does not contain %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
}
