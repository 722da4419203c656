package python

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/layers"
)

const (
	nativeAMD64 = "tfnative-1.0.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
	nativeARM64 = "tfnative-1.0.0-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
	adminWheel  = "taskflow_admin-0.3.0-py3-none-any.whl"
	depsWheel   = "taskflow_deps-1.0.0-py3-none-any.whl"
)

func fixtureWheels(t testing.TB, names ...string) []Wheel {
	t.Helper()
	var out []Wheel
	for _, n := range names {
		out = append(out, wheelOf(t, filepath.Join(fixtures, n)))
	}
	return out
}

func mustInstall(t testing.TB, wheels []Wheel, tg Target, o InstallOptions) []layers.Entry {
	t.Helper()
	if o.Cache == "" {
		o.Cache = t.TempDir()
	}
	es, err := Install(context.Background(), wheels, tg, o)
	if err != nil {
		t.Fatalf("Install: %v", err)
	}
	return es
}

func byName(es []layers.Entry) map[string]layers.Entry {
	m := map[string]layers.Entry{}
	for _, e := range es {
		m[e.Name] = e
	}
	return m
}

const wantLauncher = `#!/usr/local/bin/python3
# -*- coding: utf-8 -*-
import re
import sys
from taskflow_admin.cli import main
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\.pyw|\.exe)?$", "", sys.argv[0])
    sys.exit(main())
`

func TestInstall(t *testing.T) {
	tg := slimTarget("amd64")
	es := mustInstall(t, fixtureWheels(t, adminWheel, depsWheel, nativeAMD64), tg, InstallOptions{})
	site := "usr/local/lib/python3.13/site-packages/"
	want := map[string]int64{ // name → mode; directories end in "/"
		"usr/local/bin/taskflow-admin":                           0o755,
		"usr/local/bin/taskflow-admin-legacy":                    0o755,
		"usr/local/include/python3.13/tfnative/":                 0o755,
		"usr/local/include/python3.13/tfnative/tfnative.h":       0o644,
		site + "taskflow_admin/":                                 0o755,
		site + "taskflow_admin/__init__.py":                      0o644,
		site + "taskflow_admin/cli.py":                           0o644,
		site + "taskflow_admin-0.3.0.dist-info/":                 0o755,
		site + "taskflow_admin-0.3.0.dist-info/INSTALLER":        0o644,
		site + "taskflow_admin-0.3.0.dist-info/METADATA":         0o644,
		site + "taskflow_admin-0.3.0.dist-info/RECORD":           0o644,
		site + "taskflow_admin-0.3.0.dist-info/WHEEL":            0o644,
		site + "taskflow_admin-0.3.0.dist-info/entry_points.txt": 0o644,
		site + "taskflow_admin-0.3.0.dist-info/top_level.txt":    0o644,
		site + "taskflow_deps/":                                  0o755,
		site + "taskflow_deps/__init__.py":                       0o644,
		site + "taskflow_deps-1.0.0.dist-info/":                  0o755,
		site + "taskflow_deps-1.0.0.dist-info/INSTALLER":         0o644,
		site + "taskflow_deps-1.0.0.dist-info/METADATA":          0o644,
		site + "taskflow_deps-1.0.0.dist-info/RECORD":            0o644,
		site + "taskflow_deps-1.0.0.dist-info/WHEEL":             0o644,
		site + "taskflow_deps-1.0.0.dist-info/top_level.txt":     0o644,
		site + "tfnative/":                                       0o755,
		site + "tfnative/__init__.py":                            0o644,
		site + "tfnative/libtfnative.so":                         0o755,
		site + "tfnative-1.0.0.dist-info/":                       0o755,
		site + "tfnative-1.0.0.dist-info/INSTALLER":              0o644,
		site + "tfnative-1.0.0.dist-info/METADATA":               0o644,
		site + "tfnative-1.0.0.dist-info/RECORD":                 0o644,
		site + "tfnative-1.0.0.dist-info/WHEEL":                  0o644,
		site + "tfnative-1.0.0.dist-info/top_level.txt":          0o644,
		"usr/local/share/taskflow-admin/":                        0o755,
		"usr/local/share/taskflow-admin/README.txt":              0o644,
	}
	got := map[string]int64{}
	var names []string
	for _, e := range es {
		n := e.Name
		if e.Type == tar.TypeDir {
			n += "/"
		} else if e.Type != tar.TypeReg {
			t.Errorf("%s: type %c", e.Name, e.Type)
		}
		got[n] = e.Mode
		names = append(names, e.Name)
		if e.UID != 0 || e.GID != 0 {
			t.Errorf("%s: owner %d:%d", e.Name, e.UID, e.GID)
		}
		if e.Type == tar.TypeReg && (e.Source == "") == (e.Data == nil) {
			t.Errorf("%s: want exactly one of Source and Data", e.Name)
		}
	}
	if !reflect.DeepEqual(got, want) {
		for n, m := range got {
			if want[n] != m {
				t.Errorf("extra or wrong: %s %o", n, m)
			}
		}
		for n, m := range want {
			if got[n] != m {
				t.Errorf("missing or wrong: %s %o (got %o)", n, m, got[n])
			}
		}
	}
	if !sortedStrings(names) {
		t.Errorf("entries are not sorted: %v", names)
	}

	m := byName(es)
	if s := string(content(t, m["usr/local/bin/taskflow-admin"])); s != wantLauncher {
		t.Errorf("launcher:\n%s\nwant:\n%s", s, wantLauncher)
	}
	legacy := string(content(t, m["usr/local/bin/taskflow-admin-legacy"]))
	if !strings.HasPrefix(legacy, "#!/usr/local/bin/python3\n\"\"\"taskflow-admin-legacy:") {
		t.Errorf("#!python not rewritten:\n%s", legacy)
	}
	for _, d := range []string{"taskflow_admin-0.3.0", "taskflow_deps-1.0.0", "tfnative-1.0.0"} {
		if s := string(content(t, m[site+d+".dist-info/INSTALLER"])); s != "gantry\n" {
			t.Errorf("%s INSTALLER %q", d, s)
		}
	}
	if e := m[site+"tfnative/libtfnative.so"]; !bytes.HasPrefix(content(t, e), []byte("\x7fELF\x02\x01\x01")) || e.Size < 1000 {
		t.Errorf("libtfnative.so: %d bytes, not an ELF", e.Size)
	}
	checkRecords(t, tg, es)
}

