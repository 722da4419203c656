package layers

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

// fileLayer is a gzip base layer whose blob is a file, so a benchmark's
// base layer does not sit in the heap it measures.
type fileLayer struct {
	path   string
	digest v1.Hash
	size   int64
}

func (f *fileLayer) Digest() (v1.Hash, error) { return f.digest, nil }
func (f *fileLayer) DiffID() (v1.Hash, error) {
	return v1.Hash{}, errors.New("fileLayer: no diffID")
}
func (f *fileLayer) Compressed() (io.ReadCloser, error) { return os.Open(f.path) }
func (f *fileLayer) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("fileLayer: not uncompressed")
}
func (f *fileLayer) Size() (int64, error)                { return f.size, nil }
func (f *fileLayer) MediaType() (types.MediaType, error) { return types.DockerLayer, nil }

var (
	benchBaseMu     sync.Mutex
	benchBaseLayers = map[int]*fileLayer{}
	benchBaseDir    string
)

// benchBaseLayer writes (once per test binary) a gzip layer of n empty
// regular files in directories of 1000, with /etc/passwd and /etc/group at
// the end of the stream.
func benchBaseLayer(b *testing.B, n int) *fileLayer {
	b.Helper()
	benchBaseMu.Lock()
	defer benchBaseMu.Unlock()
	if l := benchBaseLayers[n]; l != nil {
		return l
	}
	if benchBaseDir == "" {
		d, err := os.MkdirTemp("", "gantry-bench-base-")
		if err != nil {
			b.Fatal(err)
		}
		benchBaseDir = d
	}
	p := filepath.Join(benchBaseDir, fmt.Sprintf("layer-%d.tar.gz", n))
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(f, h)}
	bw := bufio.NewWriterSize(cw, 1<<20)
	zw, _ := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	write := func(hdr *tar.Header, data string) {
		hdr.ModTime = testMTime
		hdr.Size = int64(len(data))
		if err := tw.WriteHeader(hdr); err != nil {
			b.Fatal(err)
		}
		if _, err := io.WriteString(tw, data); err != nil {
			b.Fatal(err)
		}
	}
	for i := range n {
		if i%1000 == 0 {
			write(&tar.Header{Name: fmt.Sprintf("usr/share/bomb/d%05d/", i/1000), Typeflag: tar.TypeDir, Mode: 0o755}, "")
		}
		write(&tar.Header{Name: fmt.Sprintf("usr/share/bomb/d%05d/f%08d", i/1000, i), Typeflag: tar.TypeReg, Mode: 0o644}, "")
	}
	write(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	write(&tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644}, basePasswd1)
	write(&tar.Header{Name: "etc/group", Typeflag: tar.TypeReg, Mode: 0o644}, baseGroup0)
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	l := &fileLayer{path: p, digest: hashOf(h), size: cw.n}
	benchBaseLayers[n] = l
	return l
}

// peakHeap samples the heap in use until stop is called, which returns the
// peak above what was in use when it started, in MB.
func peakHeap() (stop func() float64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() float64 {
		close(done)
		<-finished
		if peak < base {
			return 0
		}
		return float64(peak-base) / (1 << 20)
	}
}

// BenchmarkBaseIndex measures reading a base layer's index: "cold" scans
// the layer into a fresh cache and looks up /etc/passwd; "warm" opens the
// cached index in a new BaseFS and looks up /etc/passwd, /etc/group and a
// directory. It reports the peak heap above the starting point.
func BenchmarkBaseIndex(b *testing.B) {
	ctx := context.Background()
	for _, size := range []struct {
		name string
		n    int
	}{{"normal-10k", 10_000}, {"bomb-2M", 2_000_000}} {
		b.Run(size.name+"/cold", func(b *testing.B) {
			l := benchBaseLayer(b, size.n)
			b.ReportAllocs()
			b.SetBytes(l.size)
			stop := peakHeap()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				dir, err := os.MkdirTemp("", "gantry-bench-cache-")
				if err != nil {
					b.Fatal(err)
				}
				cache, err := OpenCache(dir)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				benchLookups(ctx, b, NewBaseFS(cache, []v1.Layer{l}))
				b.StopTimer()
				os.RemoveAll(dir)
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(stop(), "peak-heap-MB")
		})
		b.Run(size.name+"/warm", func(b *testing.B) {
			l := benchBaseLayer(b, size.n)
			cache, err := OpenCache(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			benchLookups(ctx, b, NewBaseFS(cache, []v1.Layer{l}))
			b.ReportAllocs()
			stop := peakHeap()
			b.ResetTimer()
			for range b.N {
				fsys := NewBaseFS(cache, []v1.Layer{l})
				benchLookups(ctx, b, fsys)
				if fsys.Scanned != 0 {
					b.Fatal("warm lookup scanned the layer")
				}
			}
			b.StopTimer()
			b.ReportMetric(stop(), "peak-heap-MB")
		})
	}
}

func benchLookups(ctx context.Context, b *testing.B, fsys *BaseFS) {
	b.Helper()
	for _, name := range []string{"etc/passwd", "etc/group", "usr/share/bomb/d00003"} {
		if _, ok, err := fsys.Lookup(ctx, name); err != nil || !ok {
			b.Fatalf("Lookup %s: %v %v", name, ok, err)
		}
	}
}
