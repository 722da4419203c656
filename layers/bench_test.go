package layers

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// The benchmark tree is generated once per test binary and removed by
// TestMain.
var (
	benchOnce    sync.Once
	benchDir     string
	benchEntries []Entry
	benchBytes   int64
	benchErr     error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	if benchBaseDir != "" {
		os.RemoveAll(benchBaseDir)
	}
	if manyDir != "" {
		os.RemoveAll(manyDir)
	}
	os.Exit(code)
}

// benchTree returns the entries of a ~50 MB tree of mixed files: 60%
// compressible text (source-like), 40% random bytes (images, binaries), in
// sizes from 1 KiB to 1 MiB.
func benchTree(b *testing.B) ([]Entry, int64) {
	b.Helper()
	benchOnce.Do(func() {
		benchDir, benchErr = os.MkdirTemp("", "gantry-bench-")
		if benchErr != nil {
			return
		}
		r := rand.New(rand.NewChaCha8([32]byte{'g', 'a', 'n', 't', 'r', 'y'}))
		const total = 50 << 20
		var written int64
		for i := 0; written < total; i++ {
			size := 1<<10 + r.IntN(1<<20)
			var data []byte
			if r.IntN(10) < 6 {
				data = randomText(r, size)
			} else {
				data = make([]byte, size)
				for j := 0; j < len(data); j += 8 {
					v := r.Uint64()
					for k := 0; k < 8 && j+k < len(data); k++ {
						data[j+k] = byte(v >> (8 * k))
					}
				}
			}
			p := filepath.Join(benchDir, fmt.Sprintf("d%02d", i%17), fmt.Sprintf("f%04d.dat", i))
			if benchErr = os.MkdirAll(filepath.Dir(p), 0o755); benchErr != nil {
				return
			}
			if benchErr = os.WriteFile(p, data, 0o644); benchErr != nil {
				return
			}
			written += int64(size)
		}
		benchBytes = written
		benchEntries, benchErr = Walk(Spec{Sources: []Source{{From: benchDir, To: "/data"}}})
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchEntries, benchBytes
}

// BenchmarkWriteTar measures the tar stream alone (file reads and tar
// framing, no hashing or compression).
func BenchmarkWriteTar(b *testing.B) {
	entries, size := benchTree(b)
	bl := &Builder{MTime: testMTime}
	ctx := context.Background()
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		if err := bl.WriteTar(ctx, io.Discard, entries); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildGzip(b *testing.B) { benchBuild(b, Compression{Algorithm: Gzip}) }
func BenchmarkBuildZstd(b *testing.B) { benchBuild(b, Compression{Algorithm: Zstd}) }

// benchBuild measures a full Build (tar, diffID, compression, digest, blob
// written to the cache); every iteration has a new selector, so none is a
// cache hit.
func benchBuild(b *testing.B, c Compression) {
	entries, size := benchTree(b)
	cache, err := OpenCache(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(size)
	b.ResetTimer()
	var ratio float64
	for i := range b.N {
		bl := &Builder{Cache: cache, Compression: c, MTime: testMTime.Add(time.Duration(i) * time.Second)}
		l, err := bl.Build(ctx, entries)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if l.Cached() {
			b.Fatal("cache hit")
		}
		n, _ := l.Size()
		ratio = float64(n) / float64(l.UncompressedSize())
		os.Remove(l.Path())
		b.StartTimer()
	}
	b.ReportMetric(ratio, "compressed/raw")
}

// BenchmarkLargeLayer builds a layer of more than 1 GiB (a sparse file and a
// few small ones) and fails if the heap grows with the layer: everything is
// streamed, so the peak must stay far below the layer size.
func BenchmarkLargeLayer(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "src")
	writeTree(b, src, map[string]file{
		"a.txt":     {data: "small file\n"},
		"b/c.json":  {data: `{"k": "v"}`},
		"b/run.sh":  {data: "#!/bin/sh\n", mode: 0o755},
		"z/last.md": {data: "# last\n"},
	})
	const bigSize = 1<<30 + 100<<20 // 1.1 GiB
	big := filepath.Join(src, "big.img")
	f, err := os.Create(big)
	if err != nil {
		b.Fatal(err)
	}
	f.Close()
	if err := os.Truncate(big, bigSize); err != nil {
		b.Fatal(err)
	}
	entries, err := Walk(Spec{Sources: []Source{{From: src, To: "/"}}})
	if err != nil {
		b.Fatal(err)
	}
	cache, err := OpenCache(filepath.Join(dir, "cache"))
	if err != nil {
		b.Fatal(err)
	}

	runtime.GC()
	var peakHeap, peakSys uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapInuse)
			peakSys = max(peakSys, ms.Sys)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	b.SetBytes(bigSize)
	b.ResetTimer()
	for i := range b.N {
		bl := &Builder{Cache: cache, MTime: testMTime.Add(time.Duration(i) * time.Second)}
		l, err := bl.Build(context.Background(), entries)
		if err != nil {
			b.Fatal(err)
		}
		if l.UncompressedSize() <= bigSize {
			b.Fatalf("uncompressed size %d, want > %d", l.UncompressedSize(), bigSize)
		}
		b.StopTimer()
		os.Remove(l.Path())
		b.StartTimer()
	}
	b.StopTimer()
	close(stop)
	<-done

	peakMB := float64(peakHeap) / (1 << 20)
	b.ReportMetric(peakMB, "peak-heap-MB")
	b.ReportMetric(float64(peakSys)/(1<<20), "peak-sys-MB")
	if peakMB >= 100 {
		b.Fatalf("peak heap %.1f MB building a %d MB layer; want < 100 MB", peakMB, bigSize>>20)
	}
}
