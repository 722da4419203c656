package layers

import (
	"archive/tar"
	"bufio"
	"bytes"
	"container/heap"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

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

// indexWriter builds an index file from records added in tar order (a
// later record of the same path wins, as when the tar is extracted).
type indexWriter struct {
	tmpDir   string
	runBytes int

	buf      []byte   // encoded records of the current run
	offs     []uint32 // their offsets in buf
	runs     []*os.File
	contents *os.File
	cw       *bufio.Writer
	cLen     int64
	lastDir  string
	entries  int64
}

func newIndexWriter(tmpDir string, runBytes int) *indexWriter {
	if runBytes <= 0 {
		runBytes = indexRunBytes
	}
	return &indexWriter{tmpDir: tmpDir, runBytes: runBytes}
}

// close removes the writer's temporary files.
func (w *indexWriter) close() {
	for _, f := range w.runs {
		f.Close()
		os.Remove(f.Name())
	}
	w.runs = nil
	if w.contents != nil {
		w.contents.Close()
		os.Remove(w.contents.Name())
		w.contents = nil
	}
}

func (w *indexWriter) add(r *idxRec) error {
	w.offs = append(w.offs, uint32(len(w.buf)))
	w.buf = r.encode(w.buf)
	if len(w.buf) >= w.runBytes {
		return w.flushRun()
	}
	return nil
}

// implyParents adds the directories above name that no earlier entry
// implied (entries of one directory usually follow each other in a tar).
func (w *indexWriter) implyParents(name string) error {
	parent := parentDir(name)
	for d := parent; d != "" && d != w.lastDir && !strings.HasPrefix(w.lastDir, d+"/"); d = parentDir(d) {
		if err := w.add(&idxRec{key: indexKey(d), flags: recImplied, f: BaseFile{Type: tar.TypeDir, Mode: 0o755}}); err != nil {
			return err
		}
	}
	w.lastDir = parent
	return nil
}

func parentDir(name string) string {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return ""
	}
	return name[:i]
}

// keep stores n bytes of r as the content of rec.
func (w *indexWriter) keep(rec *idxRec, r io.Reader, n int64) error {
	if w.contents == nil {
		f, err := os.CreateTemp(w.tmpDir, "index-contents-*")
		if err != nil {
			return fmt.Errorf("creating base index in cache: %w", err)
		}
		w.contents, w.cw = f, bufio.NewWriter(f)
	}
	got, err := io.Copy(w.cw, io.LimitReader(r, n))
	if err != nil {
		return err
	}
	rec.flags |= recContent
	rec.cOff, rec.cLen = w.cLen, got
	w.cLen += got
	return nil
}

// sortRun sorts the current run by key; equal keys keep their tar order.
func (w *indexWriter) sortRun() {
	slices.SortStableFunc(w.offs, func(a, b uint32) int {
		return bytes.Compare(recordKey(w.buf[a:]), recordKey(w.buf[b:]))
	})
}

