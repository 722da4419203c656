// Command floor measures the least work any tool must do to turn a directory
// into a new layer: walk it, write the deterministic tar, hash it, compress it
// with gantry's compressor (gzip level 1 by default) and store the blob. It
// uses gantry's own layers package with a fresh, empty cache, and pushes
// nothing.
//
//	go run ./bench/floor -dir DIR [-to /usr/share/nginx/html] [-cache-dir TMP]
//
// It prints the seconds taken, then the layer's sizes.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/gantry-dev/gantry/layers"
)

func main() {
	dir := flag.String("dir", "", "directory to turn into a layer (required)")
	to := flag.String("to", "/usr/share/nginx/html", "where the directory goes in the image")
	cacheDir := flag.String("cache-dir", "", "empty directory for the blob (default: a new temporary one, removed after)")
	algo := flag.String("compression", "gzip", "gzip or zstd")
	level := flag.Int("level", 1, "compression level")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "floor: -dir is required")
		os.Exit(2)
	}
	if *cacheDir == "" {
		d, err := os.MkdirTemp("", "gantry-floor-*")
		if err != nil {
			fail(err)
		}
		defer os.RemoveAll(d)
		*cacheDir = d
	}
	comp, err := layers.Compression{Algorithm: *algo, Level: *level}.Normalize()
	if err != nil {
		fail(err)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err)
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	c, err := layers.OpenCache(*cacheDir)
	if err != nil {
		fail(err)
	}
	entries, err := layers.Walk(layers.Spec{
		Sources: []layers.Source{{From: *dir, To: *to}},
		Owner:   &layers.Owner{UID: 1001, GID: 1001},
	})
	if err != nil {
		fail(err)
	}
	b := &layers.Builder{Cache: c, Compression: comp, MTime: time.Unix(0, 0)}
	l, err := b.Build(context.Background(), entries)
	if err != nil {
		fail(err)
	}
	took := time.Since(start)
	size, _ := l.Size()
	fmt.Printf("%.3f\n", took.Seconds())
	fmt.Fprintf(os.Stderr, "floor: %d entries, %d bytes tar, %d bytes %s\n", len(entries), l.UncompressedSize(), size, comp.Algorithm)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "floor:", err)
	os.Exit(1)
}
