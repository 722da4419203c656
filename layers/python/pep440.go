package python

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// pep440 is a parsed PEP 440 version, enough to compare versions and
// evaluate the specifiers of Requires-Python and environment markers.
type pep440 struct {
	epoch   int
	release []int
	pre     *preRelease // nil: not a pre-release
	post    int         // -1: none
	dev     int         // -1: none
	local   []string
}

type preRelease struct {
	kind string // "a", "b" or "rc"
	n    int
}

var pep440RE = regexp.MustCompile(`^v?` +
	`(?:([0-9]+)!)?` + // epoch
	`([0-9]+(?:\.[0-9]+)*)` + // release
	`(?:[-_.]?(alpha|a|beta|b|preview|pre|c|rc)[-_.]?([0-9]+)?)?` + // pre
	`(?:-([0-9]+)|[-_.]?(post|rev|r)[-_.]?([0-9]+)?)?` + // post
	`(?:[-_.]?(dev)[-_.]?([0-9]+)?)?` + // dev
	`(?:\+([a-z0-9]+(?:[-_.][a-z0-9]+)*))?$`) // local

func parseVersion(s string) (pep440, error) {
	m := pep440RE.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return pep440{}, fmt.Errorf("%q is not a PEP 440 version", s)
	}
	v := pep440{post: -1, dev: -1}
	num := func(s string) int {
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0 // only an empty optional number; digits were matched
		}
		return n
	}
	if m[1] != "" {
		v.epoch = num(m[1])
	}
	for _, p := range strings.Split(m[2], ".") {
		v.release = append(v.release, num(p))
	}
	if m[3] != "" {
		kind := map[string]string{"alpha": "a", "a": "a", "beta": "b", "b": "b", "c": "rc", "rc": "rc", "pre": "rc", "preview": "rc"}[m[3]]
		v.pre = &preRelease{kind: kind, n: num(m[4])}
	}
	switch {
	case m[5] != "":
		v.post = num(m[5])
	case m[6] != "":
		v.post = num(m[7])
	}
	if m[8] != "" {
		v.dev = num(m[9])
	}
	if m[10] != "" {
		v.local = strings.FieldsFunc(m[10], func(r rune) bool { return r == '-' || r == '_' || r == '.' })
	}
	return v, nil
}

// String is the normalised form ("1.0rc1", "2!1.0.post2.dev3+abc").
func (v pep440) String() string {
	var b strings.Builder
	if v.epoch != 0 {
		fmt.Fprintf(&b, "%d!", v.epoch)
	}
	for i, r := range v.release {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.Itoa(r))
	}
	if v.pre != nil {
		fmt.Fprintf(&b, "%s%d", v.pre.kind, v.pre.n)
	}
	if v.post >= 0 {
		fmt.Fprintf(&b, ".post%d", v.post)
	}
	if v.dev >= 0 {
		fmt.Fprintf(&b, ".dev%d", v.dev)
	}
	if len(v.local) > 0 {
		b.WriteString("+" + strings.Join(v.local, "."))
	}
	return b.String()
}

func (v pep440) isPre() bool { return v.pre != nil || v.dev >= 0 }

func (v pep440) public() pep440 { v.local = nil; return v }

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compareVersions orders versions as PEP 440 (and packaging's _cmpkey) do.
func compareVersions(a, b pep440) int {
	if c := cmpInt(a.epoch, b.epoch); c != 0 {
		return c
	}
	for i := 0; i < max(len(a.release), len(b.release)); i++ {
		var x, y int
		if i < len(a.release) {
			x = a.release[i]
		}
		if i < len(b.release) {
			y = b.release[i]
		}
		if c := cmpInt(x, y); c != 0 {
			return c
		}
	}
	// pre: a dev release of a final sorts before every pre-release of it;
	// a final sorts after them.
	preKey := func(v pep440) (int, int) {
		switch {
		case v.pre == nil && v.post < 0 && v.dev >= 0:
			return -1, 0
		case v.pre == nil:
			return 4, 0
		}
		return map[string]int{"a": 1, "b": 2, "rc": 3}[v.pre.kind], v.pre.n
	}
	ak, an := preKey(a)
	bk, bn := preKey(b)
	if c := cmpInt(ak, bk); c != 0 {
		return c
	}
	if c := cmpInt(an, bn); c != 0 {
		return c
	}
	if c := cmpInt(a.post, b.post); c != 0 {
		return c
	}
	devKey := func(v pep440) int {
		if v.dev < 0 {
			return int(^uint(0) >> 1)
		}
		return v.dev
	}
	if c := cmpInt(devKey(a), devKey(b)); c != 0 {
		return c
	}
	return compareLocal(a.local, b.local)
}

func compareLocal(a, b []string) int {
	for i := 0; i < min(len(a), len(b)); i++ {
		x, xerr := strconv.Atoi(a[i])
		y, yerr := strconv.Atoi(b[i])
		switch {
		case xerr == nil && yerr == nil:
			if c := cmpInt(x, y); c != 0 {
				return c
			}
		case xerr == nil: // numeric segments sort after alphanumeric ones
			return 1
		case yerr == nil:
			return -1
		default:
			if c := strings.Compare(a[i], b[i]); c != 0 {
				return c
			}
		}
	}
	return cmpInt(len(a), len(b))
}

// sameVersion reports whether a and b are the same PEP 440 version ("1.0"
// and "1.0.0" are); strings that are not versions must be equal.
func sameVersion(a, b string) bool {
	va, errA := parseVersion(a)
	vb, errB := parseVersion(b)
	if errA != nil || errB != nil {
		return a == b
	}
	return compareVersions(va, vb) == 0
}

// specifier is one clause of a PEP 440 version specifier (">=3.8").
type specifier struct {
	op       string
	version  pep440
	raw      string // the version text (for ===)
	wildcard bool   // "==3.*" / "!=3.1.*"
}

var specOps = []string{"===", "~=", "==", "!=", "<=", ">=", "<", ">"}

// parseSpecifierSet parses a comma-separated specifier (">=3.8, !=3.9.*").
func parseSpecifierSet(s string) ([]specifier, error) {
	var out []specifier
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			if strings.TrimSpace(s) == "" {
				return nil, nil
			}
			return nil, fmt.Errorf("specifier %q has an empty clause", s)
		}
		sp, err := parseSpecifier(part)
		if err != nil {
			return nil, err
		}
		out = append(out, sp)
	}
	return out, nil
}