func sortedStrings(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] >= s[i] {
			return false
		}
	}
	return true
}

// checkRecords recomputes every RECORD from the entries: together they list
// each regular file exactly once, with its sha256 and size.
func checkRecords(t *testing.T, tg Target, es []layers.Entry) {
	t.Helper()
	m := byName(es)
	listed := map[string]bool{}
	for _, e := range es {
		if !strings.HasSuffix(e.Name, ".dist-info/RECORD") {
			continue
		}
		rows, err := csv.NewReader(bytes.NewReader(content(t, e))).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", e.Name, err)
		}
		for _, row := range rows {
			abs := path.Join(tg.SiteDir, row[0])
			name := strings.TrimPrefix(abs, "/")
			f, ok := m[name]
			if !ok || f.Type != tar.TypeReg {
				t.Errorf("%s lists %s (%s), which is not installed", e.Name, row[0], name)
				continue
			}
			if listed[name] {
				t.Errorf("%s is listed twice", name)
			}
			listed[name] = true
			if name == e.Name {
				if row[1] != "" || row[2] != "" {
					t.Errorf("%s lists itself with a hash: %v", e.Name, row)
				}
				continue
			}
			data := content(t, f)
			sum := sha256.Sum256(data)
			if want := "sha256=" + base64.RawURLEncoding.EncodeToString(sum[:]); row[1] != want {
				t.Errorf("%s: %s hash %s, content has %s", e.Name, row[0], row[1], want)
			}
			if row[2] != strconv.Itoa(len(data)) || f.Size != int64(len(data)) {
				t.Errorf("%s: %s size %s, entry %d, content %d", e.Name, row[0], row[2], f.Size, len(data))
			}
		}
	}
	for _, e := range es {
		if e.Type == tar.TypeReg && !listed[e.Name] {
			t.Errorf("%s is in no RECORD", e.Name)
		}
	}
	if r := string(content(t, m["usr/local/lib/python3.13/site-packages/taskflow_admin-0.3.0.dist-info/RECORD"])); !strings.Contains(r, "\n../../../bin/taskflow-admin,sha256=") && !strings.HasPrefix(r, "../../../bin/taskflow-admin,sha256=") {
		t.Errorf("RECORD does not list the launcher as ../../../bin/taskflow-admin:\n%s", r)
	}
}

