package python

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Version is a Python version. Micro is 0 when the base does not tell it
// (as pip does for --python-version 3.13).
type Version struct{ Major, Minor, Micro int }

// String is "3.13", the python_version marker and the pythonX.Y directory.
func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// Full is "3.13.1", the python_full_version marker.
func (v Version) Full() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Micro) }

// Libc kinds.
const (
	Glibc = "glibc"
	Musl  = "musl"
)

// Libc is the C library of a platform: glibc 2.36, musl 1.2.
type Libc struct {
	Kind         string // Glibc or Musl
	Major, Minor int
}

func (l Libc) String() string { return fmt.Sprintf("%s %d.%d", l.Kind, l.Major, l.Minor) }

// Target describes the Python of one platform of a base image: what wheels
// it can load and where they are installed.
type Target struct {
	OS, Arch, Variant string // OCI platform: linux, amd64|arm64|arm|386|ppc64le|s390x|riscv64, v7...
	Python            Version
	Libc              Libc
	SiteDir           string // absolute: /usr/local/lib/python3.13/site-packages
	ScriptsDir        string // absolute: /usr/local/bin
	Interpreter       string // absolute, for #! lines: /usr/local/bin/python3
	Prefix            string // absolute: /usr/local (.data/data goes here, headers under include/)
	// NewDirs are directories (absolute, parents first) that SiteDir and
	// ScriptsDir need and the base does not have; Install creates them.
	NewDirs []string
}

// Platform is "linux/arm64/v8", for messages.
func (t Target) Platform() string {
	p := t.OS + "/" + t.Arch
	if t.Variant != "" {
		p += "/" + t.Variant
	}
	return p
}

// Machine is platform.machine() on the target: x86_64, aarch64, armv7l, ...
func (t Target) Machine() (string, error) {
	switch t.Arch {
	case "amd64":
		return "x86_64", nil
	case "arm64":
		return "aarch64", nil
	case "386":
		return "i686", nil
	case "ppc64le", "s390x", "riscv64":
		return t.Arch, nil
	case "arm":
		switch t.Variant {
		case "", "v7":
			return "armv7l", nil
		case "v6":
			return "armv6l", nil
		case "v5":
			return "armv5tel", nil
		}
		return "", fmt.Errorf("%s: unknown arm variant %q (want v5, v6 or v7)", t.Platform(), t.Variant)
	}
	return "", fmt.Errorf("%s: no Python wheel platform is known for architecture %q", t.Platform(), t.Arch)
}

// debianTriplet is the multiarch directory of an architecture's libraries.
func debianTriplet(arch, variant string) string {
	switch arch {
	case "amd64":
		return "x86_64-linux-gnu"
	case "arm64":
		return "aarch64-linux-gnu"
	case "386":
		return "i386-linux-gnu"
	case "ppc64le":
		return "powerpc64le-linux-gnu"
	case "s390x":
		return "s390x-linux-gnu"
	case "riscv64":
		return "riscv64-linux-gnu"
	case "arm":
		if variant == "v5" {
			return "arm-linux-gnueabi"
		}
		return "arm-linux-gnueabihf"
	}
	return ""
}

// BaseFS is what DetectTarget needs from a base image's filesystem. Names
// are relative to "/" ("usr/local/bin/python3"). No method follows a
// symlink in the last component (DetectTarget resolves symlinks itself);
// symlinks in the directories above it need not be followed either.
type BaseFS interface {
	// Stat reports the tar type flag of name and, for a symlink, its target.
	Stat(ctx context.Context, name string) (typ byte, linkname string, ok bool, err error)
	// ReadDir lists the base names in dir (none if it does not exist).
	ReadDir(ctx context.Context, dir string) ([]string, error)
	// ReadFile returns the contents of a small file; it is only asked for
	// var/lib/dpkg/status(.d/*) and lib/apk/db/installed.
	ReadFile(ctx context.Context, name string) ([]byte, bool, error)
}

