package python

import (
	"archive/tar"
	"bufio"
	"bytes"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
)

var libcSoRE = regexp.MustCompile(`^libc-(\d+)\.(\d+)\.so$`)

// detectLibc tells the base's C library: musl if it has the musl loader,
// else glibc from dpkg's records, else from the libc.so.6 symlink.
func detectLibc(r resolver, t Target) (Libc, error) {
	if l, ok, err := detectMusl(r); err != nil || ok {
		return l, err
	}
	if l, ok, err := dpkgGlibc(r); err != nil || ok {
		return l, err
	}
	looked := []string{"libc6 in /var/lib/dpkg/status"}
	if triplet := debianTriplet(t.Arch, t.Variant); triplet != "" {
		if l, ok, err := symlinkGlibc(r, triplet); err != nil || ok {
			return l, err
		}
		looked = append(looked, "libc-X.Y.so symlink at /lib/"+triplet+"/libc.so.6")
	}
	return Libc{}, fmt.Errorf("%s: cannot tell the base image's C library: no /lib/ld-musl-*.so.1, no %s", t.Platform(), strings.Join(looked, ", no "))
}

// detectMusl finds /lib/ld-musl-*.so.1 and reads the musl version from
// the apk database (1.2 if it does not say).
func detectMusl(r resolver) (Libc, bool, error) {
	names, err := r.readDir("lib")
	if err != nil {
		return Libc{}, false, err
	}
	for _, n := range names {
		if strings.HasPrefix(n, "ld-musl-") && strings.HasSuffix(n, ".so.1") {
			l, err := muslVersion(r)
			if err != nil {
				return Libc{}, false, err
			}
			return l, true, nil
		}
	}
	return Libc{}, false, nil
}

// muslVersion is the version of the apk musl package, 1.2 if unknown.
func muslVersion(r resolver) (Libc, error) {
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

// dpkgGlibc reads the glibc version from the libc6 package in
// /var/lib/dpkg/status, else in a libc6 file of status.d/.
func dpkgGlibc(r resolver) (Libc, bool, error) {
	st, ok, err := r.readFile("var/lib/dpkg/status")
	if err != nil {
		return Libc{}, false, err
	}
	if ok {
		if l, ok := glibcFromDpkg(controlField(st, "libc6", "Version")); ok {
			return l, true, nil
		}
	}
	names, err := r.readDir("var/lib/dpkg/status.d")
	if err != nil {
		return Libc{}, false, err
	}
	for _, n := range names {
		if n != "libc6" && !strings.HasPrefix(n, "libc6_") && !strings.HasPrefix(n, "libc6.") {
			continue
		}
		st, _, err := r.readFile("var/lib/dpkg/status.d/" + n)
		if err != nil {
			return Libc{}, false, err
		}
		if l, ok := glibcFromDpkg(controlField(st, "libc6", "Version")); ok {
			return l, true, nil
		}
	}
	return Libc{}, false, nil
}

// symlinkGlibc reads the glibc version from the libc-X.Y.so target of
// lib/<triplet>/libc.so.6 (or usr/lib/<triplet>/libc.so.6).
func symlinkGlibc(r resolver, triplet string) (Libc, bool, error) {
	for _, dir := range []string{"lib/" + triplet, "usr/lib/" + triplet} {
		typ, link, ok, err := r.fs.Stat(r.ctx, mustResolveDir(r, dir)+"/libc.so.6")
		if err != nil {
			return Libc{}, false, fmt.Errorf("reading /%s/libc.so.6 in the base image: %w", dir, err)
		}
		if !ok || typ != tar.TypeSymlink {
			continue
		}
		if m := libcSoRE.FindStringSubmatch(path.Base(link)); m != nil {
			major, _ := strconv.Atoi(m[1])
			minor, _ := strconv.Atoi(m[2])
			return Libc{Kind: Glibc, Major: major, Minor: minor}, true, nil
		}
	}
	return Libc{}, false, nil
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
