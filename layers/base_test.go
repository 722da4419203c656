package layers

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
)

// tarEntry is one member of a hand-written base layer.
type tarEntry struct {
	name     string
	typ      byte
	mode     int64
	uid, gid int
	data     string
	linkname string
}

// makeTar writes entries as a tar stream, padded with zeros to a multiple
// of pad bytes (GNU tar pads to 10240).
func makeTar(t testing.TB, entries []tarEntry, pad int) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: e.name, Typeflag: typ, Mode: e.mode, Uid: e.uid, Gid: e.gid, Linkname: e.linkname, ModTime: testMTime}
		if typ == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if pad > 0 && buf.Len()%pad != 0 {
		buf.Write(make([]byte, pad-buf.Len()%pad))
	}
	return buf.Bytes()
}

func gzipOf(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstdOf(t testing.TB, b []byte) []byte {
	t.Helper()
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	return zw.EncodeAll(b, nil)
}

// countingLayer counts how often a base layer's blob is opened.
type countingLayer struct {
	v1.Layer
	opened *atomic.Int64
}

func (c countingLayer) Compressed() (io.ReadCloser, error) {
	c.opened.Add(1)
	return c.Layer.Compressed()
}

const (
	basePasswd0 = "root:x:0:0:root:/root:/bin/sh\n"
	basePasswd1 = "root:x:0:0:root:/root:/bin/sh\nbin:x:1:1::/:/sbin/nologin\n"
	baseGroup0  = "root:x:0:\nbin:x:1:"
)

// testBase is a 3-layer base: gzip (via tarball), gzip (static, padded like
// GNU tar, "./" names) and zstd.
type testBase struct {
	tars   [][]byte
	layers []v1.Layer
	opened *atomic.Int64
}

func newTestBase(t testing.TB) *testBase {
	t.Helper()
	bottom := makeTar(t, []tarEntry{
		{name: "bin", typ: tar.TypeSymlink, mode: 0o777, linkname: "usr/bin"},
		{name: "data/", typ: tar.TypeDir, mode: 0o700, uid: 5, gid: 5},
		{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		{name: "etc/group", mode: 0o644, data: baseGroup0},
		{name: "etc/passwd", mode: 0o644, data: basePasswd0},
		{name: "etc/shadow", mode: 0o640, gid: 42, data: "root:*:1::::::\n"},
		{name: "home/", typ: tar.TypeDir, mode: 0o755},
		{name: "home/user/", typ: tar.TypeDir, mode: 0o700, uid: 1000, gid: 1000},
		{name: "opt/", typ: tar.TypeDir, mode: 0o755},
		{name: "opt/d/", typ: tar.TypeDir, mode: 0o755},
		{name: "opt/d/f", mode: 0o644, data: "f"},
		{name: "srv/", typ: tar.TypeDir, mode: 0o750, uid: 33, gid: 33},
		{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		{name: "tmp/gone", mode: 0o644, data: "gone"},
		{name: "usr/", typ: tar.TypeDir, mode: 0o755},
		{name: "usr/bin/", typ: tar.TypeDir, mode: 0o755},
		{name: "usr/bin/tool", mode: 0o755, data: strings.Repeat("tool", 1000)},
		{name: "usr/bin/tool2", typ: tar.TypeLink, mode: 0o755, linkname: "usr/bin/tool"},
		{name: "var/", typ: tar.TypeDir, mode: 0o755},
		{name: "var/cache/", typ: tar.TypeDir, mode: 0o700},
		{name: "var/cache/old", mode: 0o644, data: "old"},
	}, 0)
	middle := makeTar(t, []tarEntry{
		{name: "./etc/", typ: tar.TypeDir, mode: 0o755},
		{name: "./etc/passwd", mode: 0o640, gid: 15, data: basePasswd1},
		{name: "./opt/", typ: tar.TypeDir, mode: 0o755},
		{name: "./opt/d", mode: 0o600, data: "now a file"},
		{name: "./tmp/", typ: tar.TypeDir, mode: 0o1777},
		{name: "./tmp/.wh.gone", mode: 0o644},
		{name: "./var/", typ: tar.TypeDir, mode: 0o755},
		{name: "./var/cache/", typ: tar.TypeDir, mode: 0o755},
		{name: "./var/cache/.wh..wh..opq", mode: 0o644},
		{name: "./var/cache/new", mode: 0o644, data: "new"},
	}, 10240)
	top := makeTar(t, []tarEntry{
		{name: ".wh.home", mode: 0o644},
		{name: "app/", typ: tar.TypeDir, mode: 0o755},
		{name: "app/main", mode: 0o755, uid: 7, gid: 8, data: "main"},
	}, 0)

	opened := &atomic.Int64{}
	l0, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(bottom)), nil })
	if err != nil {
		t.Fatal(err)
	}
	l1 := static.NewLayer(gzipOf(t, middle), types.OCILayer)
	l2 := static.NewLayer(zstdOf(t, top), types.OCILayerZStd)
	return &testBase{
		tars:   [][]byte{bottom, middle, top},
		layers: []v1.Layer{countingLayer{l0, opened}, countingLayer{l1, opened}, countingLayer{l2, opened}},
		opened: opened,
	}
}