func parseSpecifier(s string) (specifier, error) {
	for _, op := range specOps {
		if !strings.HasPrefix(s, op) {
			continue
		}
		text := strings.TrimSpace(s[len(op):])
		sp := specifier{op: op, raw: text}
		if op == "===" {
			return sp, nil
		}
		if (op == "==" || op == "!=") && strings.HasSuffix(text, ".*") {
			sp.wildcard = true
			text = strings.TrimSuffix(text, ".*")
		}
		v, err := parseVersion(text)
		if err != nil {
			return specifier{}, fmt.Errorf("specifier %q: %w", s, err)
		}
		if op == "~=" && len(v.release) < 2 {
			return specifier{}, fmt.Errorf("specifier %q: ~= needs at least two release numbers", s)
		}
		sp.version = v
		return sp, nil
	}
	return specifier{}, fmt.Errorf("%q is not a version specifier (>=, <=, ==, !=, ~=, <, >, ===)", s)
}

// prefixMatch reports whether v's release starts with prefix (v padded with
// zeros), in the same epoch: the "==X.Y.*" test.
func prefixMatch(v, prefix pep440) bool {
	if v.epoch != prefix.epoch {
		return false
	}
	for i, p := range prefix.release {
		var x int
		if i < len(v.release) {
			x = v.release[i]
		}
		if x != p {
			return false
		}
	}
	return true
}

// contains reports whether v satisfies the clause (pre-releases allowed, as
// for markers and Requires-Python of a known interpreter).
func (sp specifier) contains(v pep440) bool {
	switch sp.op {
	case "===":
		return v.String() == sp.raw || strings.EqualFold(sp.raw, v.String())
	case "==":
		return sp.equal(v)
	case "!=":
		return !sp.equal(v)
	case "~=":
		return sp.compatible(v)
	case "<=":
		return compareVersions(v.public(), sp.version) <= 0
	case ">=":
		return compareVersions(v.public(), sp.version) >= 0
	case "<":
		return sp.below(v)
	case ">":
		return sp.above(v)
	}
	return false
}

// equal is the == test: a prefix match for a wildcard, and v's local
// label counts only when the clause has one.
func (sp specifier) equal(v pep440) bool {
	switch {
	case sp.wildcard:
		return prefixMatch(v.public(), sp.version)
	case len(sp.version.local) == 0:
		return compareVersions(v.public(), sp.version) == 0
	}
	return compareVersions(v, sp.version) == 0
}

// compatible is the ~= test: at least the version, with the same release
// but for its last number.
func (sp specifier) compatible(v pep440) bool {
	prefix := sp.version
	prefix.release = prefix.release[:len(prefix.release)-1]
	prefix.pre, prefix.post, prefix.dev = nil, -1, -1
	return compareVersions(v.public(), sp.version) >= 0 && prefixMatch(v, prefix)
}

// below is the < test.
func (sp specifier) below(v pep440) bool {
	if compareVersions(v.public(), sp.version) >= 0 {
		return false
	}
	// "<3.13" excludes 3.13's pre-releases unless it names one itself
	return sp.version.isPre() || !v.isPre() || !sameRelease(v, sp.version)
}

// above is the > test.
func (sp specifier) above(v pep440) bool {
	if compareVersions(v.public(), sp.version) <= 0 {
		return false
	}
	// ">3.13" excludes 3.13's post-releases unless it names one itself
	return sp.version.post >= 0 || v.post < 0 || !sameRelease(v, sp.version)
}

func sameRelease(a, b pep440) bool {
	a.pre, a.post, a.dev, a.local = nil, -1, -1, nil
	b.pre, b.post, b.dev, b.local = nil, -1, -1, nil
	return compareVersions(a, b) == 0
}

func specifiersContain(set []specifier, v pep440) bool {
	for _, sp := range set {
		if !sp.contains(v) {
			return false
		}
	}
	return true
}
