package layers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// manyDir is a tree of 50k small files in 10k directories (a node_modules or
// site-packages), generated once per test binary and removed by TestMain.
var (
	manyOnce sync.Once
	manyDir  string
	manyErr  error
)

func manyFiles(b *testing.B) string {
	b.Helper()
	manyOnce.Do(func() {
		if manyDir, manyErr = os.MkdirTemp("", "gantry-many-"); manyErr != nil {
			return
		}
		for i := 0; i < 50_000 && manyErr == nil; i++ {
			d := filepath.Join(manyDir, fmt.Sprintf("pkg%04d", i/25), "lib", fmt.Sprintf("sub%d", i%3))
			if i%25 < 3 {
				manyErr = os.MkdirAll(d, 0o755)
			}
			if manyErr == nil {
				manyErr = os.WriteFile(filepath.Join(d, fmt.Sprintf("file-%06d.js", i)), []byte(fmt.Sprintf("module.exports=%d;\n", i)), 0o644)
			}
		}
	})
	if manyErr != nil {
		b.Fatal(manyErr)
	}
	return manyDir
}

// BenchmarkWalkManyFiles walks 50k files and 10k directories: the part of a
// no-change rebuild that grows with the file count.
func BenchmarkWalkManyFiles(b *testing.B) {
	dir := manyFiles(b)
	b.ReportAllocs()
	for b.Loop() {
		es, err := Walk(Spec{Sources: []Source{{From: dir, To: "/app/node_modules"}}})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(es)), "entries")
	}
}

// BenchmarkBuildManyFiles builds a cold layer of those 50k small files:
// opening and reading them is most of it.
func BenchmarkBuildManyFiles(b *testing.B) {
	entries, err := Walk(Spec{Sources: []Source{{From: manyFiles(b), To: "/app/node_modules"}}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		c, err := OpenCache(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := (&Builder{Cache: c}).Build(context.Background(), entries); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(entries))*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
