package debian

import (
	"strings"
	"testing"
)

// FuzzVersion: a version that parses compares equal to itself and to its
// own String, and Compare is antisymmetric.
func FuzzVersion(f *testing.F) {
	for _, c := range versionCases {
		f.Add(c[0], c[1])
	}
	f.Add("1:2.3-4~5+b1", "00:2.3")
	f.Fuzz(func(t *testing.T, a, b string) {
		va, err := ParseVersion(a)
		if err != nil {
			return
		}
		again, err := ParseVersion(va.String())
		if err != nil || Compare(va, again) != 0 || Compare(va, va) != 0 {
			t.Fatalf("%q: String %q reparses to %+v, %v", a, va.String(), again, err)
		}
		vb, err := ParseVersion(b)
		if err != nil {
			return
		}
		if Compare(va, vb) != -Compare(vb, va) {
			t.Fatalf("Compare(%q, %q) is not antisymmetric", a, b)
		}
	})
}

// FuzzControl: any input parses or fails with an error naming the line;
// what parses writes back to text that parses to the same fields.
func FuzzControl(f *testing.F) {
	f.Add("Package: a\nDescription: x\n y\n .\n\nPackage: b\n")
	f.Add("Conffiles:\n /etc/x 123\n")
	f.Add(" bad\n")
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := ParseControl(strings.NewReader(s), "fuzz", true)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz:") && !strings.HasPrefix(err.Error(), "reading fuzz") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, p := range ps {
			var b strings.Builder
			p.WriteTo(&b)
			again, err := ParseControl(strings.NewReader(b.String()), "again", true)
			if err != nil || len(again) != 1 || len(again[0].Fields) != len(p.Fields) {
				t.Fatalf("%q wrote %q, which parses to %v, %v", s, b.String(), again, err)
			}
		}
	})
}