func TestInstallRefuses(t *testing.T) {
	tg := slimTarget("amd64")
	good := []zmember{{name: "pkg/__init__.py", data: "x = 1\n"}}
	for _, tc := range []struct {
		name string
		w    wheelSpec
		err  []string
	}{
		{"tampered member", wheelSpec{members: good, recordFields: map[string]string{"pkg/__init__.py": "sha256=" + strings.Repeat("A", 43) + ",6"}}, []string{"pkg/__init__.py does not match its RECORD hash", "altered"}},
		{"wrong size", wheelSpec{members: good, recordFields: map[string]string{"pkg/__init__.py": "sha256=" + recordSHA("x = 1\n") + ",7"}}, []string{"pkg/__init__.py has 6 bytes, RECORD says 7"}},
		{"member not in RECORD", wheelSpec{members: append(good, zmember{name: "pkg/extra.py", data: "evil()\n"}), skipRecord: []string{"pkg/extra.py"}}, []string{"member pkg/extra.py is not in RECORD"}},
		{"RECORD lists a missing file", wheelSpec{members: good, recordExtra: []string{"pkg/gone.py,sha256=" + recordSHA("") + ",0"}}, []string{"RECORD lists pkg/gone.py, which the wheel does not have"}},
		{"no hash", wheelSpec{members: good, recordFields: map[string]string{"pkg/__init__.py": ","}}, []string{"RECORD has no hash for pkg/__init__.py"}},
		{"path traversal", wheelSpec{members: []zmember{{name: "../../../../etc/cron.d/x", data: "* * * * * root evil\n"}}}, []string{"climbs out"}},
		{"path traversal inside", wheelSpec{members: []zmember{{name: "pkg/../../x.py", data: ""}}}, []string{"climbs out"}},
		{"absolute path", wheelSpec{members: []zmember{{name: "/etc/passwd", data: "root::0:0::/:/bin/sh\n"}}}, []string{"absolute path"}},
		{"symlink", wheelSpec{members: []zmember{{name: "pkg/link", data: "/etc/shadow", mode: fs.ModeSymlink | 0o777}}}, []string{"pkg/link is a symlink"}},
		{"unknown scheme", wheelSpec{members: []zmember{{name: "pkg-1.0.data/etc/x.conf", data: ""}}}, []string{"not one of purelib, platlib, scripts, headers, data"}},
		{"data escape", wheelSpec{members: []zmember{{name: "pkg-1.0.data/data/../../x", data: ""}}}, []string{"climbs out"}},
		{"bad entry point", wheelSpec{members: []zmember{{name: "pkg-1.0.dist-info/entry_points.txt", data: "[console_scripts]\nx = not a module\n"}}}, []string{"entry_points.txt line 2", "is not MODULE:FUNCTION"}},
		{"script name with a slash", wheelSpec{members: []zmember{{name: "pkg-1.0.dist-info/entry_points.txt", data: "[gui_scripts]\n../x = pkg:main\n"}}}, []string{"script name \"../x\" is not a file name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.w.dist, tc.w.version = "pkg", "1.0"
			p := writeWheel(t, t.TempDir(), tc.w)
			_, err := Install(context.Background(), []Wheel{wheelOf(t, p)}, tg, InstallOptions{Cache: t.TempDir()})
			errContains(t, err, append([]string{"pkg-1.0-py3-none-any.whl"}, tc.err...)...)
		})
	}
}

