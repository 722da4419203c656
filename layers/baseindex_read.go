package layers

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

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
