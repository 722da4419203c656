package layers

import (
	"bufio"
	"bytes"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

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
