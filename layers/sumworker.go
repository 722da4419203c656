package layers

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
)

// A scan hashes the tar stream (the diffID) and each host file (the file
// list and the content key): two SHA-256 passes over the same bytes. The
// sum worker takes the second onto another core: the scan hands it a copy
// of each piece of a file as the piece goes into the tar.

// sumWorker hashes files on its own goroutine, for one pass.
type sumWorker struct {
	sums sums
	jobs chan sumJob
	free chan []byte // buffers the worker is done with
	done chan struct{}
}

// sumJob is a piece of entry i's file, or (data nil) its end.
type sumJob struct {
	i    int
	data []byte
}

const sumPiece = 64 << 10

// startSums starts a worker recording into s; finish must be called.
func startSums(s sums) *sumWorker {
	w := &sumWorker{sums: s, jobs: make(chan sumJob, 8), free: make(chan []byte, 8), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *sumWorker) run() {
	defer close(w.done)
	h := sha256.New()
	for j := range w.jobs {
		if j.data == nil {
			h.Sum(w.sums[j.i][:0])
			h.Reset()
			continue
		}
		h.Write(j.data)
		select {
		case w.free <- j.data[:0]:
		default:
		}
	}
}

// finish waits until every file handed over is hashed.
func (w *sumWorker) finish() {
	close(w.jobs)
	<-w.done
}

// pieces is the writer for entry i's content: it copies what it is given
// to the worker.
type pieces struct {
	w *sumWorker
	i int
}

func (p pieces) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		var buf []byte
		select {
		case buf = <-p.w.free:
		default:
			buf = make([]byte, 0, sumPiece)
		}
		k := min(len(b), sumPiece)
		p.w.jobs <- sumJob{i: p.i, data: append(buf, b[:k]...)}
		b = b[k:]
	}
	return n, nil
}

// hashing returns the writer to copy entry i's host file into (w, and a
// hash when its sum is wanted) and done, to call after the copy: it
// records the sum in n.sums (now, or when the worker is finished). A pass
// that cuts chunks hashes every file it writes, since the chunks'
// identities stand on the sums of the bytes written: a sum known from an
// earlier read must come out the same, or the file changed in between.
func (n *notes) hashing(w io.Writer, i int) (io.Writer, func() error) {
	known := n.sums[i]
	if known != ([sha256.Size]byte{}) && n.cut == nil {
		return w, func() error { return nil }
	}
	if n.worker != nil && n.cut == nil { // chunk identities need the sum at once
		p := pieces{w: n.worker, i: i}
		return io.MultiWriter(w, p), func() error { n.worker.jobs <- sumJob{i: i}; return nil }
	}
	h := sha256.New()
	return io.MultiWriter(w, h), func() error {
		h.Sum(n.sums[i][:0])
		return sameSum(known, n.sums[i])
	}
}

// sameSum fails if a sum known from an earlier read of a file (zero when
// there was none) is not got, the sum of what is read now.
func sameSum(known, got [sha256.Size]byte) error {
	if known != ([sha256.Size]byte{}) && known != got {
		return fmt.Errorf("%w (its content differs from an earlier read)", errChanged)
	}
	return nil
}

// sawSource lists entry i, named name, with its host file's sum: now, or
// when the worker is finished (finishSums).
func (n *notes) sawSource(name string, i int) {
	if n.worker != nil {
		n.pending = append(n.pending, [2]int{len(n.files), i})
		n.files = append(n.files, FileDigest{Name: name})
		return
	}
	n.sawFile(name, n.sums[i][:])
}

// finishSums waits for the worker, if any, and fills in the file list.
func (n *notes) finishSums() {
	if n.worker == nil {
		return
	}
	n.worker.finish()
	n.worker = nil
	for _, p := range n.pending {
		n.files[p[0]].SHA256 = hex.EncodeToString(n.sums[p[1]][:])
	}
	n.pending = nil
}