// resolver follows symlinks inside a BaseFS, as the kernel would inside the
// image's root.
type resolver struct {
	ctx context.Context
	fs  BaseFS
}

// resolve returns name with every symlink followed (relative to "/"), its
// type, and whether it exists.
func (r resolver) resolve(name string) (string, byte, bool, error) {
	return r.walk(strings.Trim(path.Clean("/"+name), "/"), 0)
}

func (r resolver) walk(name string, depth int) (string, byte, bool, error) {
	if name == "" {
		return "", tar.TypeDir, true, nil
	}
	parts := strings.Split(name, "/")
	cur := ""
	for i, p := range parts {
		next := path.Join(cur, p)
		typ, link, ok, err := r.fs.Stat(r.ctx, next)
		if err != nil {
			return "", 0, false, fmt.Errorf("reading /%s in the base image: %w", next, err)
		}
		if !ok {
			return path.Join(append([]string{next}, parts[i+1:]...)...), 0, false, nil
		}
		if typ == tar.TypeSymlink {
			if depth >= 40 {
				return "", 0, false, fmt.Errorf("/%s in the base image: too many levels of symbolic links", next)
			}
			target := link
			if !path.IsAbs(target) {
				target = path.Join("/"+cur, target)
			}
			rest := append([]string{strings.Trim(path.Clean(target), "/")}, parts[i+1:]...)
			return r.walk(strings.Trim(path.Clean("/"+path.Join(rest...)), "/"), depth+1)
		}
		if i < len(parts)-1 && typ != tar.TypeDir {
			return path.Join(parts...), 0, false, nil
		}
		cur = next
		if i == len(parts)-1 {
			return cur, typ, true, nil
		}
	}
	return cur, tar.TypeDir, true, nil
}

func (r resolver) isDir(name string) (bool, error) {
	_, typ, ok, err := r.resolve(name)
	return ok && typ == tar.TypeDir, err
}

func (r resolver) isFile(name string) (bool, error) {
	_, typ, ok, err := r.resolve(name)
	return ok && (typ == tar.TypeReg || typ == tar.TypeLink), err
}

func (r resolver) readDir(dir string) ([]string, error) {
	real, typ, ok, err := r.resolve(dir)
	if err != nil || !ok || typ != tar.TypeDir {
		return nil, err
	}
	names, err := r.fs.ReadDir(r.ctx, real)
	if err != nil {
		return nil, fmt.Errorf("listing /%s in the base image: %w", real, err)
	}
	sort.Strings(names)
	return names, nil
}

func (r resolver) readFile(name string) ([]byte, bool, error) {
	real, typ, ok, err := r.resolve(name)
	if err != nil || !ok || typ != tar.TypeReg {
		return nil, false, err
	}
	data, ok, err := r.fs.ReadFile(r.ctx, real)
	if err != nil {
		return nil, false, fmt.Errorf("reading /%s in the base image: %w", real, err)
	}
	return data, ok, nil
}

var (
	pythonDirRE = regexp.MustCompile(`^python(\d+)\.(\d+)$`)
	pythonInRE  = regexp.MustCompile(`(?:^|/)python(\d+)\.(\d+)(?:/|$)`)
	versionRE   = regexp.MustCompile(`^(\d+)\.(\d+)(?:\.(\d+))?`)
	venvSiteRE  = regexp.MustCompile(`^(/.*)/lib/python\d+\.\d+/(?:site|dist)-packages$`)
	libcSoRE    = regexp.MustCompile(`^libc-(\d+)\.(\d+)\.so$`)
)

// envPythonVersion reads PYTHON_VERSION=3.13.1 from an image config's Env.
func envPythonVersion(env []string) (Version, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		v, ok := strings.CutPrefix(env[i], "PYTHON_VERSION=")
		if !ok {
			continue
		}
		if m := versionRE.FindStringSubmatch(v); m != nil {
			major, _ := strconv.Atoi(m[1])
			minor, _ := strconv.Atoi(m[2])
			micro, _ := strconv.Atoi(m[3])
			return Version{major, minor, micro}, true
		}
	}
	return Version{}, false
}

