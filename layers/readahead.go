package layers

import (
	"archive/tar"
	"crypto/sha256"
	"fmt"
	"io"
	"runtime"
	"sync"
)

// readAheadMax is the largest host file a tar pass reads ahead: a file this
// small costs more in open, fstat and close than in reading, and a tree
// of many of them (node_modules, site-packages) is read at the speed of
// those calls, one file at a time.
const readAheadMax = 64 << 10

// readAheadFiles bounds how many files are read ahead of the writer, and
// so the buffers held (at most readAheadFiles+workers of readAheadMax).
const readAheadFiles = 48

// readAhead reads the small host files of a tar pass, in entry order, on
// GOMAXPROCS workers, while the pass writes what comes before them. The
// pass takes each file's content from next instead of opening the file.
type readAhead struct {
	results chan *readResult // in entry order, at most readAheadFiles ahead
	free    chan []byte      // buffers the pass is done with
	stop    chan struct{}
	wg      sync.WaitGroup
}

type readResult struct {
	i    int // the entry
	data []byte
	sum  [sha256.Size]byte // of data
	err  error
	done chan struct{} // closed once data, sum or err is set
}

// aheadOK reports whether a pass reads e ahead: a small regular file read
// from the host as it is (a precompressed sibling is gzipped from it).
func aheadOK(e *Entry) bool {
	return e.Type == tar.TypeReg && e.Source != "" && e.Data == nil && !e.Gzip && e.Size <= readAheadMax
}

// startReadAhead starts reading the small files of entries, if there are
// enough to gain from it; close must be called (nil is a no-op).
func (b *Builder) startReadAhead(entries []Entry) *readAhead {
	workers := runtime.GOMAXPROCS(0)
	n := 0
	for i := range entries {
		if aheadOK(&entries[i]) {
			n++
		}
	}
	if workers < 2 || n < 2*readAheadFiles {
		return nil
	}
	ra := &readAhead{
		results: make(chan *readResult, readAheadFiles),
		free:    make(chan []byte, readAheadFiles+workers),
		stop:    make(chan struct{}),
	}
	// a result leaves ra.results before its job is taken at most once (the
	// one the pass waits for): jobs has room for every job queued
	jobs := make(chan *readResult, readAheadFiles+1)
	ra.wg.Go(func() { ra.dispatch(entries, jobs) })
	for range workers {
		ra.wg.Go(func() { ra.work(b, entries, jobs) })
	}
	return ra
}

// dispatch hands out the small files of entries in order, each to
// ra.results (for the pass) and to jobs (for a worker), until the pass
// stops it, also when ctx ends.
func (ra *readAhead) dispatch(entries []Entry, jobs chan<- *readResult) {
	defer close(jobs)
	for i := range entries {
		if !aheadOK(&entries[i]) {
			continue
		}
		r := &readResult{i: i, done: make(chan struct{})}
		select {
		case ra.results <- r:
		case <-ra.stop:
			return
		}
		select {
		case jobs <- r:
		case <-ra.stop:
			return
		}
	}
}

// work reads and hashes the files of jobs into reused buffers.
func (ra *readAhead) work(b *Builder, entries []Entry, jobs <-chan *readResult) {
	for r := range jobs {
		select {
		case <-ra.stop:
			return
		default:
		}
		var buf []byte
		select {
		case buf = <-ra.free:
		default:
			buf = make([]byte, readAheadMax)
		}
		if r.data, r.err = b.readSmall(&entries[r.i], buf); r.err == nil {
			r.sum = sha256.Sum256(r.data)
		}
		close(r.done)
	}
}

// readSmall reads e's host file whole into buf, as copyFile would: the
// file must be the one walked, and of the walked size.
func (b *Builder) readSmall(e *Entry, buf []byte) ([]byte, error) {
	f, err := b.openSource(e)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := io.ReadFull(f, buf[:e.Size])
	if err == io.ErrUnexpectedEOF {
		return nil, fmt.Errorf("layer source %s: %w (was %d bytes, read %d)", e.Source, errChanged, e.Size, n)
	}
	if err != nil {
		return nil, fmt.Errorf("reading layer source %s: %w", e.Source, err)
	}
	return buf[:n], sameFile(f, e)
}

// next waits for the content of entry i, the next small file of the pass,
// and its SHA-256.
func (ra *readAhead) next(i int) ([]byte, [sha256.Size]byte, error) {
	r := <-ra.results
	if r.i != i {
		panic(fmt.Sprintf("layers: read ahead entry %d, the pass is at %d", r.i, i))
	}
	<-r.done
	return r.data, r.sum, r.err
}

// release gives back a buffer next returned, once the pass is done with it.
func (ra *readAhead) release(data []byte) {
	if cap(data) < readAheadMax {
		return
	}
	select {
	case ra.free <- data[:cap(data)]:
	default:
	}
}

// close stops the reading and waits for the workers.
func (ra *readAhead) close() {
	if ra == nil {
		return
	}
	close(ra.stop)
	ra.wg.Wait()
}