func recordSHA(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func TestInstallWheelVersion(t *testing.T) {
	dir := t.TempDir()
	p := writeWheel(t, dir, wheelSpec{dist: "pkg", version: "1.0", wheelFile: "Wheel-Version: 2.0\nRoot-Is-Purelib: true\n"})
	_, err := Install(context.Background(), []Wheel{wheelOf(t, p)}, slimTarget("amd64"), InstallOptions{Cache: t.TempDir()})
	errContains(t, err, "pkg-1.0-py3-none-any.whl: Wheel-Version \"2.0\" is not supported")
}

func TestInstallCollision(t *testing.T) {
	dir := t.TempDir()
	a := writeWheel(t, dir, wheelSpec{dist: "alpha", version: "1.0", members: []zmember{{name: "shared/util.py", data: "a\n"}}})
	b := writeWheel(t, dir, wheelSpec{dist: "beta", version: "2.0", members: []zmember{{name: "shared/util.py", data: "b\n"}}})
	_, err := Install(context.Background(), []Wheel{wheelOf(t, a), wheelOf(t, b)}, slimTarget("amd64"), InstallOptions{Cache: t.TempDir()})
	errContains(t, err, "alpha-1.0-py3-none-any.whl: shared/util.py", "beta-2.0-py3-none-any.whl: shared/util.py", "both install /usr/local/lib/python3.13/site-packages/shared/util.py")

	// a launcher and a script of the same name
	c := writeWheel(t, dir, wheelSpec{dist: "gamma", version: "1.0", members: []zmember{
		{name: "gamma-1.0.data/scripts/gamma", data: "#!/bin/sh\n"},
		{name: "gamma-1.0.dist-info/entry_points.txt", data: "[console_scripts]\ngamma = gamma:main\n"},
	}})
	_, err = Install(context.Background(), []Wheel{wheelOf(t, c)}, slimTarget("amd64"), InstallOptions{Cache: t.TempDir()})
	errContains(t, err, "both install /usr/local/bin/gamma")

	// a file where another wheel needs a directory
	d := writeWheel(t, dir, wheelSpec{dist: "delta", version: "1.0", members: []zmember{{name: "shared", data: "x"}}})
	_, err = Install(context.Background(), []Wheel{wheelOf(t, a), wheelOf(t, d)}, slimTarget("amd64"), InstallOptions{Cache: t.TempDir()})
	errContains(t, err, "delta-1.0-py3-none-any.whl: shared installs a file at /usr/local/lib/python3.13/site-packages/shared")
}

func TestInstallOptions(t *testing.T) {
	tg := slimTarget("amd64")
	tg.SiteDir = "/usr/local/lib/python3.11/dist-packages"
	tg.NewDirs = []string{"/usr/local/lib/python3.11", "/usr/local/lib/python3.11/dist-packages"}
	es := mustInstall(t, fixtureWheels(t, adminWheel), tg, InstallOptions{Owner: &layers.Owner{UID: 1001, GID: 1002}, FileMode: 0o640, DirMode: 0o750})
	m := byName(es)
	for name, mode := range map[string]int64{
		"usr/local/lib/python3.11":                                     0o750,
		"usr/local/lib/python3.11/dist-packages":                       0o750,
		"usr/local/lib/python3.11/dist-packages/taskflow_admin":        0o750,
		"usr/local/lib/python3.11/dist-packages/taskflow_admin/cli.py": 0o640,
		"usr/local/bin/taskflow-admin":                                 0o750,
		"usr/local/bin/taskflow-admin-legacy":                          0o750,
	} {
		e, ok := m[name]
		if !ok {
			t.Errorf("%s: missing", name)
			continue
		}
		if e.Mode != mode || e.UID != 1001 || e.GID != 1002 {
			t.Errorf("%s: mode %o owner %d:%d; want %o 1001:1002", name, e.Mode, e.UID, e.GID, mode)
		}
	}
	for _, n := range []string{"usr/local/bin", "usr/local/lib", "usr/local/share"} {
		if _, ok := m[n]; ok {
			t.Errorf("%s: the base's directory is in the layer", n)
		}
	}
	// RECORD paths are relative to this site dir
	if r := string(content(t, m["usr/local/lib/python3.11/dist-packages/taskflow_admin-0.3.0.dist-info/RECORD"])); !strings.Contains(r, "../../../share/taskflow-admin/README.txt,") {
		t.Errorf("RECORD:\n%s", r)
	}
}

// TestInstallWarm checks that a second install with the same cache gives the
// same entries without reading the wheel.
func TestInstallWarm(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join(fixtures, nativeARM64))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, nativeARM64)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	w := wheelOf(t, p)
	cache := t.TempDir()
	tg := slimTarget("arm64")
	first := mustInstall(t, []Wheel{w}, tg, InstallOptions{Cache: cache})
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	second := mustInstall(t, []Wheel{w}, tg, InstallOptions{Cache: cache})
	if !reflect.DeepEqual(first, second) {
		t.Error("a warm install gave other entries")
	}
	// a store that lost a file re-extracts (and here fails: no wheel)
	for _, e := range first {
		if e.Source != "" {
			os.Remove(e.Source)
			break
		}
	}
	if _, err := Install(context.Background(), []Wheel{w}, tg, InstallOptions{Cache: cache}); err == nil {
		t.Error("an incomplete store was used")
	}
}