func (w *indexWriter) flushRun() error {
	w.sortRun()
	f, err := os.CreateTemp(w.tmpDir, "index-run-*")
	if err != nil {
		return fmt.Errorf("creating base index in cache: %w", err)
	}
	w.runs = append(w.runs, f)
	bw := bufio.NewWriterSize(f, 256<<10)
	for _, o := range w.offs {
		n := binary.LittleEndian.Uint32(w.buf[o:])
		if _, err := bw.Write(w.buf[o : o+4+n]); err != nil {
			return fmt.Errorf("writing base index run: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing base index run: %w", err)
	}
	w.buf, w.offs = w.buf[:0], w.offs[:0]
	return nil
}

// recSource yields encoded records (with their length) in key order, equal
// keys in tar order.
type recSource interface {
	next() ([]byte, error) // io.EOF at the end
}

type memSource struct {
	w *indexWriter
	i int
}

func (m *memSource) next() ([]byte, error) {
	if m.i >= len(m.w.offs) {
		return nil, io.EOF
	}
	o := m.w.offs[m.i]
	m.i++
	n := binary.LittleEndian.Uint32(m.w.buf[o:])
	return m.w.buf[o : o+4+n], nil
}

// runReader reads one sorted run back.
type runReader struct {
	r   *bufio.Reader
	cur []byte
	idx int // the run's position: earlier runs hold earlier entries
}

func (r *runReader) advance() error {
	var l [4]byte
	if _, err := io.ReadFull(r.r, l[:]); err != nil {
		if errors.Is(err, io.EOF) {
			r.cur = nil
			return io.EOF
		}
		return err
	}
	n := binary.LittleEndian.Uint32(l[:])
	r.cur = append(r.cur[:0], l[:]...)
	r.cur = slices.Grow(r.cur, int(n))[:4+int(n)]
	_, err := io.ReadFull(r.r, r.cur[4:])
	return err
}

type runHeap []*runReader

func (h runHeap) Len() int { return len(h) }
func (h runHeap) Less(i, j int) bool {
	if c := bytes.Compare(recordKey(h[i].cur), recordKey(h[j].cur)); c != 0 {
		return c < 0
	}
	return h[i].idx < h[j].idx
}
func (h runHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)   { *h = append(*h, x.(*runReader)) }
func (h *runHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// mergeSource merges the sorted runs.
type mergeSource struct {
	h    runHeap
	last *runReader // to advance before the next pick
	out  []byte
}

func newMergeSource(runs []*os.File) (*mergeSource, error) {
	m := &mergeSource{}
	for i, f := range runs {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		r := &runReader{r: bufio.NewReaderSize(f, 64<<10), idx: i}
		if err := r.advance(); err != nil {
			if errors.Is(err, io.EOF) {
				continue
			}
			return nil, fmt.Errorf("reading base index run: %w", err)
		}
		m.h = append(m.h, r)
	}
	heap.Init(&m.h)
	return m, nil
}

func (m *mergeSource) next() ([]byte, error) {
	if m.last != nil {
		if err := m.last.advance(); err != nil {
			if !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("reading base index run: %w", err)
			}
			heap.Pop(&m.h)
		} else {
			heap.Fix(&m.h, 0)
		}
		m.last = nil
	}
	if len(m.h) == 0 {
		return nil, io.EOF
	}
	m.last = m.h[0]
	m.out = append(m.out[:0], m.last.cur...)
	return m.out, nil
}

// fold merges the records of one path (in tar order) into one.
func fold(cur *idxRec, r idxRec) {
	if r.flags&recPresent != 0 {
		keep := cur.flags &^ (recPresent | recContent)
		*cur = r
		cur.flags |= keep
		return
	}
	cur.flags |= r.flags & (recWhiteout | recOpaque | recImplied)
}

// finish writes the index file to dst (atomically) for a layer whose tar
// stream was uncompressed bytes long.
func (w *indexWriter) finish(ctx context.Context, dst string, uncompressed int64) error {
	var src recSource
	if len(w.runs) == 0 {
		w.sortRun()
		src = &memSource{w: w}
	} else {
		if err := w.flushRun(); err != nil {
			return err
		}
		w.buf, w.offs = nil, nil
		m, err := newMergeSource(w.runs)
		if err != nil {
			return err
		}
		src = m
	}
	if w.cw != nil {
		if err := w.cw.Flush(); err != nil {
			return fmt.Errorf("writing base index contents: %w", err)
		}
	}

	out, err := os.CreateTemp(w.tmpDir, "index-*")
	if err != nil {
		return fmt.Errorf("creating base index in cache: %w", err)
	}
	offs, err := os.CreateTemp(w.tmpDir, "index-offsets-*")
	if err != nil {
		out.Close()
		os.Remove(out.Name())
		return fmt.Errorf("creating base index in cache: %w", err)
	}
	defer func() {
		offs.Close()
		os.Remove(offs.Name())
		if out != nil {
			out.Close()
			os.Remove(out.Name())
		}
	}()
	ow := bufio.NewWriterSize(out, 256<<10)
	fw := bufio.NewWriterSize(offs, 64<<10)
	if _, err := ow.Write(make([]byte, indexHeaderSize)); err != nil {
		return err
	}
	pos := int64(indexHeaderSize)
	var count int64
	var enc []byte
	emit := func(r *idxRec) error {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(pos))
		if _, err := fw.Write(b[:]); err != nil {
			return err
		}
		enc = r.encode(enc[:0])
		if _, err := ow.Write(enc); err != nil {
			return err
		}
		pos += int64(len(enc))
		count++
		return nil
	}
	var cur idxRec
	have := false
	for i := 0; ; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		b, err := src.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		r, err := decodeRec(b[4:])
		if err != nil {
			return err
		}
		if have && r.key == cur.key {
			fold(&cur, r)
			continue
		}
		if have {
			if err := emit(&cur); err != nil {
				return fmt.Errorf("writing base index: %w", err)
			}
		}
		cur, have = r, true
	}
	if have {
		if err := emit(&cur); err != nil {
			return fmt.Errorf("writing base index: %w", err)
		}
	}
	if err := fw.Flush(); err != nil {
		return fmt.Errorf("writing base index: %w", err)
	}
	offsetsOff := pos
	if _, err := offs.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := io.Copy(ow, offs); err != nil {
		return fmt.Errorf("writing base index: %w", err)
	}
	contentsOff := offsetsOff + 8*count
	if w.contents != nil {
		if _, err := w.contents.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if _, err := io.Copy(ow, w.contents); err != nil {
			return fmt.Errorf("writing base index: %w", err)
		}
	}
	if err := ow.Flush(); err != nil {
		return fmt.Errorf("writing base index: %w", err)
	}
	var hdr [indexHeaderSize]byte
	copy(hdr[:], indexMagic)
	for i, v := range []int64{uncompressed, count, offsetsOff, contentsOff, contentsOff + w.cLen, w.entries} {
		binary.LittleEndian.PutUint64(hdr[8+8*i:], uint64(v))
	}
	if _, err := out.WriteAt(hdr[:], 0); err != nil {
		return fmt.Errorf("writing base index: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("writing base index: %w", err)
	}
	if err := os.Rename(out.Name(), dst); err != nil {
		return fmt.Errorf("storing base index in cache: %w", err)
	}
	out = nil
	return nil
}

