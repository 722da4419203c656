package debian

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a Debian package version, [epoch:]upstream[-revision], as
// Debian policy 5.6.12 defines it.
type Version struct {
	Epoch    int
	Upstream string
	Revision string
}

// ParseVersion parses a version string strictly: the epoch is a number, the
// upstream part starts with a digit and holds only [A-Za-z0-9.+~-:] (a
// hyphen only when there is a revision, a colon only with an epoch), and the
// revision holds only [A-Za-z0-9.+~].
func ParseVersion(s string) (Version, error) {
	var v Version
	rest := s
	if i := strings.IndexByte(rest, ':'); i >= 0 {
		n, err := strconv.Atoi(rest[:i])
		if err != nil || n < 0 || rest[:i] == "" {
			return v, fmt.Errorf("version %q: epoch %q is not a number", s, rest[:i])
		}
		v.Epoch, rest = n, rest[i+1:]
	}
	if i := strings.LastIndexByte(rest, '-'); i >= 0 {
		v.Revision, rest = rest[i+1:], rest[:i]
		if v.Revision == "" {
			return v, fmt.Errorf("version %q: empty revision after '-'", s)
		}
		if c := badChar(v.Revision, ".+~"); c != "" {
			return v, fmt.Errorf("version %q: revision has %s", s, c)
		}
	}
	v.Upstream = rest
	if rest == "" || rest[0] < '0' || rest[0] > '9' {
		return v, fmt.Errorf("version %q: the upstream version must start with a digit", s)
	}
	if c := badChar(rest, ".+~-:"); c != "" {
		return v, fmt.Errorf("version %q: upstream version has %s", s, c)
	}
	return v, nil
}

// badChar names the first character of s that is neither alphanumeric nor
// in extra, or is "".
func badChar(s, extra string) string {
	for _, r := range s {
		if !isDigit(byte(r)) && !isLetter(byte(r)) && !strings.ContainsRune(extra, r) || r > 127 {
			return fmt.Sprintf("%q", r)
		}
	}
	return ""
}

// String is the version as written, without an epoch of 0.
func (v Version) String() string {
	s := v.Upstream
	if v.Epoch != 0 {
		s = strconv.Itoa(v.Epoch) + ":" + s
	}
	if v.Revision != "" {
		s += "-" + v.Revision
	}
	return s
}

// Compare orders a and b as dpkg does: -1, 0 or 1.
func Compare(a, b Version) int {
	switch {
	case a.Epoch < b.Epoch:
		return -1
	case a.Epoch > b.Epoch:
		return 1
	}
	if c := comparePart(a.Upstream, b.Upstream); c != 0 {
		return c
	}
	return comparePart(a.Revision, b.Revision)
}

// CompareStrings compares two version strings, which must parse.
func CompareStrings(a, b string) (int, error) {
	va, err := ParseVersion(a)
	if err != nil {
		return 0, err
	}
	vb, err := ParseVersion(b)
	if err != nil {
		return 0, err
	}
	return Compare(va, vb), nil
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// order is a non-digit character's weight: '~' sorts before everything,
// even the end of the string; letters before other characters.
func order(c byte) int {
	switch {
	case c == '~':
		return -1
	case isDigit(c):
		return 0
	case isLetter(c):
		return int(c)
	default:
		return int(c) + 256
	}
}

// comparePart is dpkg's verrevcmp: alternating runs of non-digits
// (compared character by character with order) and digits (compared as
// numbers, leading zeros ignored).
func comparePart(a, b string) int {
	for a != "" || b != "" {
		var c int
		if c, a, b = compareLetters(a, b); c != 0 {
			return c
		}
		if c, a, b = compareNumbers(a, b); c != 0 {
			return c
		}
	}
	return 0
}

// compareLetters compares the non-digit prefixes of a and b and returns
// what follows them.
func compareLetters(a, b string) (int, string, string) {
	for a != "" && !isDigit(a[0]) || b != "" && !isDigit(b[0]) {
		ac, bc := 0, 0
		if a != "" {
			ac, a = order(a[0]), a[1:]
		}
		if b != "" {
			bc, b = order(b[0]), b[1:]
		}
		if ac != bc {
			return sign(ac - bc), a, b
		}
	}
	return 0, a, b
}

// compareNumbers compares the digit prefixes of a and b as numbers and
// returns what follows them.
func compareNumbers(a, b string) (int, string, string) {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	na, nb := digits(a), digits(b)
	switch {
	case na != nb:
		return sign(na - nb), a[na:], b[nb:]
	case a[:na] != b[:nb]:
		return strings.Compare(a[:na], b[:nb]), a[na:], b[nb:]
	}
	return 0, a[na:], b[nb:]
}

// digits is the length of s's leading run of digits.
func digits(s string) int {
	n := 0
	for n < len(s) && isDigit(s[n]) {
		n++
	}
	return n
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}