// DetectTarget finds the Python of one platform of a base image.
//
//   - override (a target: setting) is the site directory to install into;
//     the Python version comes from a pythonX.Y in its path, else from
//     PYTHON_VERSION in env. A venv's site dir (<venv>/lib/pythonX.Y/
//     site-packages) has scripts in <venv>/bin and prefix <venv>; any other
//     directory gets <dir>/bin and prefix <dir>, as pip --target does.
//   - official python images: /usr/local/lib/pythonX.Y/site-packages with
//     /usr/local/bin/python3 (else pythonX.Y); PYTHON_VERSION picks X.Y when
//     there are several and must agree with the one found.
//   - a distribution's python3: /usr/lib/python3.Y with /usr/bin/python3
//     (its symlink target picks Y when there are several). On a Debian-family
//     base (dpkg, or /usr/lib/python3/dist-packages) wheels go into
//     /usr/local/lib/python3.Y/dist-packages, which Debian's sys.path has,
//     scripts into /usr/local/bin; elsewhere (Alpine's apk python3) into
//     /usr/lib/python3.Y/site-packages and /usr/bin.
//
// The micro version comes from PYTHON_VERSION, else from the python3.Y
// package (dpkg python3.Y-minimal, apk python3), else it is 0.
//
// The C library is musl when /lib/ld-musl-*.so.1 exists (version from the
// musl package in /lib/apk/db/installed, else 1.2), else glibc from the
// libc6 package in /var/lib/dpkg/status (or status.d/, as distroless has),
// else from the libc-X.Y.so target of lib/<triplet>/libc.so.6.
func DetectTarget(ctx context.Context, fsys BaseFS, env []string, os, arch, variant, override string) (Target, error) {
	t := Target{OS: os, Arch: arch, Variant: variant}
	if os != "linux" {
		return Target{}, fmt.Errorf("%s: Python wheels can only be installed for linux platforms", t.Platform())
	}
	if _, err := t.Machine(); err != nil {
		return Target{}, err
	}
	r := resolver{ctx: ctx, fs: fsys}
	libc, err := detectLibc(r, t)
	if err != nil {
		return Target{}, err
	}
	t.Libc = libc
	envVer, hasEnv := envPythonVersion(env)

	switch {
	case override != "":
		err = detectOverride(r, &t, override, envVer, hasEnv)
	default:
		var found bool
		found, err = detectOfficial(r, &t, envVer, hasEnv)
		if err == nil && !found {
			found, err = detectSystem(r, &t, envVer, hasEnv)
		}
		if err == nil && !found {
			err = fmt.Errorf("%s: no Python in the base image (looked for /usr/local/lib/pythonX.Y/site-packages with /usr/local/bin/python3, and /usr/lib/python3.Y with /usr/bin/python3); set target: to its site-packages directory", t.Platform())
		}
	}
	if err != nil {
		return Target{}, err
	}
	if t.Python.Micro == 0 && hasEnv && envVer.Major == t.Python.Major && envVer.Minor == t.Python.Minor {
		t.Python.Micro = envVer.Micro
	}
	for _, d := range []string{t.SiteDir, t.ScriptsDir} {
		if err := addNewDirs(r, &t, d); err != nil {
			return Target{}, err
		}
	}
	return t, nil
}