// lookupData is Lookup and, for a regular file the index keeps, ReadFile;
// the Size is left out, for tables of metadata.
func lookupData(ctx context.Context, fsys *BaseFS, name string) (BaseFile, []byte, bool, error) {
	f, ok, err := fsys.Lookup(ctx, name)
	f.Size = 0
	if err != nil || !ok || f.Type != tar.TypeReg || !contentPath(cleanName(name)) {
		return f, nil, ok, err
	}
	data, err := fsys.ReadFile(ctx, name)
	return f, data, ok, err
}

func TestBaseFSLookup(t *testing.T) {
	base := newTestBase(t)
	tests := []struct {
		name    string
		found   bool
		file    BaseFile
		data    string
		scanned int // layers read to answer, from a fresh BaseFS
	}{
		{"app/main", true, BaseFile{Type: tar.TypeReg, Mode: 0o755, UID: 7, GID: 8}, "", 1},
		{"/app/main/", true, BaseFile{Type: tar.TypeReg, Mode: 0o755, UID: 7, GID: 8}, "", 1},
		{"app/../app/./main", true, BaseFile{Type: tar.TypeReg, Mode: 0o755, UID: 7, GID: 8}, "", 1},
		{"app", true, BaseFile{Type: tar.TypeDir, Mode: 0o755}, "", 1},
		{"home", false, BaseFile{}, "", 1},      // whiteout in the top layer
		{"home/user", false, BaseFile{}, "", 1}, // ... hides what is below it
		{"etc/passwd", true, BaseFile{Type: tar.TypeReg, Mode: 0o640, GID: 15}, basePasswd1, 2},
		{"etc/shadow", true, BaseFile{Type: tar.TypeReg, Mode: 0o640, GID: 42}, "", 3}, // contents not kept
		{"etc/group", true, BaseFile{Type: tar.TypeReg, Mode: 0o644}, baseGroup0, 3},
		{"opt/d", true, BaseFile{Type: tar.TypeReg, Mode: 0o600}, "", 2}, // dir replaced by a file
		{"opt/d/f", false, BaseFile{}, "", 2},                            // ... so its old contents are gone
		{"var/cache", true, BaseFile{Type: tar.TypeDir, Mode: 0o755}, "", 2},
		{"var/cache/new", true, BaseFile{Type: tar.TypeReg, Mode: 0o644}, "", 2},
		{"var/cache/old", false, BaseFile{}, "", 2}, // opaque directory
		{"var/cache/.wh..wh..opq", false, BaseFile{}, "", 2},
		{"tmp/gone", false, BaseFile{}, "", 2},     // whiteout
		{"tmp/.wh.gone", false, BaseFile{}, "", 3}, // whiteouts are not files
		{"tmp", true, BaseFile{Type: tar.TypeDir, Mode: 0o1777}, "", 2},
		{"srv", true, BaseFile{Type: tar.TypeDir, Mode: 0o750, UID: 33, GID: 33}, "", 3},
		{"bin", true, BaseFile{Type: tar.TypeSymlink, Mode: 0o777, Linkname: "usr/bin"}, "", 3},
		{"usr/bin/tool2", true, BaseFile{Type: tar.TypeLink, Mode: 0o755, Linkname: "usr/bin/tool"}, "", 3},
		{"nope", false, BaseFile{}, "", 3},
		{"usr/bin/nope", false, BaseFile{}, "", 3},
	}
	ctx := context.Background()
	cache := newCache(t)
	shared := NewBaseFS(cache, base.layers)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := NewBaseFS(newCache(t), base.layers)
			f, data, ok, err := lookupData(ctx, fsys, tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.found || f != tt.file || string(data) != tt.data {
				t.Errorf("Lookup = %+v %q %v; want %+v %q %v", f, data, ok, tt.file, tt.data, tt.found)
			}
			if fsys.Scanned != tt.scanned {
				t.Errorf("scanned %d layers, want %d", fsys.Scanned, tt.scanned)
			}
			// the shared BaseFS gives the same answer and scans each layer once
			f2, data2, ok2, err := lookupData(ctx, shared, tt.name)
			if err != nil || f2 != f || !bytes.Equal(data2, data) || ok2 != ok {
				t.Errorf("shared BaseFS: %+v %q %v %v", f2, data2, ok2, err)
			}
		})
	}
	if shared.Scanned != 3 {
		t.Errorf("shared BaseFS scanned %d layers, want 3", shared.Scanned)
	}

	// A second BaseFS over the same cache reads no layer at all.
	before := base.opened.Load()
	again := NewBaseFS(cache, base.layers)
	for _, tt := range tests {
		f, data, ok, err := lookupData(ctx, again, tt.name)
		if err != nil || ok != tt.found || f != tt.file || string(data) != tt.data {
			t.Errorf("cached %s: %+v %q %v %v", tt.name, f, data, ok, err)
		}
	}
	for i := range base.layers {
		if _, err := again.UncompressedSize(ctx, i); err != nil {
			t.Error(err)
		}
	}
	if again.Scanned != 0 || base.opened.Load() != before {
		t.Errorf("second BaseFS scanned %d layers, opened %d blobs", again.Scanned, base.opened.Load()-before)
	}
}

