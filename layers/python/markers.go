package python

import (
	"fmt"
	"strings"
)

// markerVars are the PEP 508 environment markers that a Target answers.
// Others (platform_release, platform_version, extra, ...) depend on the
// running machine or on how the lock was made and are refused.
var markerVars = map[string]bool{
	"python_version": true, "python_full_version": true, "implementation_version": true,
	"sys_platform": true, "platform_machine": true, "platform_system": true,
	"implementation_name": true, "os_name": true, "platform_python_implementation": true,
}

// markerValue is the value of a marker variable on t.
func markerValue(t Target, name string) (string, error) {
	switch name {
	case "python_version":
		return t.Python.String(), nil
	case "python_full_version", "implementation_version":
		return t.Python.Full(), nil
	case "sys_platform":
		return "linux", nil
	case "platform_system":
		return "Linux", nil
	case "os_name":
		return "posix", nil
	case "implementation_name":
		return "cpython", nil
	case "platform_python_implementation":
		return "CPython", nil
	case "platform_machine":
		return t.Machine()
	}
	return "", fmt.Errorf("marker %s cannot be evaluated for an image platform", name)
}

// marker is a parsed PEP 508 marker expression.
type marker interface {
	eval(t Target) (bool, error)
}

type markerAnd struct{ l, r marker }
type markerOr struct{ l, r marker }

// markerCmp compares a variable and a string (either side may be either).
type markerCmp struct {
	lhs, rhs       string
	lhsVar, rhsVar bool
	op             string
}

func (m markerAnd) eval(t Target) (bool, error) {
	l, err := m.l.eval(t)
	if err != nil || !l {
		return false, err
	}
	return m.r.eval(t)
}

func (m markerOr) eval(t Target) (bool, error) {
	l, err := m.l.eval(t)
	if err != nil || l {
		return l, err
	}
	return m.r.eval(t)
}

func (m markerCmp) eval(t Target) (bool, error) {
	lhs, rhs, err := m.operands(t)
	if err != nil {
		return false, err
	}
	// As packaging does: a version comparison when "<op><rhs>" is a valid
	// specifier, else a string comparison.
	if ok, isVersion := versionCompare(m.op, lhs, rhs); isVersion {
		return ok, nil
	}
	return stringCompare(m.op, lhs, rhs)
}

// operands are the two sides of the comparison, variables replaced by
// their values on t.
func (m markerCmp) operands(t Target) (string, string, error) {
	lhs, rhs := m.lhs, m.rhs
	var err error
	if m.lhsVar {
		if lhs, err = markerValue(t, lhs); err != nil {
			return "", "", err
		}
	}
	if m.rhsVar {
		if rhs, err = markerValue(t, rhs); err != nil {
			return "", "", err
		}
	}
	return lhs, rhs, nil
}

// versionCompare compares lhs and rhs as versions when op is not "in" or
// "not in", "<op><rhs>" is a specifier and lhs a version; isVersion
// reports whether it could.
func versionCompare(op, lhs, rhs string) (ok, isVersion bool) {
	if op == "in" || op == "not in" {
		return false, false
	}
	sp, err := parseSpecifier(op + rhs)
	if err != nil {
		return false, false
	}
	v, err := parseVersion(lhs)
	if err != nil {
		return false, false
	}
	return sp.contains(v), true
}

// stringCompare compares lhs and rhs as strings.
func stringCompare(op, lhs, rhs string) (bool, error) {
	switch op {
	case "==", "===":
		return lhs == rhs, nil
	case "!=":
		return lhs != rhs, nil
	case "in":
		return strings.Contains(rhs, lhs), nil
	case "not in":
		return !strings.Contains(rhs, lhs), nil
	case "<":
		return lhs < rhs, nil
	case "<=":
		return lhs <= rhs, nil
	case ">":
		return lhs > rhs, nil
	case ">=":
		return lhs >= rhs, nil
	}
	return false, fmt.Errorf("marker %q %s %q cannot be compared", lhs, op, rhs)
}