// baseIndex reads an index file in place.
type baseIndex struct {
	r                       io.ReaderAt
	uncompressedSize        int64
	count                   int64
	offsetsOff, contentsOff int64
	fileSize, entries       int64
}

var errBadIndex = errors.New("not a gantry base index, or damaged")

// openIndex checks the header of an index of fileSize bytes read from r.
func openIndex(r io.ReaderAt, fileSize int64) (*baseIndex, error) {
	var hdr [indexHeaderSize]byte
	if _, err := r.ReadAt(hdr[:], 0); err != nil {
		return nil, errBadIndex
	}
	if string(hdr[:8]) != indexMagic {
		return nil, errBadIndex
	}
	v := func(i int) int64 { return int64(binary.LittleEndian.Uint64(hdr[8+8*i:])) }
	ix := &baseIndex{r: r, uncompressedSize: v(0), count: v(1), offsetsOff: v(2), contentsOff: v(3), fileSize: v(4), entries: v(5)}
	if ix.fileSize != fileSize || ix.count < 0 || ix.offsetsOff < indexHeaderSize || ix.contentsOff != ix.offsetsOff+8*ix.count || ix.contentsOff > fileSize {
		return nil, errBadIndex
	}
	return ix, nil
}

// openIndexFile opens the index at p: read into memory if small (closer is
// then a no-op), else to be read in place until closer is called.
func openIndexFile(p string) (ix *baseIndex, closer func(), err error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if fi.Size() <= indexInMemory {
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, nil, err
		}
		ix, err := openIndex(bytes.NewReader(b), int64(len(b)))
		return ix, func() {}, err
	}
	ix, err = openIndex(f, fi.Size())
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return ix, func() { f.Close() }, nil
}