func TestBaseFSUncompressedSize(t *testing.T) {
	base := newTestBase(t)
	ctx := context.Background()
	fsys := NewBaseFS(newCache(t), base.layers)
	for i, tb := range base.tars {
		n, err := fsys.UncompressedSize(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		if n != int64(len(tb)) {
			t.Errorf("layer %d: UncompressedSize %d, tar has %d bytes", i, n, len(tb))
		}
		if fsys.Scanned != i+1 {
			t.Errorf("after layer %d: scanned %d", i, fsys.Scanned)
		}
	}
	if len(base.tars[1])%10240 != 0 {
		t.Fatal("test setup: middle layer not padded")
	}
	// Also for a base layer stored uncompressed.
	raw := static.NewLayer(base.tars[0], types.OCIUncompressedLayer)
	f := NewBaseFS(newCache(t), []v1.Layer{raw})
	if n, err := f.UncompressedSize(ctx, 0); err != nil || n != int64(len(base.tars[0])) {
		t.Errorf("uncompressed layer: %d %v, want %d", n, err, len(base.tars[0]))
	}
	if _, data, ok, err := lookupData(ctx, f, "etc/passwd"); err != nil || !ok || string(data) != basePasswd0 {
		t.Errorf("uncompressed layer passwd: %q %v %v", data, ok, err)
	}
}

// tailOf is a Tail hook that reads the end of a layer's blob, counting.
func tailOf(count *atomic.Int64) func(ctx context.Context, l v1.Layer, n int64) ([]byte, error) {
	return func(ctx context.Context, l v1.Layer, n int64) ([]byte, error) {
		count.Add(1)
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			return nil, err
		}
		return b[len(b)-int(n):], nil
	}
}

