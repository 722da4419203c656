package debian

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
)

const (
	statusFile = "var/lib/dpkg/status"
	statusDir  = "var/lib/dpkg/status.d"
	infoDir    = "var/lib/dpkg/info"
)

// BaseStatus is the base's dpkg database: the status file (or the
// status.d/ stanzas distroless images have instead) and what it lists.
type BaseStatus struct {
	Text     []byte // the status file as the base has it
	HasFile  bool   // the base has var/lib/dpkg/status
	Packages []*Package
}

// ReadBaseStatus reads var/lib/dpkg/status and every file of status.d/.
func ReadBaseStatus(ctx context.Context, base BaseFS) (*BaseStatus, error) {
	bs := &BaseStatus{}
	text, ok, err := base.ReadFile(ctx, statusFile)
	if err != nil {
		return nil, fmt.Errorf("reading /%s in the base image: %w", statusFile, err)
	}
	bs.Text, bs.HasFile = text, ok
	if err := bs.add(text, "/"+statusFile); err != nil {
		return nil, err
	}
	names, err := readDir(ctx, base, statusDir)
	if err != nil {
		return nil, fmt.Errorf("listing /%s in the base image: %w", statusDir, err)
	}
	sort.Strings(names)
	for _, n := range names {
		if strings.HasSuffix(n, ".md5sums") {
			continue
		}
		b, ok, err := base.ReadFile(ctx, path.Join(statusDir, n))
		if err != nil || !ok {
			continue // a directory or an unreadable entry is no stanza
		}
		if err := bs.add(b, "/"+path.Join(statusDir, n)); err != nil {
			return nil, err
		}
	}
	return bs, nil
}

func (bs *BaseStatus) add(text []byte, where string) error {
	paras, err := ParseControl(bytes.NewReader(text), "base image "+where, false)
	if err != nil {
		return err
	}
	pkgs, err := ParsePackages(paras, "base image "+where, false)
	if err != nil {
		return err
	}
	bs.Packages = append(bs.Packages, pkgs...)
	return nil
}

// infoName is the stem of a package's files in var/lib/dpkg/info: the
// name, with ":arch" for Multi-Arch: same packages, as dpkg names them.
func infoName(p *Package) string {
	if p.MultiArch == "same" {
		return p.Name + ":" + p.Arch
	}
	return p.Name
}

// installedStanza is the dpkg database stanza of a package unpacked from
// its control file: Status after Package, Conffiles (with their md5sums)
// before Description.
func installedStanza(control []byte, conffiles, md5sums []byte, where string) (*Paragraph, error) {
	paras, err := ParseControl(bytes.NewReader(control), where, false)
	if err != nil {
		return nil, err
	}
	if len(paras) != 1 {
		return nil, fmt.Errorf("%s: %d paragraphs in the control file, want 1", where, len(paras))
	}
	p := &paras[0]
	p.Set("Status", "install ok installed", "Package")
	sums := map[string]string{}
	for _, l := range strings.Split(string(md5sums), "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			sums["/"+strings.TrimPrefix(f[1], "/")] = f[0]
		}
	}
	var cf strings.Builder
	for _, l := range strings.Split(string(conffiles), "\n") {
		name := strings.TrimSpace(l)
		if name == "" {
			continue
		}
		sum := sums[name]
		if sum == "" {
			sum = "newconffile"
		}
		cf.WriteString("\n " + name + " " + sum)
	}
	if cf.Len() > 0 {
		p.Insert("Conffiles", cf.String(), "Description")
	}
	return p, nil
}

// fileList is a package's info/NAME.list: "/." and every path of its data
// archive, as the package names them (dpkg lists /bin/ps on a merged-/usr
// system too).
func fileList(members []debMember) []byte {
	var b bytes.Buffer
	for _, m := range members {
		b.WriteString("/" + m.Name)
		if m.Name == "" {
			b.WriteString(".")
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// mergedStatus is the base's status file with the new stanzas after it.
func mergedStatus(base []byte, stanzas []*Paragraph) []byte {
	var b bytes.Buffer
	b.Write(bytes.TrimRight(base, "\n"))
	if b.Len() > 0 {
		b.WriteString("\n\n")
	}
	for _, p := range stanzas {
		p.WriteTo(&b)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// writeStatus adds the new stanzas to the dpkg database: to the status
// file (the base's, merged), or, for a base that keeps only status.d/
// (distroless), as status.d/NAME files.
func writeStatus(l *layout, status *BaseStatus, stanzas []*Paragraph) error {
	if !status.HasFile && len(status.Packages) > 0 {
		for _, p := range stanzas {
			var b bytes.Buffer
			p.WriteTo(&b)
			if err := l.file(path.Join(statusDir, p.Get("Package")), b.Bytes(), 0o644); err != nil {
				return err
			}
		}
		return nil
	}
	return l.file(statusFile, mergedStatus(status.Text, stanzas), 0o644)
}

// scripts are the control members dpkg runs.
var scripts = map[string]bool{"preinst": true, "postinst": true, "prerm": true, "postrm": true, "config": true}

// infoFiles writes a package's var/lib/dpkg/info files: NAME.list and
// every control member but control itself (md5sums, conffiles, scripts,
// triggers, shlibs, ...), as dpkg keeps them.
func infoFiles(l *layout, p *Package, m *debManifest) error {
	stem := path.Join(infoDir, infoName(p))
	if err := l.file(stem+".list", fileList(m.Members), 0o644); err != nil {
		return err
	}
	names := make([]string, 0, len(m.Control))
	for n := range m.Control {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if n == "control" {
			continue
		}
		mode := int64(0o644)
		if scripts[n] {
			mode = 0o755
		}
		if err := l.file(stem+"."+n, m.Control[n], mode); err != nil {
			return err
		}
	}
	return nil
}

// scriptWarnings names what dpkg would have run for the package and
// gantry did not: its preinst and postinst, the triggers it activates
// (ldconfig's is not needed: the libraries are in the default paths), and
// library paths it adds to /etc/ld.so.conf.d, for which ld.so.cache is
// not rebuilt.
func scriptWarnings(pkg string, m *debManifest) []string {
	var out []string
	for _, s := range []string{"preinst", "postinst"} {
		if _, ok := m.Control[s]; ok {
			out = append(out, fmt.Sprintf("%s: its %s script was not run (gantry runs no maintainer scripts)", pkg, s))
		}
	}
	for _, l := range strings.Split(string(m.Control["triggers"]), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && strings.HasPrefix(f[0], "activate") && f[1] != "ldconfig" {
			out = append(out, fmt.Sprintf("%s: trigger %s was not run", pkg, f[1]))
		}
	}
	for _, mem := range m.Members {
		if strings.HasPrefix(mem.Name, "etc/ld.so.conf.d/") && mem.Type == tar.TypeReg {
			out = append(out, fmt.Sprintf("%s: /%s adds library paths, but ld.so.cache is not rebuilt", pkg, mem.Name))
		}
	}
	return out
}
