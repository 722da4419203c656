package python

import (
	"context"
	"fmt"
	"path"
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

	if err := detectPython(r, &t, override, envVer, hasEnv); err != nil {
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

// detectPython finds the site directory, scripts directory, interpreter
// and Python version: override's, else an official python image's, else
// the distribution's python3.
func detectPython(r resolver, t *Target, override string, envVer Version, hasEnv bool) error {
	if override != "" {
		return detectOverride(r, t, override, envVer, hasEnv)
	}
	found, err := detectOfficial(r, t, envVer, hasEnv)
	if err == nil && !found {
		found, err = detectSystem(r, t, envVer, hasEnv)
	}
	if err == nil && !found {
		err = fmt.Errorf("%s: no Python in the base image (looked for /usr/local/lib/pythonX.Y/site-packages with /usr/local/bin/python3, and /usr/lib/python3.Y with /usr/bin/python3); set target: to its site-packages directory", t.Platform())
	}
	return err
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
