package debian

import (
	"fmt"
	"strconv"
	"strings"
)

// Package is one binary package: a Packages index stanza, a stanza of the
// base's dpkg database, or a .deb's control file.
type Package struct {
	Name      string
	Version   Version
	Arch      string
	MultiArch string // "", "same", "foreign", "allowed"
	Essential bool
	Status    string // the dpkg database's Status (installed packages)

	PreDepends, Depends, Provides, Conflicts, Breaks []Clause

	// From the archive index: the .deb's path below the archive root,
	// size and sha256, and where the index came from.
	Filename string
	Size     int64
	SHA256   string
	Origin   *Archive // nil for installed packages
}

// ID is name:arch=version, how errors and locks name a package.
func (p *Package) ID() string { return p.Name + ":" + p.Arch + "=" + p.Version.String() }

// packageFromParagraph reads the fields resolution needs. index says
// whether the stanza is from a Packages index (which must give Filename,
// Size and SHA256).
func packageFromParagraph(para *Paragraph, where string, index bool) (*Package, error) {
	p := &Package{
		Name: para.Get("Package"), Arch: para.Get("Architecture"), MultiArch: para.Get("Multi-Arch"),
		Essential: para.Get("Essential") == "yes", Status: para.Get("Status"),
	}
	errorf := func(format string, args ...any) error {
		return fmt.Errorf("%s:%d: package %s: %s", where, para.Line, p.Name, fmt.Sprintf(format, args...))
	}
	if !validName(p.Name) {
		return nil, fmt.Errorf("%s:%d: %q is not a package name", where, para.Line, p.Name)
	}
	if p.Arch == "" {
		return nil, errorf("no Architecture")
	}
	v, err := ParseVersion(para.Get("Version"))
	if err != nil {
		return nil, errorf("%v", err)
	}
	p.Version = v
	for _, f := range []struct {
		name string
		dst  *[]Clause
	}{{"Pre-Depends", &p.PreDepends}, {"Depends", &p.Depends}, {"Provides", &p.Provides}, {"Conflicts", &p.Conflicts}, {"Breaks", &p.Breaks}} {
		if *f.dst, err = ParseRelations(para.Get(f.name)); err != nil {
			return nil, errorf("%s: %v", f.name, err)
		}
	}
	if !index {
		return p, nil
	}
	p.Filename, p.SHA256 = para.Get("Filename"), strings.ToLower(para.Get("SHA256"))
	if p.Size, err = strconv.ParseInt(para.Get("Size"), 10, 64); err != nil || p.Size <= 0 {
		return nil, errorf("Size %q is not a size", para.Get("Size"))
	}
	if !isSHA256(p.SHA256) {
		return nil, errorf("SHA256 %q is not a sha256", p.SHA256)
	}
	if p.Filename == "" || strings.HasPrefix(p.Filename, "/") || strings.Contains("/"+p.Filename+"/", "/../") {
		return nil, errorf("Filename %q is not a path below the archive root", p.Filename)
	}
	return p, nil
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) && (s[i] < 'a' || s[i] > 'f') {
			return false
		}
	}
	return true
}

// installed reports whether a dpkg database stanza is an installed package
// (Status "install ok installed", or hold).
func (p *Package) installed() bool {
	f := strings.Fields(p.Status)
	return len(f) == 3 && f[2] == "installed"
}

// ParsePackages reads the stanzas of a Packages index or dpkg database.
func ParsePackages(paras []Paragraph, where string, index bool) ([]*Package, error) {
	out := make([]*Package, 0, len(paras))
	for i := range paras {
		p, err := packageFromParagraph(&paras[i], where, index)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
