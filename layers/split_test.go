package layers

import (
	"archive/tar"
	"fmt"
	"slices"
	"testing"
)

// splitEntries is a sorted tree of n files of size bytes each, in dirs.
func splitEntries(n int, size int64) []Entry {
	var es []Entry
	for d := range 10 {
		es = append(es, Entry{Name: fmt.Sprintf("d%d", d), Type: tar.TypeDir})
		for f := range n / 10 {
			es = append(es, Entry{Name: fmt.Sprintf("d%d/f%05d", d, f), Type: tar.TypeReg, Size: size})
		}
	}
	return es
}

func partNames(parts [][]Entry) [][]string {
	var out [][]string
	for _, p := range parts {
		var ns []string
		for _, e := range p {
			ns = append(ns, e.Name)
		}
		out = append(out, ns)
	}
	return out
}

// TestSplit: parts of about the target, every entry once and in order,
// and cuts that stay put when a file changes size, one comes or one goes.
func TestSplit(t *testing.T) {
	es := splitEntries(4000, 100<<10) // ~400 MB
	parts := Split(es, 64<<20)
	if len(parts) < 3 || len(parts) > MaxParts {
		t.Fatalf("%d parts of a 400 MB layer at 64 MB", len(parts))
	}
	if got := slices.Concat(parts...); !slices.EqualFunc(got, es, func(a, b Entry) bool { return a.Name == b.Name }) {
		t.Fatal("the parts are not the entries in order")
	}
	for i, p := range parts {
		var n int64
		for _, e := range p {
			n += e.Size + 512
		}
		if n > 4*(64<<20)+(100<<10)+512 || i < len(parts)-1 && n < 16<<20 {
			t.Errorf("part %d of %d holds %d bytes, want 16–256 MB", i, len(parts), n)
		}
	}
	before := partNames(parts)
	changed := slices.Clone(es)
	changed[1234].Size += 1 << 20
	added := slices.Insert(slices.Clone(es), 2000, Entry{Name: es[1999].Name + "a", Type: tar.TypeReg, Size: 100 << 10})
	removed := slices.Delete(slices.Clone(es), 3000, 3001)
	for name, after := range map[string][]Entry{"a file grew": changed, "a file came": added, "a file went": removed} {
		got := partNames(Split(after, 64<<20))
		if len(got) != len(before) {
			t.Errorf("%s: %d parts, were %d", name, len(got), len(before))
			continue
		}
		differ := 0
		for i := range got {
			if !slices.Equal(got[i], before[i]) {
				differ++
			}
		}
		if want := map[string]int{"a file grew": 0, "a file came": 1, "a file went": 1}[name]; differ != want {
			t.Errorf("%s: %d parts changed their entries, want %d", name, differ, want)
		}
	}
}

func TestSplitSmallOrOff(t *testing.T) {
	es := splitEntries(100, 1<<10)
	for _, target := range []int64{0, -1, 1 << 20} {
		if parts := Split(es, target); len(parts) != 1 || len(parts[0]) != len(es) {
			t.Errorf("target %d: %d parts of a 100 KB layer", target, len(parts))
		}
	}
	if parts := Split(nil, 1<<20); len(parts) != 1 || len(parts[0]) != 0 {
		t.Errorf("no entries: %v", parts)
	}
}

// TestSplitKeepsHardLinks: a hard link stays in the part of its target.
func TestSplitKeepsHardLinks(t *testing.T) {
	es := splitEntries(4000, 100<<10)
	// link the first file of d0 from the last name of d9
	target := es[1].Name
	es = append(es, Entry{Name: "d9/zlink", Type: tar.TypeLink, Linkname: target})
	parts := Split(es, 64<<20)
	for _, p := range parts {
		has := func(n string) bool { return slices.ContainsFunc(p, func(e Entry) bool { return e.Name == n }) }
		if has(target) != has("d9/zlink") {
			t.Fatalf("the link and its target are in different parts (%d parts)", len(parts))
		}
	}
	if len(parts) != 1 {
		t.Errorf("%d parts: a link from the last entry to the first holds them all in one", len(parts))
	}
	// a target too small for the layer is raised: no more than MaxParts
	if n := len(Split(splitEntries(20000, 100<<10), 1<<20)); n > MaxParts || n < MaxParts/2 {
		t.Errorf("2 GB at 1 MB: %d parts, want %d at most (and about that)", n, MaxParts)
	}
}
