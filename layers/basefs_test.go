package layers

import (
	"archive/tar"
	"context"
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// linkedBase is a three-layer base with symlinks (relative, absolute,
// merged /usr, loops, an escape), a hard link, whiteouts, an opaque
// directory and directories only their contents imply.
func linkedBase(t *testing.T) []v1.Layer {
	t.Helper()
	bottom := makeTar(t, []tarEntry{
		{name: "bin", typ: tar.TypeSymlink, linkname: "/usr/bin"},
		{name: "data/file", data: "x"},
		{name: "escape", typ: tar.TypeSymlink, linkname: "../../.."},
		{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		{name: "etc/os-release", typ: tar.TypeSymlink, linkname: "../usr/lib/os-release"},
		{name: "lib", typ: tar.TypeSymlink, linkname: "usr/lib"},
		{name: "loop1", typ: tar.TypeSymlink, linkname: "loop2"},
		{name: "loop2", typ: tar.TypeSymlink, linkname: "./loop1"},
		{name: "opt/old", data: "old"},
		{name: "srv/", typ: tar.TypeDir, mode: 0o755},
		{name: "srv/inside", data: "i"},
		{name: "usr/bin/python3", mode: 0o755, data: "#!"},
		{name: "usr/lib/os-release", mode: 0o644, data: "ID=debian\n"},
		{name: "usr/lib/python3/site-packages/a/__init__.py", data: "a"},
		{name: "usr/lib/python3/site-packages/b/__init__.py", data: "b"},
		{name: "usr/lib/python3/site-packages/c/__init__.py", data: "c"},
		{name: "usr/share/h1", mode: 0o600, uid: 3, data: "hard content"},
		{name: "usr/share/h2", typ: tar.TypeLink, linkname: "usr/share/h1"},
		{name: "var/lib/dpkg/status", data: "Package: base-files\nStatus: install ok installed\n"},
	}, 0)
	middle := makeTar(t, []tarEntry{
		{name: "opt/.wh..wh..opq"},
		{name: "opt/new", data: "new"},
		{name: "usr/lib/python3/site-packages/.wh.b"},
		{name: "usr/lib/python3/site-packages/.wh.c"},
		{name: "usr/lib/python3/site-packages/d/x.py", data: "d"},
	}, 0)
	top := makeTar(t, []tarEntry{
		{name: "srv", data: "now a file"},
		{name: "usr/lib/python3/site-packages/b/", typ: tar.TypeDir, mode: 0o755},
	}, 0)
	return []v1.Layer{
		static.NewLayer(gzipOf(t, bottom), types.DockerLayer),
		static.NewLayer(zstdOf(t, middle), types.OCILayerZStd),
		static.NewLayer(top, types.OCIUncompressedLayer),
	}
}

func TestBaseFSResolve(t *testing.T) {
	fsys := NewBaseFS(newCache(t), linkedBase(t))
	ctx := context.Background()
	tests := []struct{ in, want, err string }{
		{"etc/os-release", "usr/lib/os-release", ""},
		{"/etc/os-release", "usr/lib/os-release", ""},
		{"lib/python3/site-packages", "usr/lib/python3/site-packages", ""},
		{"bin/python3", "usr/bin/python3", ""}, // absolute link
		{"/lib/../etc", "usr/etc", ""},         // ".." after a link is relative to where it led
		{"data/file", "data/file", ""},
		{"nope/x", "nope/x", ""}, // need not exist
		{"usr/lib/python3/site-packages/d", "usr/lib/python3/site-packages/d", ""},
		{"loop1", "", "more than 40 symlinks"},
		{"loop2/x", "", "more than 40 symlinks"},
		{"escape", "", "climbs above the image root"},
		{"escape/etc/passwd", "", "climbs above the image root"},
		{"data/file/x", "", "/data/file is not a directory"},
		{"/", "", ""},
	}
	for _, tt := range tests {
		got, err := fsys.Resolve(ctx, tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Resolve(%q) = %q, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestBaseFSReadFile(t *testing.T) {
	layers := linkedBase(t)
	big := makeTar(t, []tarEntry{{name: "usr/share/big", data: strings.Repeat("x", MaxBaseFileSize+1)}}, 0)
	layers = append(layers, static.NewLayer(big, types.OCIUncompressedLayer))
	cache := newCache(t)
	fsys := NewBaseFS(cache, layers)
	ctx := context.Background()
	tests := []struct{ name, want, err string }{
		{"etc/os-release", "ID=debian\n", ""}, // symlink to a file the index keeps
		{"var/lib/dpkg/status", "Package: base-files\nStatus: install ok installed\n", ""},
		{"usr/share/h2", "hard content", ""}, // hard link, content read from the layer
		{"usr/share/h1", "hard content", ""},
		{"opt/new", "new", ""},
		{"lib/python3/site-packages/d/x.py", "d", ""},
		{"usr/share/big", "", "base /usr/share/big is 16.0 MiB, over gantry's 16 MiB limit"},
		{"etc", "", "not a regular file"},
		{"opt/old", "", "no /opt/old"},
		{"loop1", "", "symlinks"},
	}
	for _, tt := range tests {
		got, err := fsys.ReadFile(ctx, tt.name)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ReadFile(%q) = %q, %v; want error %q", tt.name, got, err, tt.err)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("ReadFile(%q) = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	if _, err := fsys.ReadFile(ctx, "nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	if f, ok, err := fsys.Lookup(ctx, "usr/lib/os-release"); err != nil || !ok || f.Size != 10 {
		t.Errorf("Lookup size: %+v %v %v", f, ok, err)
	}
	// content read from a layer is cached: another BaseFS reads no layer
	again := NewBaseFS(cache, layers)
	for _, name := range []string{"usr/share/h2", "etc/os-release", "opt/new"} {
		if _, err := again.ReadFile(ctx, name); err != nil {
			t.Error(err)
		}
	}
	if again.Scanned != 0 {
		t.Errorf("second BaseFS read %d layers", again.Scanned)
	}
}

func TestBaseFSReadDir(t *testing.T) {
	fsys := NewBaseFS(newCache(t), linkedBase(t))
	ctx := context.Background()
	tests := []struct {
		dir  string
		want []string
		err  string
	}{
		{"lib/python3/site-packages", []string{"a", "b", "d"}, ""}, // c whited out, b back on top, d implied
		{"usr/lib/python3/site-packages/", []string{"a", "b", "d"}, ""},
		{"opt", []string{"new"}, ""}, // opaque in the middle layer
		{"usr/share", []string{"h1", "h2"}, ""},
		{"usr", []string{"bin", "lib", "share"}, ""}, // usr has no entry of its own
		{"", []string{"bin", "data", "escape", "etc", "lib", "loop1", "loop2", "opt", "srv", "usr", "var"}, ""},
		{"srv", nil, "base /srv is not a directory"}, // a file on top
		{"data/file", nil, "not a directory"},
		{"nope", nil, "no directory /nope"},
		{"loop1", nil, "symlinks"},
	}
	for _, tt := range tests {
		got, err := fsys.ReadDir(ctx, tt.dir)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ReadDir(%q) = %q, %v; want error %q", tt.dir, got, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ReadDir(%q) = %q, %v; want %q", tt.dir, got, err, tt.want)
		}
	}
	if _, err := fsys.ReadDir(ctx, "nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing dir: %v, want fs.ErrNotExist", err)
	}
}