// materialize writes entries under root, as a container runtime would.
func materialize(t *testing.T, root string, es []layers.Entry) {
	t.Helper()
	for _, e := range es {
		p := filepath.Join(root, filepath.FromSlash(e.Name))
		switch e.Type {
		case tar.TypeDir:
			if err := os.MkdirAll(p, fs.FileMode(e.Mode)); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, content(t, e), fs.FileMode(e.Mode)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestInstallRuns runs the installed packages and scripts with the host's
// python3, when there is one and it can load the x86_64 library.
func TestInstallRuns(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the host cannot load an x86_64 Linux library")
	}
	root := t.TempDir()
	tg := slimTarget("amd64")
	materialize(t, root, mustInstall(t, fixtureWheels(t, adminWheel, depsWheel, nativeAMD64), tg, InstallOptions{}))
	env := append(os.Environ(), "PYTHONPATH="+filepath.Join(root, tg.SiteDir), "PYTHONDONTWRITEBYTECODE=1")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-c", "import tfnative; print(tfnative.add(2, 3), tfnative.arch())"}, "5 x86_64\n"},
		{[]string{filepath.Join(root, "usr/local/bin/taskflow-admin"), "Hello World"}, "taskflow-admin hello-world\n"},
		{[]string{filepath.Join(root, "usr/local/bin/taskflow-admin-legacy"), "Ship v1.0"}, "taskflow-admin ship-v1-0\n"},
	} {
		cmd := exec.Command(py, tc.args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil || string(out) != tc.want {
			t.Errorf("python3 %v: %q, %v; want %q", tc.args, out, err, tc.want)
		}
	}
}

func TestShebang(t *testing.T) {
	if got := shebang("/usr/local/bin/python3"); got != "#!/usr/local/bin/python3\n" {
		t.Errorf("simple: %q", got)
	}
	if got := shebang("/opt/my env/bin/python"); got != "#!/bin/sh\n'''exec' '/opt/my env/bin/python' \"$0\" \"$@\"\n' '''\n" {
		t.Errorf("with a space: %q", got)
	}
	long := "/" + strings.Repeat("x", 130)
	if got := shebang(long); !strings.HasPrefix(got, "#!/bin/sh\n") {
		t.Errorf("long: %q", got)
	}
}

func TestRelPath(t *testing.T) {
	for _, tc := range []struct{ from, to, want string }{
		{"/usr/local/lib/python3.13/site-packages", "/usr/local/bin/x", "../../../bin/x"},
		{"/usr/local/lib/python3.13/site-packages", "/usr/local/lib/python3.13/site-packages/a/b", "a/b"},
		{"/app/deps", "/app/deps/bin/x", "bin/x"},
		{"/opt/venv/lib/python3.12/site-packages", "/opt/venv/include/python3.12/p/h.h", "../../../include/python3.12/p/h.h"},
	} {
		if got := relPath(tc.from, tc.to); got != tc.want {
			t.Errorf("relPath(%s, %s) = %s, want %s", tc.from, tc.to, got, tc.want)
		}
	}
}

// zeros is an endless source of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestInstallStreams installs a wheel with a 4 MiB member and checks that
// it was never held in memory.
func TestInstallStreams(t *testing.T) {
	const size = 4 << 20
	p := filepath.Join(t.TempDir(), "big-1.0-py3-none-any.whl")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	add := func(name string, r io.Reader) string {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate})
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(w, h), r)
		if err != nil {
			t.Fatal(err)
		}
		return name + ",sha256=" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)) + "," + strconv.FormatInt(n, 10) + "\n"
	}
	record := add("big/blob.bin", io.LimitReader(zeros{}, size))
	record += add("big-1.0.dist-info/METADATA", strings.NewReader("Metadata-Version: 2.1\nName: big\nVersion: 1.0\n"))
	record += add("big-1.0.dist-info/WHEEL", strings.NewReader("Wheel-Version: 1.0\nRoot-Is-Purelib: true\n"))
	add("big-1.0.dist-info/RECORD", strings.NewReader(record+"big-1.0.dist-info/RECORD,,\n"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	es := mustInstall(t, []Wheel{{Filename: filepath.Base(p), Path: p}}, slimTarget("amd64"), InstallOptions{})
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d KiB", alloc>>10)
	if alloc > size/4 {
		t.Errorf("Install allocated %d MiB for a %d MiB member", alloc>>20, size>>20)
	}
	if e := byName(es)["usr/local/lib/python3.13/site-packages/big/blob.bin"]; e.Size != size || e.Source == "" {
		t.Errorf("blob entry %+v", e)
	}
}