func (ix *baseIndex) offsetAt(i int64) (int64, error) {
	var b [8]byte
	if _, err := ix.r.ReadAt(b[:], ix.offsetsOff+8*i); err != nil {
		return 0, fmt.Errorf("%w: %v", errBadIndex, err)
	}
	off := int64(binary.LittleEndian.Uint64(b[:]))
	if off < indexHeaderSize || off >= ix.offsetsOff {
		return 0, errBadIndex
	}
	return off, nil
}

// recAt reads the i-th record.
func (ix *baseIndex) recAt(i int64) (idxRec, error) {
	off, err := ix.offsetAt(i)
	if err != nil {
		return idxRec{}, err
	}
	var small [256]byte
	buf := small[:min(int64(len(small)), ix.offsetsOff-off)]
	n, err := ix.r.ReadAt(buf, off)
	if n < 4 {
		return idxRec{}, fmt.Errorf("%w: %v", errBadIndex, err)
	}
	l := int64(binary.LittleEndian.Uint32(buf))
	if off+4+l > ix.offsetsOff {
		return idxRec{}, errBadIndex
	}
	if 4+l > int64(n) {
		buf = make([]byte, 4+l)
		if _, err := ix.r.ReadAt(buf, off); err != nil {
			return idxRec{}, fmt.Errorf("%w: %v", errBadIndex, err)
		}
	}
	return decodeRec(buf[4 : 4+l])
}

// search returns the position of the first record whose key is >= key.
func (ix *baseIndex) search(key string) (int64, error) {
	lo, hi := int64(0), ix.count
	for lo < hi {
		mid := int64(uint64(lo+hi) >> 1)
		r, err := ix.recAt(mid)
		if err != nil {
			return 0, err
		}
		if r.key < key {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// get returns the record of path name, if the layer has one.
func (ix *baseIndex) get(name string) (idxRec, bool, error) {
	key := indexKey(name)
	if name == "" {
		key = "\x00"
	}
	i, err := ix.search(key)
	if err != nil || i >= ix.count {
		return idxRec{}, false, err
	}
	r, err := ix.recAt(i)
	if err != nil || r.key != key {
		return idxRec{}, false, err
	}
	return r, true, nil
}

// children calls fn with the records of the direct children of dir.
func (ix *baseIndex) children(dir string, fn func(name string, r idxRec) error) error {
	prefix := dir + "\x00"
	i, err := ix.search(prefix)
	if err != nil {
		return err
	}
	for ; i < ix.count; i++ {
		r, err := ix.recAt(i)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(r.key, prefix) {
			return nil
		}
		if base := r.key[len(prefix):]; base != "" {
			if err := fn(base, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// content reads the content kept for r.
func (ix *baseIndex) content(r idxRec) ([]byte, error) {
	if r.flags&recContent == 0 {
		return nil, nil
	}
	if r.cOff < 0 || r.cLen < 0 || ix.contentsOff+r.cOff+r.cLen > ix.fileSize {
		return nil, errBadIndex
	}
	b := make([]byte, r.cLen)
	if _, err := ix.r.ReadAt(b, ix.contentsOff+r.cOff); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadIndex, err)
	}
	return b, nil
}

// hides reports whether this layer deletes name from the layers below it: a
// whiteout of name or of a parent, an opaque parent, or a parent replaced by
// something that is not a directory.
func (ix *baseIndex) hides(name string) (bool, error) {
	if r, ok, err := ix.get(name); err != nil || ok && r.flags&recWhiteout != 0 {
		return ok, err
	}
	for d := name; d != ""; {
		d = parentDir(d)
		r, ok, err := ix.get(d)
		if err != nil {
			return false, err
		}
		if !ok {
			continue
		}
		if r.flags&(recWhiteout|recOpaque) != 0 || r.flags&recPresent != 0 && r.f.Type != tar.TypeDir {
			return true, nil
		}
	}
	return false, nil
}

func indexPath(c *Cache, dig string) string { return filepath.Join(c.Dir(), "base", dig+".idx") }