// TestBaseFSTail: UncompressedSizeHint takes a gzip layer's size from its
// trailer (read with Tail, cached) as a lower bound, an exact size once the
// layer's index is cached, and scans other layers; UncompressedSize is
// always exact.
func TestBaseFSTail(t *testing.T) {
	base := newTestBase(t)
	ctx := context.Background()
	var tails atomic.Int64
	tail := tailOf(&tails)
	cache := newCache(t)
	fsys := NewBaseFS(cache, base.layers)
	fsys.Tail = tail
	for i, tb := range base.tars {
		n, exact, err := fsys.UncompressedSizeHint(ctx, i)
		// gzip layers 0 and 1 by trailer (single members: right, but not
		// known to be), zstd layer 2 by a scan
		if err != nil || n != int64(len(tb)) || exact != (i == 2) {
			t.Errorf("layer %d: hint %d exact %v %v, want %d", i, n, exact, err, len(tb))
		}
	}
	if tails.Load() != 2 || fsys.Scanned != 1 {
		t.Errorf("tails %d, scanned %d; want 2 and 1", tails.Load(), fsys.Scanned)
	}
	again := NewBaseFS(cache, base.layers)
	again.Tail = tail
	for i, tb := range base.tars {
		if n, _, err := again.UncompressedSizeHint(ctx, i); err != nil || n != int64(len(tb)) {
			t.Errorf("cached hint of layer %d: %d %v", i, n, err)
		}
	}
	if tails.Load() != 2 || again.Scanned != 0 {
		t.Errorf("second BaseFS: tails %d, scanned %d; want no more", tails.Load(), again.Scanned)
	}
	// Exact sizes read the gzip layers, once; hints are then exact.
	for i, tb := range base.tars {
		if n, err := again.UncompressedSize(ctx, i); err != nil || n != int64(len(tb)) {
			t.Errorf("exact size of layer %d: %d %v", i, n, err)
		}
		if n, exact, err := again.UncompressedSizeHint(ctx, i); err != nil || n != int64(len(tb)) || !exact {
			t.Errorf("hint of indexed layer %d: %d %v %v", i, n, exact, err)
		}
	}
	if tails.Load() != 2 || again.Scanned != 2 {
		t.Errorf("exact sizes: tails %d, scanned %d; want 2 and 2", tails.Load(), again.Scanned)
	}

	// A failing Tail falls back to reading the layer.
	failing := NewBaseFS(newCache(t), base.layers)
	failing.Tail = func(context.Context, v1.Layer, int64) ([]byte, error) { return nil, errors.New("no range requests") }
	if n, exact, err := failing.UncompressedSizeHint(ctx, 0); err != nil || n != int64(len(base.tars[0])) || !exact || failing.Scanned != 1 {
		t.Errorf("failing Tail: %d %v %v scanned %d", n, exact, err, failing.Scanned)
	}
	// Lookups still scan: the trailer answers sizes only.
	if _, ok, err := fsys.Lookup(ctx, "etc/group"); err != nil || !ok {
		t.Errorf("lookup after trailer sizes: %v %v", ok, err)
	}
}

// unreadableLayer is a registry's gzip layer known only by its size and
// its ends (what range requests return): reading it fails.
type unreadableLayer struct {
	size int64
	tail []byte
}

func (u unreadableLayer) Digest() (v1.Hash, error) {
	return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("4b", 32)}, nil
}
func (u unreadableLayer) DiffID() (v1.Hash, error) { return u.Digest() }
func (u unreadableLayer) Compressed() (io.ReadCloser, error) {
	return nil, errors.New("reading this layer is not allowed in the test")
}
func (u unreadableLayer) Uncompressed() (io.ReadCloser, error) { return u.Compressed() }
func (u unreadableLayer) Size() (int64, error)                 { return u.size, nil }
func (u unreadableLayer) MediaType() (types.MediaType, error)  { return types.DockerLayer, nil }

