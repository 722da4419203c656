package layers

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"hash/fnv"
)

// A layer's tar stream is cut into chunks that are compressed on their own
// (gzip members, zstd frames) and concatenated: the blob is one valid gzip
// or zstd stream for every reader, and a chunk whose bytes were compressed
// before is copied from the cache instead of compressed again. A chunk
// ends before each entry whose name hashes to 0 modulo the layer's cut
// interval (every), whatever the sizes, so a change to one file changes
// only the chunk it is in (and the cuts inside that chunk's big files):
// the next name cut is where it was.
const (
	// targetChunk is the mean chunk size every is chosen for.
	targetChunk = 512 << 10
	// maxChunk ends a chunk wherever it is (in a big file's data).
	maxChunk = 1 << 20
	// storeAbove is the size from which an incompressible file's data is
	// stored (with the incompressible files that follow it) rather than
	// deflated.
	storeAbove = 4 << 10
)

// A chunk's identity names its uncompressed bytes without hashing all of
// them again: a file's data that lies wholly inside the chunk stands in as
// its SHA-256, which the file list needs anyway, and only the rest (tar
// headers, padding, the parts of files that cross a cut) is hashed. The
// identity is the hash of (chunkDomain, the hash of that rest, the
// chunk's length, and where each summed file's data lies with its sum):
// two chunks with one identity have the same bytes. Whether a file is
// summed depends only on where it lies in the stream, so every build names
// a chunk alike.
const chunkDomain = "gantry-chunk-v2\n"

// chunk is one independently compressed part of a layer's tar stream.
type chunk struct {
	Hash   [sha256.Size]byte // its identity (see chunkDomain)
	Len    int64
	Stored bool // incompressible data: stored, not deflated
}

// chunker takes a layer's tar stream, hashes it whole (the diffID, unless
// it is known) and cuts it into chunks, handing each one's bytes to emit.
type chunker struct {
	total  hash.Hash
	n      int64
	cur    hash.Hash
	curLen int64
	stored bool
	buf    []byte
	emit   func(c chunk, data []byte) error
	buffer func() []byte // a chunk buffer (default: a new one)
	// noTotal skips the whole stream's hash: a scan made it already.
	noTotal bool
	// every is this layer's cut interval, in entries
	every uint32
	// skip is how much of the current file's data is still to come
	// unhashed; segs lists the chunk's summed data (offset, length, sum);
	// owed says the last one's sum is still to come.
	skip int64
	segs []byte
	owed bool
}

// errSumOwed is a chunk cut while a file's sum was still owed: a bug.
var errSumOwed = errors.New("a layer chunk ended before the sum of its file's data was given")

// newChunker cuts the tar of entries: every is the power of two nearest
// the number of entries of mean size that make targetChunk, so that it
// stays the same when a few files change.
func newChunker(entries []Entry) *chunker {
	var total int64
	for i := range entries {
		total += entries[i].tarSize()
	}
	every := uint32(1)
	if n := int64(len(entries)); n > 0 {
		for mean := total / n; int64(every)*mean < targetChunk*3/4 && every < 1<<12; every *= 2 {
		}
	}
	return &chunker{total: sha256.New(), cur: sha256.New(), every: every}
}

func (c *chunker) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		part := p
		if room := maxChunk - c.curLen; int64(len(part)) > room {
			part = part[:room]
		}
		if !c.noTotal {
			c.total.Write(part)
		}
		rest := part
		if c.skip > 0 {
			k := min(c.skip, int64(len(rest)))
			c.skip -= k
			rest = rest[k:]
		}
		c.cur.Write(rest)
		if c.emit != nil {
			if c.buf == nil {
				c.buf = c.newBuffer()
			}
			c.buf = append(c.buf, part...)
		}
		c.n += int64(len(part))
		c.curLen += int64(len(part))
		written += len(part)
		p = p[len(part):]
		if c.curLen == maxChunk {
			stored := c.stored
			if err := c.cut(); err != nil {
				return written, err
			}
			c.stored = stored // a big file's data stays stored
		}
	}
	return written, nil
}

func (c *chunker) newBuffer() []byte {
	if c.buffer != nil {
		return c.buffer()
	}
	return make([]byte, 0, maxChunk)
}

// entry is called before each entry's header: a chunk ends where the
// name says so, unless it is stored (it ends where data that is not
// incompressible begins).
func (c *chunker) entry(name string) error {
	if !c.stored && c.nameCut(name) {
		return c.cut()
	}
	return nil
}

// data is called before an entry's size bytes of data: incompressible
// data goes into a stored chunk (with the incompressible data that
// follows), other data ends one. Data that fits in the chunk is not
// hashed: its sum, which must be given (sum) before the next entry, stands
// for it.
func (c *chunker) data(incompressible bool, size int64) error {
	if c.owed {
		return errSumOwed
	}
	if incompressible != c.stored {
		if err := c.cut(); err != nil {
			return err
		}
		c.stored = incompressible
	}
	// strictly less: a chunk that the data fills up to maxChunk would be
	// cut before the sum is given
	if size > 0 && c.curLen+size < maxChunk {
		c.skip, c.owed = size, true
		c.segs = binary.BigEndian.AppendUint64(c.segs, uint64(c.curLen))
		c.segs = binary.BigEndian.AppendUint64(c.segs, uint64(size))
	}
	return nil
}

// sum gives the SHA-256 of the data announced last, once it is written.
func (c *chunker) sum(s *[sha256.Size]byte) {
	if c.owed {
		c.segs = append(c.segs, s[:]...)
		c.owed = false
	}
}

func (c *chunker) nameCut(name string) bool {
	h := fnv.New32a()
	h.Write([]byte(name))
	return h.Sum32()%c.every == 0
}

// cut ends the current chunk, if it has any bytes.
func (c *chunker) cut() error {
	if c.curLen == 0 {
		c.stored = false
		return nil
	}
	if c.owed || c.skip > 0 {
		return errSumOwed
	}
	ch := chunk{Len: c.curLen, Stored: c.stored}
	var rest [sha256.Size]byte
	id := sha256.New()
	id.Write([]byte(chunkDomain))
	id.Write(c.cur.Sum(rest[:0]))
	id.Write(binary.BigEndian.AppendUint64(nil, uint64(c.curLen)))
	id.Write(c.segs)
	id.Sum(ch.Hash[:0])
	c.cur.Reset()
	c.segs = c.segs[:0]
	c.curLen, c.stored = 0, false
	if c.emit == nil {
		return nil
	}
	data := c.buf
	c.buf = nil
	return c.emit(ch, data)
}

// finish ends the last chunk.
func (c *chunker) finish() error { return c.cut() }
