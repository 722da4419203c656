package layers

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

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

// finish writes the index file to dst (atomically) for a layer whose tar
// stream was uncompressed bytes long.
func (w *indexWriter) finish(ctx context.Context, dst string, uncompressed int64) error {
	src, err := w.sortedRecords()
	if err != nil {
		return err
	}
	if err := w.flushContents(); err != nil {
		return err
	}
	o, err := createIndexOutput(w.tmpDir)
	if err != nil {
		return err
	}
	defer o.discard()
	// room for the header, written last, when its offsets are known
	if _, err := o.ow.Write(make([]byte, indexHeaderSize)); err != nil {
		return err
	}
	if err := o.writeRecords(ctx, src); err != nil {
		return err
	}
	offsetsOff, contentsOff, err := o.appendSections(w.contents)
	if err != nil {
		return err
	}
	hdr := indexHeader(uncompressed, o.count, offsetsOff, contentsOff, contentsOff+w.cLen, w.entries)
	return o.store(hdr, dst)
}

// sortedRecords is every record added, in key order: the current run sorted
// in memory if it is the only one, else all the runs on disk merged.
func (w *indexWriter) sortedRecords() (recSource, error) {
	if len(w.runs) == 0 {
		w.sortRun()
		return &memSource{w: w}, nil
	}
	if err := w.flushRun(); err != nil {
		return nil, err
	}
	w.buf, w.offs = nil, nil
	m, err := newMergeSource(w.runs)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// flushContents writes out the buffered kept contents, if there are any.
func (w *indexWriter) flushContents() error {
	if w.cw == nil {
		return nil
	}
	if err := w.cw.Flush(); err != nil {
		return fmt.Errorf("writing base index contents: %w", err)
	}
	return nil
}

// indexOutput is an index file being written: the records go to out, and
// their offsets to a temporary file that is appended after them.
type indexOutput struct {
	out, offs  *os.File
	ow, fw     *bufio.Writer
	pos, count int64 // the next record's offset in out, records written
	enc        []byte
}

func createIndexOutput(tmpDir string) (*indexOutput, error) {
	out, err := os.CreateTemp(tmpDir, "index-*")
	if err != nil {
		return nil, fmt.Errorf("creating base index in cache: %w", err)
	}
	offs, err := os.CreateTemp(tmpDir, "index-offsets-*")
	if err != nil {
		out.Close()
		os.Remove(out.Name())
		return nil, fmt.Errorf("creating base index in cache: %w", err)
	}
	return &indexOutput{
		out: out, offs: offs,
		ow: bufio.NewWriterSize(out, 256<<10), fw: bufio.NewWriterSize(offs, 64<<10),
		pos: indexHeaderSize,
	}, nil
}

// discard removes the temporary files, and the index too unless stored.
func (o *indexOutput) discard() {
	o.offs.Close()
	os.Remove(o.offs.Name())
	if o.out != nil {
		o.out.Close()
		os.Remove(o.out.Name())
	}
}

// writeRecords writes src's records, those of one path folded into one.
func (o *indexOutput) writeRecords(ctx context.Context, src recSource) error {
	var cur idxRec
	have := false
	for i := 0; ; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		r, err := nextRecord(src)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if have && r.key == cur.key {
			fold(&cur, r)
			continue
		}
		if have {
			if err := o.emit(&cur); err != nil {
				return err
			}
		}
		cur, have = r, true
	}
	if !have {
		return nil
	}
	return o.emit(&cur)
}

// nextRecord decodes src's next record; io.EOF at the end.
func nextRecord(src recSource) (idxRec, error) {
	b, err := src.next()
	if err != nil {
		return idxRec{}, err
	}
	return decodeRec(b[4:])
}

// emit writes one record and its offset.
func (o *indexOutput) emit(r *idxRec) error {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(o.pos))
	if _, err := o.fw.Write(b[:]); err != nil {
		return fmt.Errorf("writing base index: %w", err)
	}
	o.enc = r.encode(o.enc[:0])
	if _, err := o.ow.Write(o.enc); err != nil {
		return fmt.Errorf("writing base index: %w", err)
	}
	o.pos += int64(len(o.enc))
	o.count++
	return nil
}

// appendSections appends the offset table and the kept contents (from
// contents, which may be nil) after the records, and returns where each
// section starts.
func (o *indexOutput) appendSections(contents *os.File) (offsetsOff, contentsOff int64, err error) {
	if err := o.fw.Flush(); err != nil {
		return 0, 0, fmt.Errorf("writing base index: %w", err)
	}
	offsetsOff = o.pos
	if err := appendTempFile(o.ow, o.offs); err != nil {
		return 0, 0, err
	}
	contentsOff = offsetsOff + 8*o.count
	if contents != nil {
		if err := appendTempFile(o.ow, contents); err != nil {
			return 0, 0, err
		}
	}
	if err := o.ow.Flush(); err != nil {
		return 0, 0, fmt.Errorf("writing base index: %w", err)
	}
	return offsetsOff, contentsOff, nil
}

// appendTempFile copies the whole of f, from its start, to w.
func appendTempFile(w io.Writer, f *os.File) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("writing base index: %w", err)
	}
	return nil
}

// indexHeader is the header of an index file (see the layout in baseindex.go).
func indexHeader(uncompressed, count, offsetsOff, contentsOff, fileSize, entries int64) [indexHeaderSize]byte {
	var hdr [indexHeaderSize]byte
	copy(hdr[:], indexMagic)
	for i, v := range []int64{uncompressed, count, offsetsOff, contentsOff, fileSize, entries} {
		binary.LittleEndian.PutUint64(hdr[8+8*i:], uint64(v))
	}
	return hdr
}

// store writes hdr at the start of the index and renames it to dst.
func (o *indexOutput) store(hdr [indexHeaderSize]byte, dst string) error {
	if _, err := o.out.WriteAt(hdr[:], 0); err != nil {
		return fmt.Errorf("writing base index: %w", err)
	}
	if err := o.out.Close(); err != nil {
		return fmt.Errorf("writing base index: %w", err)
	}
	if err := os.Rename(o.out.Name(), dst); err != nil {
		return fmt.Errorf("storing base index in cache: %w", err)
	}
	o.out = nil
	return nil
}