// TestBaseFSSizeNotFromTrailer: the gzip trailer never passes for an
// exact size. A 4.5 GiB layer (9 MB of gzip) has ISIZE 536,880,128 (its
// size mod 2^32); a layer of two gzip members has the second one's size.
// UncompressedSize reads such layers (or fails if it cannot), and the hint
// reports the trailer as a lower bound only.
func TestBaseFSSizeNotFromTrailer(t *testing.T) {
	ctx := context.Background()
	const real = 4<<30 + 512<<20 + 9216 // a 4.5 GiB file and its tar framing
	trailer := binary.LittleEndian.AppendUint32([]byte{0x12, 0x34, 0x56, 0x78}, uint32(real%(1<<32)))
	wrapped := unreadableLayer{size: 9 << 20, tail: trailer}
	fsys := NewBaseFS(newCache(t), []v1.Layer{wrapped})
	fsys.Tail = func(_ context.Context, l v1.Layer, n int64) ([]byte, error) {
		return trailer[len(trailer)-int(n):], nil
	}
	if n, err := fsys.UncompressedSize(ctx, 0); err == nil {
		t.Errorf("4.5 GiB layer: UncompressedSize %d from the trailer, want it read (and fail here)", n)
	}
	if n, exact, err := fsys.UncompressedSizeHint(ctx, 0); err != nil || exact || n != 536_880_128 {
		t.Errorf("4.5 GiB layer hint: %d exact %v %v; want the trailer's 536880128 as a lower bound", n, exact, err)
	}

	// two gzip members: 3,149,824 bytes of tar, the last 6,656 of them in
	// the second member
	var entries []tarEntry
	for i := range 3 {
		entries = append(entries, tarEntry{name: fmt.Sprintf("f%d", i), data: strings.Repeat(fmt.Sprintf("%d", i), 1<<20)})
	}
	tb := makeTar(t, entries, 0)
	tb = append(tb, make([]byte, 3_149_824-len(tb))...)
	multi := append(gzipOf(t, tb[:len(tb)-6656]), gzipOf(t, tb[len(tb)-6656:])...)
	ml := static.NewLayer(multi, types.DockerLayer)
	var tails atomic.Int64
	mf := NewBaseFS(newCache(t), []v1.Layer{ml})
	mf.Tail = tailOf(&tails)
	if n, exact, err := mf.UncompressedSizeHint(ctx, 0); err != nil || exact || n != 6656 {
		t.Errorf("two-member hint: %d exact %v %v; want 6656, inexact", n, exact, err)
	}
	if n, err := mf.UncompressedSize(ctx, 0); err != nil || n != 3_149_824 {
		t.Errorf("two-member layer: UncompressedSize %d %v, want 3149824", n, err)
	}
	if n, exact, err := mf.UncompressedSizeHint(ctx, 0); err != nil || !exact || n != 3_149_824 {
		t.Errorf("two-member hint once indexed: %d %v %v", n, exact, err)
	}
}

