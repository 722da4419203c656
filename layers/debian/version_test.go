package debian

import (
	"os/exec"
	"testing"
)

// versionCases are ordered pairs (a < b) from Debian policy 5.6.12 and
// dpkg's own test suite.
var versionCases = [][2]string{
	{"1.0", "1.1"},
	{"1.0", "1.0-1"},
	{"1.0~rc1", "1.0"},
	{"1.0~rc1-1", "1.0-1"},
	{"1.0~~", "1.0~"},
	{"1.0~~a", "1.0~"},
	{"1.0~", "1.0"},
	{"1.0", "1.0a"},
	{"1.0a", "1.0+"},
	{"1.0+", "1.0."},
	{"1.0-1", "1.0-1.1"},
	{"1.0-1", "1.0-1+b1"},
	{"1.0-1+b1", "1.0-2"},
	{"9.9", "1:0.1"},
	{"1:1.0", "2:0.1"},
	{"2.36-9+deb12u9", "2.36-9+deb12u10"},
	{"1.9", "1.10"},
	{"1.09", "1.10"},
	{"1.0", "1.0.1"},
	{"7.88.1-10+deb12u8", "7.88.1-10+deb12u12"},
	{"4.0.2-3", "2:4.0.2-3"},
	{"1.2.3-1~bpo12+1", "1.2.3-1"},
	{"0.0~git20230101", "0.0.1"},
	{"1.a", "1.b"},
	{"1.Z", "1.a"},
	{"a1", "a2"}, // only in revisions; see below
}

func TestCompare(t *testing.T) {
	for _, c := range versionCases[:len(versionCases)-1] {
		a, err := ParseVersion(c[0])
		if err != nil {
			t.Fatal(err)
		}
		b, err := ParseVersion(c[1])
		if err != nil {
			t.Fatal(err)
		}
		if got := Compare(a, b); got != -1 {
			t.Errorf("Compare(%s, %s) = %d, want -1", c[0], c[1], got)
		}
		if got := Compare(b, a); got != 1 {
			t.Errorf("Compare(%s, %s) = %d, want 1", c[1], c[0], got)
		}
		if got := Compare(a, a); got != 0 {
			t.Errorf("Compare(%s, %s) = %d, want 0", c[0], c[0], got)
		}
	}
	if comparePart("a1", "a2") != -1 || comparePart("", "~") != 1 || comparePart("00", "0") != 0 {
		t.Error("comparePart: revisions and leading zeros")
	}
	for _, eq := range [][2]string{{"0:1.0", "1.0"}, {"1.0-0", "1.0-0"}, {"1.01", "1.1"}, {"1.0-00", "1.0-0"}} {
		if n, err := CompareStrings(eq[0], eq[1]); err != nil || n != 0 {
			t.Errorf("%s vs %s: %d %v, want equal", eq[0], eq[1], n, err)
		}
	}
}

// TestCompareDpkg checks the same pairs against dpkg itself where it is
// installed, so the table cannot drift from the real algorithm.
func TestCompareDpkg(t *testing.T) {
	dpkg, err := exec.LookPath("dpkg")
	if err != nil {
		t.Skip("dpkg not installed: the table alone checks Compare")
	}
	for _, c := range versionCases[:len(versionCases)-1] {
		if err := exec.Command(dpkg, "--compare-versions", c[0], "lt", c[1]).Run(); err != nil {
			t.Errorf("dpkg says %s is not < %s: the table is wrong", c[0], c[1])
		}
	}
}

func TestParseVersion(t *testing.T) {
	v, err := ParseVersion("1:2.3-4-5")
	if err != nil || v.Epoch != 1 || v.Upstream != "2.3-4" || v.Revision != "5" || v.String() != "1:2.3-4-5" {
		t.Fatalf("got %+v %v", v, err)
	}
	for _, bad := range []string{"", "a1.0", "1.0-", ":1.0", "x:1.0", "1.0_1", "1.0-a:b", "1.0 2", "1.0-1_1", "-1:1"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) succeeded", bad)
		}
	}
}
