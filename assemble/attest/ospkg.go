package attest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// FS is the base image's filesystem as the SBOM reads it (layers.BaseFS):
// a missing file or directory is an error wrapping fs.ErrNotExist.
type FS interface {
	ReadFile(ctx context.Context, name string) ([]byte, error)
	ReadDir(ctx context.Context, dir string) ([]string, error)
}

// OSRelease is what /etc/os-release says of the distribution.
type OSRelease struct {
	ID, VersionID, PrettyName string
}

// Distro is the purl distro qualifier: debian-12, alpine-3.20.3.
func (o OSRelease) Distro() string {
	if o.ID == "" || o.VersionID == "" {
		return o.ID
	}
	return o.ID + "-" + o.VersionID
}

// ReadOS reads the base's distribution and its installed packages:
// Debian's dpkg database (/var/lib/dpkg/status, and the status.d
// directory distroless images have) and Alpine's apk database
// (/lib/apk/db/installed, or /usr/lib/apk/db/installed). A base with
// neither has no packages; that is no error.
func ReadOS(ctx context.Context, fsys FS) (OSRelease, []Package, error) {
	osr, err := ReadOSRelease(ctx, fsys)
	if err != nil {
		return osr, nil, err
	}
	var pkgs []Package
	for _, src := range []struct {
		name  string
		parse func([]byte, OSRelease) []Package
	}{
		{"var/lib/dpkg/status", parseDpkg},
		{"lib/apk/db/installed", parseApk},
		{"usr/lib/apk/db/installed", parseApk},
	} {
		b, ok, err := readOptional(ctx, fsys, src.name)
		if err != nil {
			return osr, nil, err
		}
		if ok {
			pkgs = append(pkgs, src.parse(b, osr)...)
		}
	}
	more, err := readStatusD(ctx, fsys, osr)
	if err != nil {
		return osr, nil, err
	}
	pkgs = dedupe(append(pkgs, more...))
	return osr, pkgs, nil
}

func readOptional(ctx context.Context, fsys FS, name string) ([]byte, bool, error) {
	b, err := fsys.ReadFile(ctx, name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("reading the base's /%s for the SBOM: %w", name, err)
	}
	return b, true, nil
}

// ReadOSRelease reads the image's /etc/os-release (or /usr/lib/os-release).
func ReadOSRelease(ctx context.Context, fsys FS) (OSRelease, error) {
	for _, name := range []string{"etc/os-release", "usr/lib/os-release"} {
		b, ok, err := readOptional(ctx, fsys, name)
		if err != nil || !ok {
			if err != nil {
				return OSRelease{}, err
			}
			continue
		}
		var o OSRelease
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
			if !ok {
				continue
			}
			v = strings.Trim(v, `"'`)
			switch k {
			case "ID":
				o.ID = v
			case "VERSION_ID":
				o.VersionID = v
			case "PRETTY_NAME":
				o.PrettyName = v
			}
		}
		return o, nil
	}
	return OSRelease{}, nil
}

// readStatusD reads the one-package files of /var/lib/dpkg/status.d.
func readStatusD(ctx context.Context, fsys FS, osr OSRelease) ([]Package, error) {
	const dir = "var/lib/dpkg/status.d"
	names, err := fsys.ReadDir(ctx, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the base's /%s for the SBOM: %w", dir, err)
	}
	var out []Package
	for _, n := range names {
		if strings.Contains(n, ".") { // NAME.md5sums and the like
			continue
		}
		b, ok, err := readOptional(ctx, fsys, path.Join(dir, n))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, parseDpkg(b, osr)...)
		}
	}
	return out, nil
}

// stanzas splits a deb822 or apk database into its paragraphs of fields;
// continuation lines (deb822's leading space) are dropped, as no field
// read here spans lines.
func stanzas(b []byte) []map[string]string {
	var out []map[string]string
	cur := map[string]string{}
	flush := func() {
		if len(cur) > 0 {
			out = append(out, cur)
			cur = map[string]string{}
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case line[0] == ' ' || line[0] == '\t':
		default:
			if k, v, ok := strings.Cut(line, ":"); ok {
				cur[k] = strings.TrimSpace(v)
			}
		}
	}
	flush()
	return out
}

// database is how one package manager's database names its fields.
type database struct {
	typ, namespace           string // purl type, default namespace
	name, version, arch, lic string // field names
	installed                func(map[string]string) bool
}

var (
	dpkg = database{typ: "deb", namespace: "debian", name: "Package", version: "Version", arch: "Architecture",
		installed: func(st map[string]string) bool {
			status := strings.Fields(st["Status"]) // status.d's files have none
			return len(status) != 3 || status[2] == "installed"
		}}
	apk = database{typ: "apk", namespace: "alpine", name: "P", version: "V", arch: "A", lic: "L",
		installed: func(map[string]string) bool { return true }}
)

func parseDpkg(b []byte, osr OSRelease) []Package { return dpkg.parse(b, osr) }
func parseApk(b []byte, osr OSRelease) []Package  { return apk.parse(b, osr) }

func (db database) parse(b []byte, osr OSRelease) []Package {
	ns := osr.ID
	if ns == "" {
		ns = db.namespace
	}
	var out []Package
	for _, st := range stanzas(b) {
		name, version, arch := st[db.name], st[db.version], st[db.arch]
		if name == "" || version == "" || !db.installed(st) {
			continue
		}
		p := Package{Name: name, Version: version, Arch: arch, PURL: purl(db.typ, ns, name, version, "arch", arch, "distro", osr.Distro())}
		if db.lic != "" {
			p.License = st[db.lic]
		}
		out = append(out, p)
	}
	return out
}

// dedupe sorts packages by name, version and arch and drops repeats (a
// package in both status and status.d).
func dedupe(pkgs []Package) []Package {
	sort.Slice(pkgs, func(i, j int) bool {
		a, b := pkgs[i], pkgs[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		return a.Arch < b.Arch
	})
	out := pkgs[:0]
	for i, p := range pkgs {
		if i > 0 && p.PURL == pkgs[i-1].PURL {
			continue
		}
		out = append(out, p)
	}
	return out
}
