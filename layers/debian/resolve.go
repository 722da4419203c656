package debian

import (
	"fmt"
	"slices"
	"strings"
)

// Request is a package asked for: a name, or name=version.
type Request struct {
	Name    string
	Version string // "" for the newest
}

// ParseRequest parses "name" or "name=version".
func ParseRequest(s string) (Request, error) {
	name, ver, _ := strings.Cut(s, "=")
	if !validName(name) {
		return Request{}, fmt.Errorf("%q is not a Debian package name (lower case letters, digits, + - .)", name)
	}
	if ver != "" {
		if _, err := ParseVersion(ver); err != nil {
			return Request{}, err
		}
	} else if strings.Contains(s, "=") {
		return Request{}, fmt.Errorf("%q: no version after =", s)
	}
	return Request{Name: name, Version: ver}, nil
}

func (r Request) String() string {
	if r.Version != "" {
		return r.Name + "=" + r.Version
	}
	return r.Name
}

// Universe is what resolution sees for one architecture: the base's
// installed packages and the archive's.
type Universe struct {
	Arch      string
	installed map[string][]*Package
	available map[string][]*Package
	iprovides map[string][]provider
	aprovides map[string][]provider
}

type provider struct {
	pkg *Package
	rel Relation // the Provides entry (its version, if any)
}

// NewUniverse indexes installed (the base's dpkg database; packages not
// fully installed are left out) and available (the archive's packages of
// arch and "all"; the others are left out) for arch.
func NewUniverse(arch string, installed, available []*Package) *Universe {
	u := &Universe{Arch: arch, installed: map[string][]*Package{}, available: map[string][]*Package{},
		iprovides: map[string][]provider{}, aprovides: map[string][]provider{}}
	for _, p := range installed {
		if p.installed() {
			u.installed[p.Name] = append(u.installed[p.Name], p)
			addProvides(u.iprovides, p)
		}
	}
	for _, p := range available {
		if p.Arch == arch || p.Arch == "all" {
			u.available[p.Name] = append(u.available[p.Name], p)
			addProvides(u.aprovides, p)
		}
	}
	for _, ps := range u.available { // newest first; stable keeps source order
		slices.SortStableFunc(ps, func(a, b *Package) int { return Compare(b.Version, a.Version) })
	}
	return u
}

func addProvides(m map[string][]provider, p *Package) {
	for _, c := range p.Provides {
		for _, r := range c {
			m[r.Name] = append(m[r.Name], provider{p, r})
		}
	}
}

// Installed is the base's installed package name (of arch, all, or
// Multi-Arch: same of arch), if any.
func (u *Universe) Installed(name string) *Package {
	for _, p := range u.installed[name] {
		if p.Arch == u.Arch || p.Arch == "all" {
			return p
		}
	}
	return nil
}

// archOK reports whether p, of its architecture, can satisfy r on u.Arch:
// a native or "all" package always (unless r names another architecture);
// a foreign one if it is Multi-Arch: foreign, or allowed and r says :any.
func (u *Universe) archOK(p *Package, r Relation) bool {
	native := p.Arch == u.Arch || p.Arch == "all"
	switch r.Arch {
	case "", "native":
		return native || p.MultiArch == "foreign"
	case "any":
		return p.MultiArch == "allowed" // dpkg: only an allowed package meets pkg:any
	default:
		return r.Arch == p.Arch || p.Arch == "all" && r.Arch == u.Arch
	}
}

// satisfiedBy is the first package of pkgs (real ones by name, then
// providers) that satisfies r.
func (u *Universe) satisfiedBy(r Relation, pkgs []*Package, provs []provider) *Package {
	for _, p := range pkgs {
		if u.archOK(p, r) && r.Satisfies(p.Version) {
			return p
		}
	}
	for _, pv := range provs {
		if !u.archOK(pv.pkg, r) {
			continue
		}
		// a versioned relation is met only by a versioned Provides
		if r.Op == "" || pv.rel.Op == "=" && r.Satisfies(pv.rel.Ver) {
			return pv.pkg
		}
	}
	return nil
}
