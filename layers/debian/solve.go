package debian

import (
	"fmt"
	"maps"
	"sort"
	"strings"
)

// Resolve picks the packages to install for reqs on u: each request and,
// recursively, what its Pre-Depends and Depends need (Recommends and
// Suggests are not followed). A dependency the base's installed packages
// meet is not installed again; one the base has at a version that does not
// meet it is an error, as is a package asked for that the base has at
// another version. Among alternatives the first one the base or the
// chosen packages meet wins, else the first the archive has (its newest
// version that fits; for a virtual package, the first provider by name)
// whose own dependencies can be met, else the next.
// Errors name the chain of dependencies that led to the package. The
// result is sorted by name; packages the base has are left out.
func (u *Universe) Resolve(reqs []Request) ([]*Package, error) {
	s := &solver{u: u, chosen: map[string]*Package{}}
	for _, r := range reqs {
		if err := s.request(r); err != nil {
			return nil, err
		}
	}
	out := make([]*Package, 0, len(s.chosen))
	for _, p := range s.chosen {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, s.conflicts(out)
}

type solver struct {
	u      *Universe
	chosen map[string]*Package
	steps  int
}

func (s *solver) request(r Request) error {
	rel := Relation{Name: r.Name}
	if r.Version != "" {
		v, err := ParseVersion(r.Version)
		if err != nil {
			return err
		}
		rel.Op, rel.Ver = "=", v
	}
	if have := s.u.Installed(r.Name); have != nil {
		if rel.Satisfies(have.Version) {
			return nil
		}
		return fmt.Errorf("%s: the base has %s %s installed; ask for that version, or use a base that has %s", r, r.Name, have.Version, r.Version)
	}
	if p := s.u.satisfiedBy(rel, s.u.available[r.Name], nil); p != nil {
		return s.add(p, nil)
	}
	if len(s.u.available[r.Name]) > 0 {
		return fmt.Errorf("%s: the archive has %s only at %s", r, r.Name, versions(s.u.available[r.Name]))
	}
	if provs := s.u.aprovides[r.Name]; len(provs) > 0 {
		return fmt.Errorf("%s is a virtual package; ask for one of the packages that provide it: %s", r.Name, providerNames(provs))
	}
	return fmt.Errorf("%s: no such package for %s in the archive", r.Name, s.u.Arch)
}

// add chooses p (reached through chain) and what it depends on.
func (s *solver) add(p *Package, chain []string) error {
	if have, ok := s.chosen[p.Name]; ok {
		if have == p || have.Version == p.Version {
			return nil
		}
		return fmt.Errorf("%s needs %s %s, but %s is already chosen", strings.Join(append(chain, p.Name), " → "), p.Name, p.Version, have.ID())
	}
	s.chosen[p.Name] = p
	chain = append(chain[:len(chain):len(chain)], p.Name+" "+p.Version.String())
	for _, c := range append(append([]Clause{}, p.PreDepends...), p.Depends...) {
		if err := s.satisfy(c, chain); err != nil {
			return err
		}
	}
	return nil
}

// satisfy meets one dependency clause: by what the base or the chosen
// packages have, else by the first alternative the archive has.
func (s *solver) satisfy(c Clause, chain []string) error {
	for _, r := range c {
		if s.u.satisfiedBy(r, s.u.installed[r.Name], s.u.iprovides[r.Name]) != nil || s.chosenMeets(r) {
			return nil
		}
	}
	var why []string
	for _, r := range c {
		if have := s.u.Installed(r.Name); have != nil {
			// never replace a package of the base
			why = append(why, fmt.Sprintf("the base has %s %s", r.Name, have.Version))
			continue
		}
		if have, ok := s.chosen[r.Name]; ok {
			why = append(why, fmt.Sprintf("%s is already chosen", have.ID()))
			continue
		}
		if p := s.u.satisfiedBy(r, s.u.available[r.Name], s.providers(r.Name)); p != nil {
			err := s.try(p, chain)
			if err == nil || len(c) == 1 {
				return err
			}
			why = append(why, err.Error())
			continue
		}
		why = append(why, s.missing(r))
	}
	return fmt.Errorf("%s needs %s: %s", strings.Join(chain, " → "), c, strings.Join(why, "; "))
}

// maxSteps bounds the packages one resolution may try (alternatives that
// fail are undone and the next one tried).
const maxSteps = 100000

// try adds p and what it needs, or, if that fails, leaves the choice as
// it was so that the next alternative can be tried.
func (s *solver) try(p *Package, chain []string) error {
	if s.steps++; s.steps > maxSteps {
		return fmt.Errorf("%s: more than %d packages tried; give the alternatives you want explicitly", strings.Join(chain, " → "), maxSteps)
	}
	saved := maps.Clone(s.chosen)
	if err := s.add(p, chain); err != nil {
		s.chosen = saved
		return err
	}
	return nil
}

// providers are the archive's providers of name, by package name (the
// choice among several is then the same on every run).
func (s *solver) providers(name string) []provider {
	ps := append([]provider{}, s.u.aprovides[name]...)
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].pkg.Name < ps[j].pkg.Name })
	return ps
}

func (s *solver) chosenMeets(r Relation) bool {
	if p, ok := s.chosen[r.Name]; ok && s.u.archOK(p, r) && r.Satisfies(p.Version) {
		return true
	}
	for _, p := range s.chosen {
		for _, c := range p.Provides {
			for _, pr := range c {
				if pr.Name == r.Name && s.u.archOK(p, r) && (r.Op == "" || pr.Op == "=" && r.Satisfies(pr.Ver)) {
					return true
				}
			}
		}
	}
	return false
}

// missing says why the archive cannot meet r.
func (s *solver) missing(r Relation) string {
	if ps := s.u.available[r.Name]; len(ps) > 0 {
		return fmt.Sprintf("the archive has %s %s", r.Name, versions(ps))
	}
	return fmt.Sprintf("the archive has no %s for %s", r.Name, s.u.Arch)
}

// conflicts refuses a chosen package that Conflicts with or Breaks an
// installed or chosen one.
func (s *solver) conflicts(chosen []*Package) error {
	for _, p := range chosen {
		for _, c := range append(append([]Clause{}, p.Conflicts...), p.Breaks...) {
			for _, r := range c {
				if r.Name == p.Name {
					continue
				}
				if q := s.u.Installed(r.Name); q != nil && r.Satisfies(q.Version) {
					return fmt.Errorf("%s conflicts with or breaks %s, which the base has (%s)", p.ID(), q.ID(), r)
				}
				if q, ok := s.chosen[r.Name]; ok && r.Satisfies(q.Version) {
					return fmt.Errorf("%s conflicts with or breaks %s, which is also to be installed (%s)", p.ID(), q.ID(), r)
				}
			}
		}
	}
	return nil
}

func versions(ps []*Package) string {
	var vs []string
	for _, p := range ps {
		vs = append(vs, p.Version.String())
	}
	return strings.Join(vs, ", ")
}

func providerNames(provs []provider) string {
	seen := map[string]bool{}
	var names []string
	for _, p := range provs {
		if !seen[p.pkg.Name] {
			seen[p.pkg.Name] = true
			names = append(names, p.pkg.Name)
		}
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
