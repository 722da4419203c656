package debian

import (
	"fmt"
	"strings"
)

// Relation is one package a Depends-style field names: name[:arch]
// [(op version)].
type Relation struct {
	Name string
	Arch string // "", "any", "native" or an architecture
	Op   string // "", "<<", "<=", "=", ">=", ">>"
	Ver  Version
}

// String is the relation as Debian writes it.
func (r Relation) String() string {
	s := r.Name
	if r.Arch != "" {
		s += ":" + r.Arch
	}
	if r.Op != "" {
		s += " (" + r.Op + " " + r.Ver.String() + ")"
	}
	return s
}

// Clause is a list of alternatives ("a | b"): any one satisfies it.
type Clause []Relation

func (c Clause) String() string {
	parts := make([]string, len(c))
	for i, r := range c {
		parts[i] = r.String()
	}
	return strings.Join(parts, " | ")
}

// ParseRelations parses a Depends, Pre-Depends, Provides, Conflicts or
// Breaks value: comma-separated clauses of "|"-separated relations.
// Architecture restrictions ([amd64]) and build profiles (<!nocheck>)
// belong to source packages and are refused.
func ParseRelations(s string) ([]Clause, error) {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return nil, nil
	}
	var out []Clause
	for _, part := range strings.Split(s, ",") {
		var c Clause
		for _, alt := range strings.Split(part, "|") {
			r, err := parseRelation(strings.TrimSpace(alt))
			if err != nil {
				return nil, fmt.Errorf("%q: %w", s, err)
			}
			c = append(c, r)
		}
		out = append(out, c)
	}
	return out, nil
}

func parseRelation(s string) (Relation, error) {
	var r Relation
	if s == "" {
		return r, fmt.Errorf("an empty relation")
	}
	if strings.ContainsAny(s, "[]!") || strings.HasSuffix(s, ">") {
		return r, fmt.Errorf("%q: architecture restrictions and build profiles are not allowed in binary package relations", s)
	}
	name := s
	if i := strings.IndexByte(s, '('); i >= 0 {
		if !strings.HasSuffix(s, ")") {
			return r, fmt.Errorf("%q: unclosed version constraint", s)
		}
		name = strings.TrimSpace(s[:i])
		op, ver, err := parseConstraint(strings.TrimSpace(s[i+1 : len(s)-1]))
		if err != nil {
			return r, fmt.Errorf("%q: %w", s, err)
		}
		r.Op, r.Ver = op, ver
	}
	if i := strings.IndexByte(name, ':'); i >= 0 {
		name, r.Arch = name[:i], name[i+1:]
	}
	if !validName(name) {
		return r, fmt.Errorf("%q is not a package name", name)
	}
	r.Name = name
	return r, nil
}

func parseConstraint(s string) (string, Version, error) {
	for _, op := range []string{"<<", "<=", ">=", ">>", "=", "<", ">"} {
		if rest, ok := strings.CutPrefix(s, op); ok {
			v, err := ParseVersion(strings.TrimSpace(rest))
			switch op { // dpkg's obsolete spellings
			case "<":
				op = "<="
			case ">":
				op = ">="
			}
			return op, v, err
		}
	}
	return "", Version{}, fmt.Errorf("%q: no operator (<<, <=, =, >=, >>)", s)
}

// validName is Debian policy 5.6.1: lower case letters, digits, + - . ;
// at least two characters, starting with a letter or digit.
func validName(s string) bool {
	if len(s) < 2 || !(isDigit(s[0]) || s[0] >= 'a' && s[0] <= 'z') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isDigit(c) || c >= 'a' && c <= 'z' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Satisfies reports whether version v meets r's constraint.
func (r Relation) Satisfies(v Version) bool {
	if r.Op == "" {
		return true
	}
	c := Compare(v, r.Ver)
	switch r.Op {
	case "<<":
		return c < 0
	case "<=":
		return c <= 0
	case "=":
		return c == 0
	case ">=":
		return c >= 0
	case ">>":
		return c > 0
	}
	return false
}
