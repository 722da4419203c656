package python

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const (
	hashA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	hashB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func writeLock(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseLockFixtures(t *testing.T) {
	txt, err := ParseLock(filepath.Join(fixtures, "requirements.lock"), nil)
	if err != nil {
		t.Fatal(err)
	}
	toml, err := ParseLock(filepath.Join(fixtures, "pylock.toml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		name, version string
		hashes        int
	}
	var gotTxt, gotToml []key
	for _, r := range txt {
		gotTxt = append(gotTxt, key{r.Name, r.Version, len(r.Hashes)})
		if len(r.Files) != 0 {
			t.Errorf("%s: a requirements file gave files %v", r.Name, r.Files)
		}
	}
	want := []key{{"taskflow-admin", "0.3.0", 1}, {"taskflow-deps", "1.0.0", 1}, {"tfnative", "1.0.0", 4}}
	if !reflect.DeepEqual(gotTxt, want) {
		t.Errorf("requirements.lock: %v, want %v", gotTxt, want)
	}
	if txt[0].Line != 7 || txt[2].Line != 13 {
		t.Errorf("lines %d, %d; want 7, 13", txt[0].Line, txt[2].Line)
	}
	for i, r := range toml {
		gotToml = append(gotToml, key{r.Name, r.Version, len(r.Hashes)})
		if !reflect.DeepEqual(sortedCopy(r.Hashes), sortedCopy(txt[i].Hashes)) {
			t.Errorf("%s: pylock.toml hashes %v, requirements.lock %v", r.Name, r.Hashes, txt[i].Hashes)
		}
		if r.RequiresPython != ">=3.9" {
			t.Errorf("%s: requires-python %q", r.Name, r.RequiresPython)
		}
		for _, f := range r.Files {
			if _, err := os.Stat(f.Path); err != nil || f.SHA256 == "" || filepath.Base(f.Path) != f.Filename {
				t.Errorf("%s: file %+v: %v", r.Name, f, err)
			}
		}
	}
	if !reflect.DeepEqual(gotToml, want) {
		t.Errorf("pylock.toml: %v, want %v", gotToml, want)
	}
	if toml[2].Line != 19 || len(toml[2].Files) != 4 {
		t.Errorf("tfnative at line %d with %d files; want 19 and 4", toml[2].Line, len(toml[2].Files))
	}
}

func TestParseRequirements(t *testing.T) {
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	p := writeLock(t, "requirements.txt", strings.Join([]string{
		"# a comment",
		"--index-url https://example.invalid/simple",
		"--require-hashes",
		"Foo.Bar[extra]==1.0 ; python_version >= \"3.8\" \\",
		"    --hash=sha256:" + hashA[7:] + " \\",
		"    --hash=sha512:" + strings.Repeat("c", 128) + " \\",
		"    --hash sha256:" + hashB[7:],
		"    # via something",
		"",
		"baz==2.0.post1 --hash=sha256:" + hashA[7:] + "  # trailing comment",
		`qux==3 ; sys_platform == "linux" and (platform_machine == "aarch64" or platform_machine == "x86_64") --hash=sha256:` + hashB[7:],
	}, "\r\n"))
	reqs, err := ParseLock(p, log)
	if err != nil {
		t.Fatal(err)
	}
	want := []Requirement{
		{Name: "foo-bar", Version: "1.0", Hashes: []string{hashA, hashB}, Markers: `python_version >= "3.8"`, File: p, Line: 4},
		{Name: "baz", Version: "2.0.post1", Hashes: []string{hashA}, File: p, Line: 10},
		{Name: "qux", Version: "3", Hashes: []string{hashB}, Markers: `sys_platform == "linux" and (platform_machine == "aarch64" or platform_machine == "x86_64")`, File: p, Line: 11},
	}
	if !reflect.DeepEqual(reqs, want) {
		t.Errorf("got  %+v\nwant %+v", reqs, want)
	}
	if !strings.Contains(logged.String(), "--index-url") || strings.Contains(logged.String(), "--require-hashes") {
		t.Errorf("log: %s", logged.String())
	}
}

func TestParseLockErrors(t *testing.T) {
	h := " --hash=" + hashA
	for _, tc := range []struct {
		name, file, text string
		err              []string
	}{
		{"missing hash", "r.txt", "ok==1.0" + h + "\nrequests==2.31.0\n", []string{"r.txt:2: requests: no --hash=sha256:", "pip-compile --generate-hashes", "uv pip compile --generate-hashes"}},
		{"only a sha512", "r.txt", "foo==1 --hash=sha512:" + strings.Repeat("c", 128), []string{"r.txt:1: foo: no --hash=sha256"}},
		{"unpinned", "r.txt", "Requests>=2.0" + h, []string{"r.txt:1: requests: not pinned to one version (>=2.0)", "pin it with =="}},
		{"two clauses", "r.txt", "foo==1.0,<2" + h, []string{"r.txt:1: foo: not pinned"}},
		{"wildcard", "r.txt", "foo==1.*" + h, []string{"r.txt:1: foo: not pinned"}},
		{"no version", "r.txt", "foo" + h, []string{"r.txt:1: foo: no version"}},
		{"direct URL", "r.txt", "foo @ https://example.invalid/foo.whl" + h, []string{"r.txt:1: foo: a direct URL"}},
		{"include", "r.txt", "-r base.txt\n", []string{"r.txt:1: -r (including another file) is not supported"}},
		{"constraint", "r.txt", "--constraint=c.txt\n", []string{"r.txt:1: --constraint"}},
		{"editable", "r.txt", "-e .\n", []string{"r.txt:1: -e (an editable install)"}},
		{"unknown option", "r.txt", "--frobnicate\n", []string{"r.txt:1: unknown option --frobnicate"}},
		{"bad hash", "r.txt", "foo==1 --hash=sha256:abc", []string{"r.txt:1: foo: --hash=sha256:abc is not a sha256"}},
		{"bad version", "r.txt", "foo==1.0-garbage" + h, []string{"r.txt:1: foo:", "not a PEP 440 version"}},
		{"machine-dependent marker", "r.txt", `foo==1 ; platform_release >= "5"` + h, []string{"r.txt:1: foo:", "platform_release cannot be evaluated"}},
		{"extra marker", "r.txt", `foo==1 ; extra == "x"` + h, []string{"r.txt:1: foo:", "extra cannot be evaluated"}},
		{"broken marker", "r.txt", `foo==1 ; python_version >= ` + h, []string{"r.txt:1: foo:", "marker"}},
		{"duplicate", "r.txt", "foo==1" + h + "\nFoo==1" + h, []string{"r.txt:2: foo: listed again (first at line 1)"}},
		{"pylock: no hash", "pylock.toml", "lock-version = \"1.0\"\n\n[[packages]]\nname = \"foo\"\nversion = \"1\"\nwheels = [{ name = \"foo-1-py3-none-any.whl\", url = \"https://x.invalid/foo-1-py3-none-any.whl\", hashes = {} }]\n",
			[]string{"pylock.toml:3: foo: foo-1-py3-none-any.whl has no sha256 hash"}},
		{"pylock: no version", "pylock.toml", "lock-version = \"1.0\"\n[[packages]]\nname = \"foo\"\ndirectory = { path = \".\" }\n", []string{"pylock.toml:2: foo: a vcs, directory or archive package"}},
		{"pylock: version 2", "pylock.toml", "lock-version = \"2.0\"\n", []string{"lock-version \"2.0\" is not supported"}},
		{"pylock: syntax", "pylock.toml", "lock-version = \"1.0\"\n[[packages]\n", []string{"pylock.toml:3:", "expected end of table array"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseLock(writeLock(t, tc.file, tc.text), nil)
			errContains(t, err, tc.err...)
		})
	}
}

func TestPylock(t *testing.T) {
	p := writeLock(t, "pylock.web.toml", `lock-version = "1.0"
environments = ["sys_platform == 'linux'"]
requires-python = ">=3.10"
created-by = "uv"

[[packages]]
name = "Foo_Bar"
version = "1.0"
marker = "platform_machine == 'x86_64'"
index = "https://pypi.org/simple"
sdist = { url = "https://files.invalid/foo_bar-1.0.tar.gz", upload-time = 2024-01-01T00:00:00Z, size = 10, hashes = { sha256 = "`+hashB[7:]+`" } }
wheels = [
  { url = "https://files.invalid/foo_bar-1.0-py3-none-any.whl", upload-time = 2024-01-01T00:00:00Z, size = 10, hashes = { sha256 = "`+strings.ToUpper(hashA[7:])+`" } },
]

[packages.tool.uv]
x = 1
`)
	reqs, err := ParseLock(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Requirement{{
		Name: "foo-bar", Version: "1.0", Hashes: []string{hashA, hashB},
		Markers:        "(platform_machine == 'x86_64') and ((sys_platform == 'linux'))",
		RequiresPython: ">=3.10", File: p, Line: 6,
		Files: []Candidate{
			{Filename: "foo_bar-1.0-py3-none-any.whl", URL: "https://files.invalid/foo_bar-1.0-py3-none-any.whl", SHA256: hashA[7:], Source: p},
			{Filename: "foo_bar-1.0.tar.gz", URL: "https://files.invalid/foo_bar-1.0.tar.gz", SHA256: hashB[7:], Source: p},
		},
	}}
	if !reflect.DeepEqual(reqs, want) {
		t.Errorf("got  %+v\nwant %+v", reqs, want)
	}
	for _, tc := range []struct {
		arch string
		want bool
	}{{"amd64", true}, {"arm64", false}} {
		ok, err := reqs[0].Applies(Target{OS: "linux", Arch: tc.arch, Python: Version{3, 12, 0}})
		if err != nil || ok != tc.want {
			t.Errorf("%s: applies %v, %v; want %v", tc.arch, ok, err, tc.want)
		}
	}
}

func TestMarkers(t *testing.T) {
	amd64 := Target{OS: "linux", Arch: "amd64", Python: Version{3, 13, 1}, Libc: Libc{Glibc, 2, 36}}
	arm64 := Target{OS: "linux", Arch: "arm64", Python: Version{3, 11, 4}, Libc: Libc{Musl, 1, 2}}
	for _, tc := range []struct {
		marker       string
		amd64, arm64 bool
	}{
		{`python_version >= "3.12"`, true, false},
		{`python_version < "3.12"`, false, true},
		{`"3.12" <= python_version`, true, false},
		{`python_version == "3.13"`, true, false},
		{`python_version == "3.*"`, true, true},
		{`python_version ~= "3.11"`, true, true},
		{`python_full_version >= "3.13.1"`, true, false},
		{`python_full_version < "3.11.5"`, false, true},
		{`python_version != "3.11"`, true, false},
		{`sys_platform == "linux"`, true, true},
		{`sys_platform == 'win32'`, false, false},
		{`sys_platform != "darwin" and platform_machine == "x86_64"`, true, false},
		{`platform_machine == "aarch64" or platform_machine == "arm64"`, false, true},
		{`(platform_machine == "x86_64" or python_version < "3.12") and os_name == "posix"`, true, true},
		{`platform_system == "Linux" and implementation_name == "cpython"`, true, true},
		{`platform_python_implementation == "CPython"`, true, true},
		{`"linux" in sys_platform`, true, true},
		{`"x86" not in platform_machine`, false, true},
		{`implementation_name == "pypy" or python_version > "3.12"`, true, false},
	} {
		m, err := parseMarker(tc.marker)
		if err != nil {
			t.Errorf("%s: %v", tc.marker, err)
			continue
		}
		for _, c := range []struct {
			t    Target
			want bool
		}{{amd64, tc.amd64}, {arm64, tc.arm64}} {
			got, err := m.eval(c.t)
			if err != nil || got != c.want {
				t.Errorf("%s on %s: %v, %v; want %v", tc.marker, c.t.Arch, got, err, c.want)
			}
		}
	}
	for _, bad := range []string{`python_version`, `python_version >= "3" and`, `(python_version >= "3"`, `python_version >= python_version`, `"a" == "b"`, `platform_version == "x"`, `os.name == "posix"`, `python_version >= "3`} {
		if _, err := parseMarker(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestVersions(t *testing.T) {
	order := []string{"1.0.dev1", "1.0a1", "1.0a2.dev1", "1.0a2", "1.0b1", "1.0rc1", "1.0", "1.0+local", "1.0.post1.dev1", "1.0.post1", "1.1", "1!0.1"}
	for i := range order {
		for j := range order {
			a, err := parseVersion(order[i])
			if err != nil {
				t.Fatal(err)
			}
			b, _ := parseVersion(order[j])
			if got := compareVersions(a, b); got != cmpInt(i, j) {
				t.Errorf("compare(%s, %s) = %d, want %d", order[i], order[j], got, cmpInt(i, j))
			}
		}
	}
	for _, tc := range []struct{ a, b string }{{"1.0", "1.0.0"}, {"1.0RC1", "1.0rc1"}, {"v1.0-post2", "1.0.post2"}, {"1.0alpha", "1.0a0"}} {
		if !sameVersion(tc.a, tc.b) {
			t.Errorf("%s and %s differ", tc.a, tc.b)
		}
	}
	for _, tc := range []struct {
		spec, version string
		want          bool
	}{
		{">=3.8", "3.13.0", true}, {">=3.8,<4", "3.13.0", true}, {">=3.14", "3.13.1", false},
		{"!=3.13.*", "3.13.1", false}, {"==3.13.*", "3.13.1", true}, {"~=3.9", "3.13.0", true}, {"~=3.9.1", "3.10.0", false},
		{"<3.13", "3.13.0rc1", false}, {">3.13", "3.13.0.post1", false}, {"==3.13", "3.13.0", true}, {"===3.13.0", "3.13.0", true},
		{">=3.8, !=3.9.0", "3.9.0", false},
	} {
		set, err := parseSpecifierSet(tc.spec)
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		v, _ := parseVersion(tc.version)
		if got := specifiersContain(set, v); got != tc.want {
			t.Errorf("%s contains %s: %v, want %v", tc.spec, tc.version, got, tc.want)
		}
	}
	for _, bad := range []string{"3.8", "=>3.8", "~=3", ">=three"} {
		if _, err := parseSpecifierSet(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
