package layers

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"
)

// member is one chunk of the blob being written: compressed by a worker,
// or copied from a blob in the cache (at).
type member struct {
	c    chunk
	data []byte    // uncompressed, then compressed
	at   *chunkLoc // where the cache has it compressed already
	err  error
	done chan struct{}
}

// memberWriter writes the blob: the compressed chunks in order, each
// either compressed now or copied from the cache.
type memberWriter struct {
	b    *Builder
	comp Compression
	out  io.Writer
	off  int64
	// where each chunk landed in the blob
	written []chunkSpan
	pool    chan []byte
	// compressed counts the uncompressed bytes compressed
	compressed int64
	// scanned is what this pass saw (the scan's diffID if there was one)
	scanned *scanned
	known   sums // the host files' sums, filled in as they are read
	copyBuf []byte
	// cached is where the cache has chunks compressed already
	cached map[chunkKey]chunkLoc
}

type chunkSpan struct {
	c        chunk
	off, len int64
}

// writeMembers writes entries' blob to out, compressing only the chunks
// the cache does not have: each chunk is looked up as it ends. With sc (a
// scan made first) the stream's diffID is known and not hashed again;
// every source is checked against its walk as it is read, so one that
// changed since fails the build.
func (b *Builder) writeMembers(ctx context.Context, comp Compression, entries []Entry, sc *scanned, known sums, out io.Writer, progress func(int64)) (*memberWriter, error) {
	mw := &memberWriter{b: b, comp: comp, out: out, scanned: sc, known: known, pool: make(chan []byte, 4), cached: b.Cache.chunkIndex(comp)}
	workers := runtime.GOMAXPROCS(0)
	g, gctx := errgroup.WithContext(ctx)
	queue := make(chan *member, workers) // in order, for the writer
	jobs := make(chan *member, 1)
	for range workers {
		g.Go(func() error { return mw.compressor(gctx, jobs) })
	}
	g.Go(func() error {
		defer close(queue)
		defer close(jobs)
		return mw.produce(gctx, entries, queue, jobs, progress)
	})
	werr := mw.drain(queue)
	if werr != nil {
		// stop the others, and let the producer finish
		g.Go(func() error { return werr })
		for range queue {
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return mw, nil
}

// produce writes the tar stream into a chunker whose chunks go to the
// queue (all) and to the compressors (those the cache lacks).
func (mw *memberWriter) produce(ctx context.Context, entries []Entry, queue, jobs chan<- *member, progress func(int64)) error {
	ch := newChunker(entries)
	ch.buffer = mw.buffer
	ch.noTotal = mw.scanned != nil
	ch.emit = func(c chunk, data []byte) error {
		m := mw.member(c, data)
		select {
		case queue <- m:
		case <-ctx.Done():
			return ctx.Err()
		}
		if m.at != nil {
			return nil
		}
		select {
		case jobs <- m:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	found := &notes{cut: ch, files: []FileDigest{}, sums: mw.known}
	var w io.Writer = ch
	if progress != nil {
		w = &countingWriter{w: ch, report: progress}
	}
	if err := mw.b.writeTar(ctx, w, entries, found); err != nil {
		return err
	}
	if err := ch.finish(); err != nil {
		return err
	}
	if mw.scanned == nil {
		mw.scanned = &scanned{diffID: hashOf(ch.total), size: ch.n, found: *found}
		mw.scanned.sortNotes()
	} else if ch.n != mw.scanned.size {
		return fmt.Errorf("a layer source %w", errChanged)
	}
	return nil
}

// member is a chunk as the writer gets it: to compress, or where the cache
// has it compressed.
func (mw *memberWriter) member(c chunk, data []byte) *member {
	m := &member{c: c, data: data, done: make(chan struct{})}
	if at, ok := mw.cached[chunkKey{c.Hash, c.Stored}]; ok {
		m.at = &at
		mw.release(m.data)
		m.data = nil
		close(m.done)
	}
	return m
}

// buffer returns a chunk buffer, reusing one the writer is done with.
func (mw *memberWriter) buffer() []byte {
	select {
	case b := <-mw.pool:
		return b[:0]
	default:
		return make([]byte, 0, maxChunk)
	}
}

func (mw *memberWriter) release(b []byte) {
	if cap(b) < maxChunk {
		return
	}
	select {
	case mw.pool <- b:
	default:
	}
}

// compressor compresses the members it is given, each on its own.
func (mw *memberWriter) compressor(ctx context.Context, jobs <-chan *member) error {
	var out bytes.Buffer
	zc := &memberCompressor{comp: mw.comp}
	defer zc.close()
	for m := range jobs {
		if err := ctx.Err(); err != nil {
			m.err = err
			close(m.done)
			continue
		}
		out.Reset()
		m.err = zc.compress(&out, m.data, m.c.Stored)
		mw.release(m.data)
		m.data = append(mw.buffer(), out.Bytes()...)
		close(m.done)
	}
	return nil
}

// drain writes the members in order as they are ready.
func (mw *memberWriter) drain(queue <-chan *member) error {
	for m := range queue {
		<-m.done
		if m.err != nil {
			return m.err
		}
		if m.at != nil {
			if err := mw.copyFrom(m.at); err != nil {
				return err
			}
			mw.written = append(mw.written, chunkSpan{c: m.c, off: mw.off - m.at.Length, len: m.at.Length})
			continue
		}
		if _, err := mw.out.Write(m.data); err != nil {
			return fmt.Errorf("writing layer: %w", err)
		}
		mw.written = append(mw.written, chunkSpan{c: m.c, off: mw.off, len: int64(len(m.data))})
		mw.off += int64(len(m.data))
		mw.compressed += m.c.Len
		mw.release(m.data)
	}
	return nil
}

// copyFrom copies a compressed chunk from the cached blob that has it.
func (mw *memberWriter) copyFrom(at *chunkLoc) error {
	f, err := os.Open(mw.b.Cache.blobPath(at.Blob))
	if err != nil {
		return fmt.Errorf("reading a cached chunk: %w", err)
	}
	defer f.Close()
	if mw.copyBuf == nil {
		mw.copyBuf = make([]byte, 64<<10)
	}
	n, err := io.CopyBuffer(mw.out, io.NewSectionReader(f, at.Offset, at.Length), mw.copyBuf)
	if err == nil && n != at.Length {
		err = fmt.Errorf("%s is shorter than its record says", f.Name())
	}
	if err != nil {
		return fmt.Errorf("reading a cached chunk: %w", err)
	}
	mw.off += n
	return nil
}

// memberCompressor compresses one chunk at a time into a self-contained
// gzip member or zstd frame, at the level asked; a stored chunk is not
// deflated (gzip level 0) or gets zstd's fastest level, whose encoder
// writes raw blocks for data it cannot shrink. One per worker, reused.
type memberCompressor struct {
	comp       Compression
	gz, gzNone *gzip.Writer
	zs, zsFast *zstd.Encoder
}

func (z *memberCompressor) compress(out *bytes.Buffer, data []byte, stored bool) error {
	if z.comp.Algorithm == Zstd {
		enc, err := z.zstd(stored)
		if err != nil {
			return err
		}
		out.Write(enc.EncodeAll(data, nil))
		return nil
	}
	zw, err := z.gzip(stored)
	if err != nil {
		return err
	}
	zw.Reset(out)
	if _, err := zw.Write(data); err != nil {
		return fmt.Errorf("compressing layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compressing layer: %w", err)
	}
	return nil
}

func (z *memberCompressor) gzip(stored bool) (*gzip.Writer, error) {
	w, level := &z.gz, z.comp.Level
	if stored {
		w, level = &z.gzNone, gzip.NoCompression
	}
	if *w == nil {
		zw, err := gzip.NewWriterLevel(io.Discard, level)
		if err != nil {
			return nil, fmt.Errorf("starting gzip: %w", err)
		}
		*w = zw
	}
	return *w, nil
}

func (z *memberCompressor) zstd(stored bool) (*zstd.Encoder, error) {
	e, level := &z.zs, zstd.EncoderLevel(z.comp.Level)
	if stored {
		e, level = &z.zsFast, zstd.SpeedFastest
	}
	if *e == nil {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("starting zstd: %w", err)
		}
		*e = enc
	}
	return *e, nil
}

func (z *memberCompressor) close() {
	for _, e := range []*zstd.Encoder{z.zs, z.zsFast} {
		if e != nil {
			e.Close()
		}
	}
}