// TestBaseFSErrors: an unreadable or damaged base layer is an error naming
// its digest, and nothing wrong is cached for it.
func TestBaseFSErrors(t *testing.T) {
	base := newTestBase(t)
	gz := gzipOf(t, base.tars[0])
	truncated := static.NewLayer(gz[:len(gz)/2], types.DockerLayer)
	ctx := context.Background()
	cache := newCache(t)
	fsys := NewBaseFS(cache, []v1.Layer{truncated})
	_, _, err := fsys.Lookup(ctx, "etc/passwd")
	dig, _ := truncated.Digest()
	if err == nil || !strings.Contains(err.Error(), dig.String()) {
		t.Errorf("truncated layer: %v", err)
	}
	if _, err := NewBaseFS(cache, []v1.Layer{truncated}).UncompressedSize(ctx, 0); err == nil {
		t.Error("truncated layer: UncompressedSize succeeded")
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := NewBaseFS(newCache(t), base.layers).Lookup(cctx, "etc/passwd"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled lookup: %v", err)
	}
}

func TestUserEntries(t *testing.T) {
	base := newTestBase(t)
	ctx := context.Background()
	app := User{Name: "app", UID: 1000, Group: "app", GID: 1000}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	fsys := NewBaseFS(newCache(t), base.layers)
	upper := map[string]Entry{
		"app":     {Name: "app", Type: tar.TypeDir, Mode: 0o750},
		"app/bin": {Name: "app/bin", Type: tar.TypeReg, Mode: 0o755},
	}
	entries, err := UserEntries(ctx, fsys, upper, app, []string{"/srv", "/data/new/", "/app", "/srv", "/", "/data", "/tmp"}, log)
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{Name: "app", Type: tar.TypeDir, Mode: 0o750, UID: 1000, GID: 1000},      // mode from the new layers
		{Name: "data", Type: tar.TypeDir, Mode: 0o700, UID: 1000, GID: 1000},     // base mode, user's owner
		{Name: "data/new", Type: tar.TypeDir, Mode: 0o755, UID: 1000, GID: 1000}, // created
		{Name: "etc/group", Type: tar.TypeReg, Mode: 0o644, Data: []byte(baseGroup0 + "\napp:x:1000:\n")},
		{Name: "etc/passwd", Type: tar.TypeReg, Mode: 0o640, GID: 15, Data: []byte(basePasswd1 + "app:x:1000:1000::/:/sbin/nologin\n")},
		{Name: "srv", Type: tar.TypeDir, Mode: 0o750, UID: 1000, GID: 1000},
		{Name: "tmp", Type: tar.TypeDir, Mode: 0o1777, UID: 1000, GID: 1000},
	}
	for i := range want {
		want[i].Size = int64(len(want[i].Data))
	}
	if !reflect.DeepEqual(entries, want) {
		t.Errorf("entries:\n got %+v\nwant %+v", entries, want)
	}
	if logs.Len() != 0 {
		t.Errorf("unexpected log: %s", logs.String())
	}

	// The entries build into a layer with that content.
	l := mustBuild(t, &Builder{Cache: newCache(t), MTime: testMTime}, entries)
	members := layerTar(t, l, testMTime)
	if got := memberNames(members); !reflect.DeepEqual(got, []string{"app/", "data/", "data/new/", "etc/group", "etc/passwd", "srv/", "tmp/"}) {
		t.Errorf("layer members %q", got)
	}
	for _, m := range members {
		if m.hdr.Name == "etc/passwd" && (string(m.data) != string(want[4].Data) || m.hdr.Mode != 0o640 || m.hdr.Gid != 15) {
			t.Errorf("etc/passwd in the layer: %+v %q", m.hdr, m.data)
		}
	}

	// The same user again: files unchanged (already merged base).
	again, err := UserEntries(ctx, fsys, nil, User{Name: "bin", UID: 1, Group: "bin", GID: 1}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	if string(again[0].Data) != baseGroup0 || string(again[1].Data) != basePasswd1 {
		t.Errorf("existing user changed the files: %q %q", again[0].Data, again[1].Data)
	}
}

func TestUserEntriesErrors(t *testing.T) {
	base := newTestBase(t)
	ctx := context.Background()
	app := User{Name: "app", UID: 1000, Group: "app", GID: 1000}
	log := slog.New(slog.DiscardHandler)
	tests := []struct {
		name  string
		u     User
		upper map[string]Entry
		owned []string
		want  string
	}{
		{"owned is a file in the base", app, nil, []string{"/etc/passwd"}, "not a directory in the base"},
		{"owned is a symlink in the base", app, nil, []string{"/bin"}, "not a directory in the base"},
		{"owned is a file in a new layer", app, map[string]Entry{"app/x": {Name: "app/x", Type: tar.TypeReg}}, []string{"/app/x"}, "is a file in a new layer"},
		{"owned is relative", app, nil, []string{"srv"}, "not an absolute path"},
		{"uid taken", User{Name: "app", UID: 1, Group: "app", GID: 1000}, nil, nil, `"bin"`},
		{"group clash", User{Name: "app", UID: 1000, Group: "root", GID: 1000}, nil, nil, "/etc/group"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := UserEntries(ctx, NewBaseFS(newCache(t), base.layers), tt.upper, tt.u, tt.owned, log)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestUserEntriesNoPasswd: a base without /etc/passwd and /etc/group (or
// with them deleted by a whiteout) gets new ones, with a warning.
func TestUserEntriesNoPasswd(t *testing.T) {
	ctx := context.Background()
	app := User{Name: "app", UID: 1000, Group: "app", GID: 1000}
	scratch := static.NewLayer(gzipOf(t, makeTar(t, []tarEntry{{name: "hello", mode: 0o755, data: "hi"}}, 0)), types.DockerLayer)
	tb := newTestBase(t)
	deleted := static.NewLayer(gzipOf(t, makeTar(t, []tarEntry{
		{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		{name: "etc/.wh.passwd"},
		{name: "etc/.wh.group"},
	}, 0)), types.DockerLayer)
	bases := map[string][]v1.Layer{
		"no layers":           nil,
		"no /etc":             {scratch},
		"deleted by whiteout": append(append([]v1.Layer(nil), tb.layers...), deleted),
	}
	for name, layers := range bases {
		t.Run(name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			entries, err := UserEntries(ctx, NewBaseFS(newCache(t), layers), nil, app, []string{"/home/app"}, log)
			if err != nil {
				t.Fatal(err)
			}
			want := []Entry{
				{Name: "etc/group", Type: tar.TypeReg, Mode: 0o644, Data: []byte("root:x:0:\napp:x:1000:\n")},
				{Name: "etc/passwd", Type: tar.TypeReg, Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/:/sbin/nologin\n")},
				{Name: "home/app", Type: tar.TypeDir, Mode: 0o755, UID: 1000, GID: 1000},
			}
			for i := range want {
				want[i].Size = int64(len(want[i].Data))
			}
			if !reflect.DeepEqual(entries, want) {
				t.Errorf("got %+v\nwant %+v", entries, want)
			}
			if !strings.Contains(logs.String(), "/etc/passwd") || !strings.Contains(logs.String(), "/etc/group") {
				t.Errorf("no warning about the missing files: %q", logs.String())
			}
		})
	}
	// A nil logger is allowed.
	if _, err := UserEntries(ctx, NewBaseFS(newCache(t), nil), nil, app, nil, nil); err != nil {
		t.Errorf("nil logger: %v", err)
	}
}

func TestCacheBlob(t *testing.T) {
	cache := newCache(t)
	content := []byte(`{"architecture":"amd64"}`)
	h, _, _ := v1.SHA256(bytes.NewReader(content))
	fetches := 0
	fetch := func(b []byte) func() ([]byte, error) {
		return func() ([]byte, error) { fetches++; return b, nil }
	}
	for i := range 2 {
		got, err := cache.Blob(h, fetch(content))
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("Blob %d: %q %v", i, got, err)
		}
	}
	if fetches != 1 {
		t.Errorf("fetched %d times, want once", fetches)
	}
	// A wrong blob from the source is refused and not stored.
	other := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	if _, err := cache.Blob(other, fetch(content)); err == nil {
		t.Error("mismatching fetch accepted")
	}
	if _, err := cache.Blob(other, func() ([]byte, error) { return nil, errors.New("offline") }); err == nil || !strings.Contains(err.Error(), "offline") {
		t.Errorf("fetch error: %v (a wrong blob must not have been cached)", err)
	}
	// A damaged stored blob is fetched again.
	if err := os.WriteFile(cache.blobPath(h), []byte(`{"architecture":"arm64"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	fetches = 0
	if got, err := cache.Blob(h, fetch(content)); err != nil || !bytes.Equal(got, content) || fetches != 1 {
		t.Errorf("damaged blob: %q %v, %d fetches", got, err, fetches)
	}
}