// parseMarker parses a PEP 508 marker and checks that every variable in it
// is one a Target can answer.
func parseMarker(s string) (marker, error) {
	p := &markerParser{s: s}
	m, err := p.or()
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i < len(p.s) {
		return nil, fmt.Errorf("marker %q: unexpected %q", s, p.s[p.i:])
	}
	return m, nil
}

type markerParser struct {
	s string
	i int
}

func (p *markerParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// keyword consumes kw if it comes next as a whole word.
func (p *markerParser) keyword(kw string) bool {
	p.space()
	if !strings.HasPrefix(p.s[p.i:], kw) {
		return false
	}
	end := p.i + len(kw)
	if end < len(p.s) && isIdentByte(p.s[end]) {
		return false
	}
	p.i = end
	return true
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func (p *markerParser) or() (marker, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.keyword("or") {
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = markerOr{l, r}
	}
	return l, nil
}

func (p *markerParser) and() (marker, error) {
	l, err := p.expr()
	if err != nil {
		return nil, err
	}
	for p.keyword("and") {
		r, err := p.expr()
		if err != nil {
			return nil, err
		}
		l = markerAnd{l, r}
	}
	return l, nil
}

func (p *markerParser) expr() (marker, error) {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == '(' {
		p.i++
		m, err := p.or()
		if err != nil {
			return nil, err
		}
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != ')' {
			return nil, fmt.Errorf("marker %q: missing )", p.s)
		}
		p.i++
		return m, nil
	}
	lhs, lhsVar, err := p.value()
	if err != nil {
		return nil, err
	}
	op, err := p.op()
	if err != nil {
		return nil, err
	}
	rhs, rhsVar, err := p.value()
	if err != nil {
		return nil, err
	}
	if lhsVar == rhsVar {
		return nil, fmt.Errorf("marker %q: a comparison needs one variable and one quoted string", p.s)
	}
	return markerCmp{lhs: lhs, rhs: rhs, lhsVar: lhsVar, rhsVar: rhsVar, op: op}, nil
}

// value reads a quoted string or a marker variable.
func (p *markerParser) value() (string, bool, error) {
	p.space()
	if p.i >= len(p.s) {
		return "", false, fmt.Errorf("marker %q ends early", p.s)
	}
	if q := p.s[p.i]; q == '"' || q == '\'' {
		end := strings.IndexByte(p.s[p.i+1:], q)
		if end < 0 {
			return "", false, fmt.Errorf("marker %q: unterminated string", p.s)
		}
		v := p.s[p.i+1 : p.i+1+end]
		p.i += end + 2
		return v, false, nil
	}
	start := p.i
	for p.i < len(p.s) && isIdentByte(p.s[p.i]) {
		p.i++
	}
	name := p.s[start:p.i]
	if name == "" {
		return "", false, fmt.Errorf("marker %q: expected a variable or a quoted string at %q", p.s, p.s[start:])
	}
	if !markerVars[name] {
		return "", false, fmt.Errorf("marker %q: %s cannot be evaluated for an image platform (gantry knows %s)", p.s, name, knownMarkers())
	}
	return name, true, nil
}

func knownMarkers() string {
	return "python_version, python_full_version, sys_platform, platform_machine, platform_system, implementation_name, os_name, platform_python_implementation"
}

func (p *markerParser) op() (string, error) {
	p.space()
	for _, op := range []string{"===", "==", "!=", "<=", ">=", "~=", "<", ">"} {
		if strings.HasPrefix(p.s[p.i:], op) {
			p.i += len(op)
			return op, nil
		}
	}
	if p.keyword("in") {
		return "in", nil
	}
	if p.keyword("not") {
		if p.keyword("in") {
			return "not in", nil
		}
	}
	return "", fmt.Errorf("marker %q: expected a comparison at %q", p.s, p.s[p.i:])
}
