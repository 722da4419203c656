package layers

import (
	"archive/tar"
	"encoding/binary"
	"errors"
	"strings"
)

// This file holds the base index format and its records; indexWriter
// writes an index (baseindex_write.go), merging the sorted runs
// (baseindex_merge.go), and baseIndex reads and searches one
// (baseindex_read.go).

// A base layer's index is a file in the cache (base/<digest hex>.idx),
// written once by a streaming scan of the layer and then searched in place:
// a lookup reads the few records its binary search compares, never the
// whole index, and the scan holds at most one sort run in memory (records
// beyond it are sorted in runs on disk and merged), so a layer of millions
// of entries costs disk, not memory.
//
// Layout, integers little-endian:
//
//	header  64 bytes: magic, uncompressed size, record count, offset of the
//	        offset table, offset of the contents, file size, tar entries
//	records one per path, sorted by key (parent directory, NUL, base name,
//	        so a directory's children are contiguous), each a uint32 length
//	        and the encoded record
//	offsets record count × uint64: the file offset of each record
//	contents the bytes of the files whose content the index keeps
const (
	indexMagic      = "GANTRYX1"
	indexHeaderSize = 64
	// indexRunBytes bounds the records a scan sorts in memory at once.
	indexRunBytes = 8 << 20
	// indexInMemory: an index file up to this size is read into memory
	// once per BaseFS; a larger one is opened for each question.
	indexInMemory = 1 << 20
	// MaxBaseEntries is the most tar entries gantry indexes in one base
	// layer (an entry bomb beyond it is refused with an error): 4 Mi, far
	// above real layers (a full distribution has some 10^5 files). Up to
	// it, scanning takes a bounded amount of memory (under 64 MB) and
	// some 60 bytes of disk per entry.
	MaxBaseEntries = 4 << 20
)

// Record flags.
const (
	recPresent  = 1 << iota // a tar entry of this name (not only the below)
	recWhiteout             // .wh.<name>: hides name in the layers below
	recOpaque               // .wh..wh..opq inside: hides its contents below
	recImplied              // a directory that is only a parent of entries
	recContent              // the content is kept in the contents section
)

// idxRec is one path of a layer's index.
type idxRec struct {
	key        string // indexKey(name)
	flags      byte
	f          BaseFile
	size       int64 // the tar entry's size
	cOff, cLen int64 // kept content, relative to the contents section
}

// indexKey is the sort key of a path: its parent directory, NUL, its base
// name, so that the children of a directory sort together and directly
// ("a\x00b" for a/b, "\x00etc" for etc, "\x00" for the root itself).
func indexKey(name string) string {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return "\x00" + name
	}
	return name[:i] + "\x00" + name[i+1:]
}

// keyName is the path a key stands for.
func keyName(key string) string {
	dir, base, _ := strings.Cut(key, "\x00")
	if dir == "" {
		return base
	}
	return dir + "/" + base
}

func (r *idxRec) encode(b []byte) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	b = binary.AppendUvarint(b, uint64(len(r.key)))
	b = append(b, r.key...)
	b = append(b, r.flags, r.f.Type)
	b = binary.AppendVarint(b, r.f.Mode)
	b = binary.AppendVarint(b, int64(r.f.UID))
	b = binary.AppendVarint(b, int64(r.f.GID))
	b = binary.AppendUvarint(b, uint64(len(r.f.Linkname)))
	b = append(b, r.f.Linkname...)
	b = binary.AppendVarint(b, r.size)
	if r.flags&recContent != 0 {
		b = binary.AppendVarint(b, r.cOff)
		b = binary.AppendVarint(b, r.cLen)
	}
	binary.LittleEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b
}

var errBadRecord = errors.New("damaged base index record")

// decodeRec decodes a record's body (without its length).
func decodeRec(b []byte) (idxRec, error) {
	var r idxRec
	d := recDecoder{b: b}
	r.key = d.str()
	r.flags, r.f.Type = d.byte(), d.byte()
	r.f.Mode = d.varint()
	r.f.UID, r.f.GID = int(d.varint()), int(d.varint())
	r.f.Linkname = d.str()
	r.size = d.varint()
	if r.f.Type == tar.TypeReg {
		r.f.Size = r.size
	}
	if r.flags&recContent != 0 {
		r.cOff, r.cLen = d.varint(), d.varint()
	}
	if d.bad {
		return idxRec{}, errBadRecord
	}
	return r, nil
}

// recordKey is the key of an encoded record (with its length), unallocated.
func recordKey(b []byte) []byte {
	n, k := binary.Uvarint(b[4:])
	if k <= 0 || uint64(len(b)-4-k) < n {
		return nil
	}
	return b[4+k : 4+k+int(n)]
}

type recDecoder struct {
	b   []byte
	bad bool
}

func (d *recDecoder) byte() byte {
	if len(d.b) < 1 {
		d.bad = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *recDecoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recDecoder) str() string {
	n, k := binary.Uvarint(d.b)
	if k <= 0 || uint64(len(d.b)-k) < n {
		d.bad = true
		return ""
	}
	s := string(d.b[k : k+int(n)])
	d.b = d.b[k+int(n):]
	return s
}