// addNewDirs records the directories of dir (and its parents) that the base
// lacks.
func addNewDirs(r resolver, t *Target, dir string) error {
	var missing []string
	for d := dir; d != "/"; d = path.Dir(d) {
		ok, err := r.isDir(d)
		if err != nil {
			return err
		}
		if ok {
			break
		}
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if !contains(t.NewDirs, missing[i]) {
			t.NewDirs = append(t.NewDirs, missing[i])
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func detectOverride(r resolver, t *Target, override string, envVer Version, hasEnv bool) error {
	if !path.IsAbs(override) {
		return fmt.Errorf("%s: target: %q is not an absolute path", t.Platform(), override)
	}
	site := path.Clean(override)
	if m := pythonInRE.FindStringSubmatch(site); m != nil {
		major, _ := strconv.Atoi(m[1])
		minor, _ := strconv.Atoi(m[2])
		t.Python = Version{Major: major, Minor: minor}
	} else if hasEnv {
		t.Python = Version{Major: envVer.Major, Minor: envVer.Minor}
	} else {
		return fmt.Errorf("%s: target: %s does not name a pythonX.Y directory and the image sets no PYTHON_VERSION; use a site dir such as /usr/local/lib/python3.13/site-packages", t.Platform(), site)
	}
	t.SiteDir = site
	var candidates []string
	if m := venvSiteRE.FindStringSubmatch(site); m != nil {
		t.Prefix = m[1]
		t.ScriptsDir = m[1] + "/bin"
		candidates = append(candidates, t.ScriptsDir+"/python3", t.ScriptsDir+"/python")
	} else {
		t.Prefix = site
		t.ScriptsDir = site + "/bin"
	}
	xy := "python" + t.Python.String()
	candidates = append(candidates, "/usr/local/bin/python3", "/usr/local/bin/"+xy, "/usr/bin/python3", "/usr/bin/"+xy)
	for _, c := range candidates {
		ok, err := r.isFile(c)
		if err != nil {
			return err
		}
		if ok {
			t.Interpreter = c
			return nil
		}
	}
	return fmt.Errorf("%s: no Python interpreter in the base image for target: %s (looked for %s)", t.Platform(), site, strings.Join(candidates, ", "))
}

// pythonDirs lists the pythonX.Y directories in dir that have sub.
func pythonDirs(r resolver, dir, sub string) ([]Version, error) {
	names, err := r.readDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Version
	for _, n := range names {
		m := pythonDirRE.FindStringSubmatch(n)
		if m == nil {
			continue
		}
		ok, err := r.isDir(path.Join(dir, n, sub))
		if err != nil {
			return nil, err
		}
		if ok {
			major, _ := strconv.Atoi(m[1])
			minor, _ := strconv.Atoi(m[2])
			out = append(out, Version{Major: major, Minor: minor})
		}
	}
	return out, nil
}

// choose picks the version among found that PYTHON_VERSION names, or the
// only one.
func choose(t *Target, where string, found []Version, envVer Version, hasEnv bool) (Version, error) {
	if hasEnv {
		for _, v := range found {
			if v.Major == envVer.Major && v.Minor == envVer.Minor {
				return v, nil
			}
		}
		return Version{}, fmt.Errorf("%s: the image sets PYTHON_VERSION=%s but %s has only %s; set target: to the site-packages directory to use", t.Platform(), envVer.Full(), where, versionList(found))
	}
	if len(found) > 1 {
		return Version{}, fmt.Errorf("%s: %s has several Pythons (%s) and the image sets no PYTHON_VERSION; set target: to the site-packages directory to use", t.Platform(), where, versionList(found))
	}
	return found[0], nil
}

func versionList(vs []Version) string {
	var s []string
	for _, v := range vs {
		s = append(s, v.String())
	}
	return strings.Join(s, ", ")
}

func detectOfficial(r resolver, t *Target, envVer Version, hasEnv bool) (bool, error) {
	found, err := pythonDirs(r, "usr/local/lib", "site-packages")
	if err != nil || len(found) == 0 {
		return false, err
	}
	v, err := choose(t, "/usr/local/lib", found, envVer, hasEnv)
	if err != nil {
		return false, err
	}
	interp := ""
	for _, c := range []string{"/usr/local/bin/python3", "/usr/local/bin/python" + v.String()} {
		ok, err := r.isFile(c)
		if err != nil {
			return false, err
		}
		if ok {
			interp = c
			break
		}
	}
	if interp == "" {
		return false, fmt.Errorf("%s: the base image has /usr/local/lib/python%s/site-packages but no /usr/local/bin/python3 or /usr/local/bin/python%s; set target: to the site-packages directory", t.Platform(), v, v)
	}
	t.Python = v
	t.SiteDir = "/usr/local/lib/python" + v.String() + "/site-packages"
	t.ScriptsDir = "/usr/local/bin"
	t.Interpreter = interp
	t.Prefix = "/usr/local"
	return true, nil
}

func detectSystem(r resolver, t *Target, envVer Version, hasEnv bool) (bool, error) {
	ok, err := r.isFile("usr/bin/python3")
	if err != nil || !ok {
		return false, err
	}
	found, err := pythonDirs(r, "usr/lib", ".")
	if err != nil || len(found) == 0 {
		return false, err
	}
	var v Version
	if len(found) > 1 && !hasEnv {
		// /usr/bin/python3 -> python3.11 tells which one is the default
		real, _, _, err := r.resolve("usr/bin/python3")
		if err != nil {
			return false, err
		}
		if m := pythonDirRE.FindStringSubmatch(path.Base(real)); m != nil {
			major, _ := strconv.Atoi(m[1])
			minor, _ := strconv.Atoi(m[2])
			envVer, hasEnv = Version{Major: major, Minor: minor}, true
		}
	}
	if v, err = choose(t, "/usr/lib", found, envVer, hasEnv); err != nil {
		return false, err
	}
	// Debian's python3 (and distroless's) reads /usr/local/lib/python3.Y/
	// dist-packages, not site-packages
	debian := false
	for _, p := range []struct {
		name string
		dir  bool
	}{{"usr/lib/python3/dist-packages", true}, {"var/lib/dpkg/status", false}, {"var/lib/dpkg/status.d", true}} {
		check := r.isFile
		if p.dir {
			check = r.isDir
		}
		ok, err := check(p.name)
		if err != nil {
			return false, err
		}
		if ok {
			debian = true
			break
		}
	}
	t.Python = v
	t.Interpreter = "/usr/bin/python3"
	if debian {
		t.SiteDir = "/usr/local/lib/python" + v.String() + "/dist-packages"
		t.ScriptsDir = "/usr/local/bin"
		t.Prefix = "/usr/local"
	} else {
		t.SiteDir = "/usr/lib/python" + v.String() + "/site-packages"
		t.ScriptsDir = "/usr/bin"
		t.Prefix = "/usr"
	}
	t.Python.Micro, err = packageMicro(r, v)
	return true, err
}

// packageMicro reads the micro version of the distribution's python3.Y
// package (dpkg python3.Y-minimal, apk python3), 0 if unknown.
func packageMicro(r resolver, v Version) (int, error) {
	want := v.String() + "."
	if st, ok, err := r.readFile("var/lib/dpkg/status"); err != nil {
		return 0, err
	} else if ok {
		if ver := controlField(st, "python"+v.String()+"-minimal", "Version"); strings.HasPrefix(ver, want) {
			return leadingInt(ver[len(want):]), nil
		}
	}
	if db, ok, err := r.readFile("lib/apk/db/installed"); err != nil {
		return 0, err
	} else if ok {
		if ver := apkVersion(db, "python3"); strings.HasPrefix(ver, want) {
			return leadingInt(ver[len(want):]), nil
		}
	}
	return 0, nil
}

func leadingInt(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func detectLibc(r resolver, t Target) (Libc, error) {
	names, err := r.readDir("lib")
	if err != nil {
		return Libc{}, err
	}
	for _, n := range names {
		if strings.HasPrefix(n, "ld-musl-") && strings.HasSuffix(n, ".so.1") {
			l := Libc{Kind: Musl, Major: 1, Minor: 2}
			db, ok, err := r.readFile("lib/apk/db/installed")
			if err != nil {
				return Libc{}, err
			}
			if ok {
				if m := versionRE.FindStringSubmatch(apkVersion(db, "musl")); m != nil {
					l.Major, _ = strconv.Atoi(m[1])
					l.Minor, _ = strconv.Atoi(m[2])
				}
			}
			return l, nil
		}
	}

	var looked []string
	if st, ok, err := r.readFile("var/lib/dpkg/status"); err != nil {
		return Libc{}, err
	} else if ok {
		if l, ok := glibcFromDpkg(controlField(st, "libc6", "Version")); ok {
			return l, nil
		}
	}
	looked = append(looked, "libc6 in /var/lib/dpkg/status")
	if names, err := r.readDir("var/lib/dpkg/status.d"); err != nil {
		return Libc{}, err
	} else {
		for _, n := range names {
			if n != "libc6" && !strings.HasPrefix(n, "libc6_") && !strings.HasPrefix(n, "libc6.") {
				continue
			}
			st, _, err := r.readFile("var/lib/dpkg/status.d/" + n)
			if err != nil {
				return Libc{}, err
			}
			if l, ok := glibcFromDpkg(controlField(st, "libc6", "Version")); ok {
				return l, nil
			}
		}
	}
	if triplet := debianTriplet(t.Arch, t.Variant); triplet != "" {
		for _, dir := range []string{"lib/" + triplet, "usr/lib/" + triplet} {
			typ, link, ok, err := r.fs.Stat(r.ctx, mustResolveDir(r, dir)+"/libc.so.6")
			if err != nil {
				return Libc{}, fmt.Errorf("reading /%s/libc.so.6 in the base image: %w", dir, err)
			}
			if ok && typ == tar.TypeSymlink {
				if m := libcSoRE.FindStringSubmatch(path.Base(link)); m != nil {
					major, _ := strconv.Atoi(m[1])
					minor, _ := strconv.Atoi(m[2])
					return Libc{Kind: Glibc, Major: major, Minor: minor}, nil
				}
			}
		}
		looked = append(looked, "libc-X.Y.so symlink at /lib/"+triplet+"/libc.so.6")
	}
	return Libc{}, fmt.Errorf("%s: cannot tell the base image's C library: no /lib/ld-musl-*.so.1, no %s", t.Platform(), strings.Join(looked, ", no "))
}

// mustResolveDir resolves dir's symlinks, or returns it as it is.
func mustResolveDir(r resolver, dir string) string {
	real, _, ok, err := r.resolve(dir)
	if err != nil || !ok {
		return dir
	}
	return real
}

func glibcFromDpkg(version string) (Libc, bool) {
	if i := strings.IndexByte(version, ':'); i >= 0 { // epoch
		version = version[i+1:]
	}
	m := versionRE.FindStringSubmatch(version)
	if m == nil {
		return Libc{}, false
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	return Libc{Kind: Glibc, Major: major, Minor: minor}, true
}

// controlField returns field of the installed package pkg in a dpkg status
// file (paragraphs of "Field: value" lines).
func controlField(status []byte, pkg, field string) string {
	for _, para := range bytes.Split(status, []byte("\n\n")) {
		var name, value, state string
		sc := bufio.NewScanner(bytes.NewReader(para))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if !ok || strings.HasPrefix(k, " ") {
				continue
			}
			v = strings.TrimSpace(v)
			switch k {
			case "Package":
				name = v
			case "Status":
				state = v
			case field:
				value = v
			}
		}
		if name == pkg && (state == "" || strings.HasSuffix(state, " installed")) {
			return value
		}
	}
	return ""
}

// apkVersion returns the V: of package P: in an apk installed database.
func apkVersion(db []byte, pkg string) string {
	for _, para := range bytes.Split(db, []byte("\n\n")) {
		var name, version string
		for _, line := range strings.Split(string(para), "\n") {
			switch {
			case strings.HasPrefix(line, "P:"):
				name = line[2:]
			case strings.HasPrefix(line, "V:"):
				version = line[2:]
			}
		}
		if name == pkg {
			return version
		}
	}
	return ""
}
