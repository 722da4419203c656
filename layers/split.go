package layers

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/binary"
)

// MaxParts is the most layers Split cuts one layer's entries into.
const MaxParts = 16

// Split cuts entries (sorted by name) into parts of about target bytes,
// each to be a layer of its own, as jib splits an application by how often
// its parts change: a change to one file then rebuilds, uploads and pulls
// only the part it is in. As content-defined chunking does, a part ends
// before an entry whose name's hash falls under its share of target (see
// partCut), once the part holds target/4, or wherever it reaches
// 4×target: the cuts stay where they are when files change, come or go,
// except next to the change. Parents need no care (layers apply in order,
// and a directory sorts before what it holds), but a hard link and the
// file it links to stay in one part: Docker's overlay2 extracts a layer by
// itself. Below 2×target, or with target ≤ 0, there is one part; there
// are never more than MaxParts.
func Split(entries []Entry, target int64) [][]Entry {
	size := func(i int) int64 { return entries[i].tarSize() }
	var total int64
	for i := range entries {
		total += size(i)
	}
	if target <= 0 || total < 2*target || len(entries) < 2 {
		return [][]Entry{entries}
	}
	target = max(target, total/MaxParts)
	lastLink := lastLinks(entries)
	var out [][]Entry
	start, hold := 0, -1 // hold: no cut at or before this index
	cur := size(0)
	for i := 1; i < len(entries); i++ {
		hold = max(hold, lastLink[i-1])
		if i > hold && len(out) < MaxParts-1 && (cur >= 4*target || cur >= target/4 && partCut(entries[i].Name, size(i), cur, target)) {
			out = append(out, entries[start:i])
			start, cur = i, 0
		}
		cur += size(i)
	}
	return append(out, entries[start:])
}

// lastLinks gives, for each entry, the index of the last hard link to it
// (-1 if none).
func lastLinks(entries []Entry) []int {
	at := map[string]int{}
	last := make([]int, len(entries))
	for i := range entries {
		last[i] = -1
		if e := &entries[i]; e.Type == tar.TypeLink {
			if t, ok := at[e.Linkname]; ok {
				last[t] = i
			}
		} else if e.Type == tar.TypeReg {
			at[e.Name] = i
		}
	}
	return last
}

// partCut reports whether a part of about target bytes, holding cur
// bytes, ends before the entry named name, of size bytes: with odds
// size/target, halved below target and doubled above it (FastCDC's
// normalised chunking), so that parts keep near target.
func partCut(name string, size, cur, target int64) bool {
	odds := float64(size) / float64(target)
	if cur < target {
		odds /= 2
	} else {
		odds *= 2
	}
	sum := sha256.Sum256([]byte("part\x00" + name)) // FNV's top bits are not uniform for like names
	return float64(binary.BigEndian.Uint64(sum[:8])) < odds*(1<<64)
}
