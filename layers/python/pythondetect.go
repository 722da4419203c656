package python

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
)

var (
	pythonDirRE = regexp.MustCompile(`^python(\d+)\.(\d+)$`)
	pythonInRE  = regexp.MustCompile(`(?:^|/)python(\d+)\.(\d+)(?:/|$)`)
	versionRE   = regexp.MustCompile(`^(\d+)\.(\d+)(?:\.(\d+))?`)
	venvSiteRE  = regexp.MustCompile(`^(/.*)/lib/python\d+\.\d+/(?:site|dist)-packages$`)
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
	if len(found) > 1 && !hasEnv {
		def, ok, err := defaultPython3(r)
		if err != nil {
			return false, err
		}
		if ok {
			envVer, hasEnv = def, true
		}
	}
	v, err := choose(t, "/usr/lib", found, envVer, hasEnv)
	if err != nil {
		return false, err
	}
	debian, err := isDebianFamily(r)
	if err != nil {
		return false, err
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

// defaultPython3 reads the version /usr/bin/python3 links to
// (python3.11), which tells the default among several.
func defaultPython3(r resolver) (Version, bool, error) {
	real, _, _, err := r.resolve("usr/bin/python3")
	if err != nil {
		return Version{}, false, err
	}
	if m := pythonDirRE.FindStringSubmatch(path.Base(real)); m != nil {
		major, _ := strconv.Atoi(m[1])
		minor, _ := strconv.Atoi(m[2])
		return Version{Major: major, Minor: minor}, true, nil
	}
	return Version{}, false, nil
}

// isDebianFamily reports whether the base is Debian's (or distroless's),
// whose python3 reads /usr/local/lib/python3.Y/dist-packages, not
// site-packages.
func isDebianFamily(r resolver) (bool, error) {
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
			return true, nil
		}
	}
	return false, nil
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
