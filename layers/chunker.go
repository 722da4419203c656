package layers

import (
	"crypto/sha256"
	"hash"
	"hash/fnv"
)

// A layer's tar stream is cut into chunks that are compressed on their own
// (gzip members, zstd frames) and concatenated: the blob is one valid gzip
// or zstd stream for every reader, and a chunk whose bytes were compressed
// before is copied from the cache instead of compressed again. Where the
// cuts fall depends only on the entries' names and the chunk sizes, so a
// change to one file changes only the chunks around it.
const (
	// minChunk is the size a chunk reaches before it may end at an entry.
	minChunk = 1 << 20
	// maxChunk ends a chunk wherever it is (in a big file's data).
	maxChunk = 4 << 20
	// cutEvery: a chunk past minChunk ends before an entry whose name
	// hashes to 0 modulo cutEvery.
	cutEvery = 8
	// storeAbove is the size from which an incompressible file's data is
	// a stored chunk of its own.
	storeAbove = 64 << 10
)

// chunk is one independently compressed part of a layer's tar stream.
type chunk struct {
	Hash   [sha256.Size]byte // of its uncompressed bytes
	Len    int64
	Stored bool // incompressible data: stored, not deflated
}

// chunker takes a layer's tar stream, hashes it whole (the diffID) and
// cuts it into chunks. With emit set it also hands each chunk's bytes on,
// except those keep says are not needed (nil: all are).
type chunker struct {
	total  hash.Hash
	n      int64
	cur    hash.Hash
	curLen int64
	stored bool
	buf    []byte
	chunks []chunk
	emit   func(i int, c chunk, data []byte) error
	keep   func(i int) bool
	buffer func() []byte // a chunk buffer (default: a new one)
	// noHash skips hashing: the second pass over a layer knows the hashes
	// from the first, and checks lengths only (the sources are checked
	// against their walk as they are read).
	noHash bool
}

func newChunker() *chunker {
	return &chunker{total: sha256.New(), cur: sha256.New()}
}

func (c *chunker) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		part := p
		if room := maxChunk - c.curLen; int64(len(part)) > room {
			part = part[:room]
		}
		if !c.noHash {
			c.total.Write(part)
			c.cur.Write(part)
		}
		if c.emit != nil && c.wanted() {
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
			if err := c.cut(); err != nil {
				return written, err
			}
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

func (c *chunker) wanted() bool { return c.keep == nil || c.keep(len(c.chunks)) }

// entry is called before each entry's header: a stored chunk ends there,
// and a chunk past minChunk ends where the name says so.
func (c *chunker) entry(name string) error {
	if c.stored || (c.curLen >= minChunk && nameCut(name)) {
		return c.cut()
	}
	return nil
}

// storeNext makes the bytes that follow (an incompressible file's data) a
// stored chunk of their own, up to the next entry.
func (c *chunker) storeNext() error {
	if err := c.cut(); err != nil {
		return err
	}
	c.stored = true
	return nil
}

func nameCut(name string) bool {
	h := fnv.New32a()
	h.Write([]byte(name))
	return h.Sum32()%cutEvery == 0
}

// cut ends the current chunk, if it has any bytes.
func (c *chunker) cut() error {
	if c.curLen == 0 {
		c.stored = false
		return nil
	}
	ch := chunk{Len: c.curLen, Stored: c.stored}
	c.cur.Sum(ch.Hash[:0])
	i := len(c.chunks)
	c.chunks = append(c.chunks, ch)
	c.cur.Reset()
	c.curLen, c.stored = 0, false
	if c.emit == nil {
		return nil
	}
	data := c.buf
	c.buf = nil
	return c.emit(i, ch, data)
}

// finish ends the last chunk.
func (c *chunker) finish() error { return c.cut() }
