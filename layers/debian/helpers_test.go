package debian

import (
	"archive/tar"
	"context"
	"path"
	"sort"
	"strings"
)

// mapFS is a base image filesystem in memory: name → entry.
type mapFS map[string]mapEntry

type mapEntry struct {
	typ  byte
	link string
	data string
}

func (m mapFS) Stat(_ context.Context, name string) (byte, string, bool, error) {
	e, ok := m[name]
	return e.typ, e.link, ok, nil
}

func (m mapFS) ReadFile(_ context.Context, name string) ([]byte, bool, error) {
	for hops := 0; hops < 10; hops++ {
		e, ok := m[name]
		if !ok {
			// a parent may be a symlink
			for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
				if d, ok := m[dir]; ok && d.typ == tar.TypeSymlink {
					name = path.Join(path.Dir(dir), d.link, strings.TrimPrefix(name, dir+"/"))
					break
				}
			}
			if e, ok = m[name]; !ok {
				return nil, false, nil
			}
		}
		if e.typ != tar.TypeSymlink {
			return []byte(e.data), e.typ == tar.TypeReg, nil
		}
		name = path.Join(path.Dir(name), e.link)
	}
	return nil, false, nil
}

func (m mapFS) ReadDir(_ context.Context, dir string) ([]string, error) {
	var out []string
	for n := range m {
		if path.Dir(n) == dir {
			out = append(out, path.Base(n))
		}
	}
	sort.Strings(out)
	return out, nil
}

// bookwormBase is a merged-/usr Debian base like debian:bookworm-slim:
// /bin, /lib, /sbin symlinks into /usr, and a dpkg database with a few
// packages.
func bookwormBase(arch string) mapFS {
	m := mapFS{}
	for _, d := range []string{"etc", "usr", "usr/bin", "usr/lib", "usr/sbin", "usr/share", "usr/share/doc", "var", "var/lib", "var/lib/dpkg", "var/lib/dpkg/info", "etc/apt"} {
		m[d] = mapEntry{typ: tar.TypeDir}
	}
	for _, l := range []string{"bin", "lib", "sbin"} {
		m[l] = mapEntry{typ: tar.TypeSymlink, link: "usr/" + l}
	}
	m["var/lib/dpkg/status"] = mapEntry{typ: tar.TypeReg, data: baseStatus(arch)}
	return m
}

func baseStatus(arch string) string {
	return "Package: base-files\nStatus: install ok installed\nPriority: required\nArchitecture: " + arch + "\nVersion: 12.4+deb12u8\nDescription: base\n\n" +
		"Package: dash\nEssential: yes\nStatus: install ok installed\nArchitecture: " + arch + "\nMulti-Arch: foreign\nVersion: 0.5.12-2\nDescription: dash\n\n" +
		"Package: libc6\nStatus: install ok installed\nArchitecture: " + arch + "\nMulti-Arch: same\nVersion: 2.36-9+deb12u9\nDescription: libc\n\n"
}
