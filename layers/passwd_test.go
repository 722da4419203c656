package layers

import (
	"archive/tar"
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestMergePasswd(t *testing.T) {
	app := User{Name: "app", UID: 1000, Group: "app", GID: 1000}
	const root = "root:x:0:0:root:/root:/bin/sh\n"
	tests := []struct {
		name    string
		base    string
		u       User
		want    string
		wantErr []string
	}{
		{"append", root, app, root + "app:x:1000:1000::/:/sbin/nologin\n", nil},
		{"home and shell", root, User{Name: "svc", UID: 10, GID: 20, Home: "/srv", Shell: "/bin/bash"}, root + "svc:x:10:20::/srv:/bin/bash\n", nil},
		{"no trailing newline", strings.TrimSuffix(root, "\n"), app, root + "app:x:1000:1000::/:/sbin/nologin\n", nil},
		{"empty file", "", app, "app:x:1000:1000::/:/sbin/nologin\n", nil},
		{"blank lines and comments kept", "# users\n\n" + root, app, "# users\n\n" + root + "app:x:1000:1000::/:/sbin/nologin\n", nil},
		{"commented-out clash is no clash", root + "#app:x:5:5::/:/bin/sh\n", app, root + "#app:x:5:5::/:/bin/sh\napp:x:1000:1000::/:/sbin/nologin\n", nil},
		{"already there", root + "app:x:1000:1000::/:/sbin/nologin\n", app, root + "app:x:1000:1000::/:/sbin/nologin\n", nil},
		{"already there, other home and shell", root + "app:x:1000:1000:App:/home/app:/bin/sh\nz:x:1:1::/:/x", app, root + "app:x:1000:1000:App:/home/app:/bin/sh\nz:x:1:1::/:/x", nil},
		{"name with another uid", root + "app:x:1001:1000::/:/bin/sh\n", app, "", []string{"/etc/passwd", `"app"`, "already exists", "app:x:1001"}},
		{"name with another gid", root + "app:x:1000:1001::/:/bin/sh\n", app, "", []string{`"app"`, "already exists"}},
		{"uid of another user", root + "bob:x:1000:1000::/:/bin/sh\n", app, "", []string{"id 1000", `"bob"`}},
		{"uid 0", root, User{Name: "admin", UID: 0, GID: 0}, "", []string{"id 0", `"root"`}},
		{"root by name", root, User{Name: "root", UID: 1000, GID: 1000}, "", []string{`"root"`, "already exists"}},
		{"short lines are skipped", "junk\nx:y\n", app, "junk\nx:y\napp:x:1000:1000::/:/sbin/nologin\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MergePasswd([]byte(tt.base), tt.u)
			checkMerge(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestMergeGroup(t *testing.T) {
	app := User{Name: "app", UID: 1000, Group: "app", GID: 1000}
	const root = "root:x:0:\nwheel:x:10:root\n"
	tests := []struct {
		name    string
		base    string
		u       User
		want    string
		wantErr []string
	}{
		{"append", root, app, root + "app:x:1000:\n", nil},
		{"group name differs from user", root, User{Name: "u", UID: 5, Group: "staff", GID: 50}, root + "staff:x:50:\n", nil},
		{"no trailing newline", "root:x:0:", app, "root:x:0:\napp:x:1000:\n", nil},
		{"empty file", "", app, "app:x:1000:\n", nil},
		{"already there with members", root + "app:x:1000:alice,bob\n", app, root + "app:x:1000:alice,bob\n", nil},
		{"already there, three fields", "app:x:1000", app, "app:x:1000", nil},
		{"name with another gid", root + "app:x:2000:\n", app, "", []string{"/etc/group", "group", `"app"`, "already exists"}},
		{"gid of another group", root + "other:x:1000:\n", app, "", []string{"/etc/group", "id 1000", `"other"`}},
		{"gid 10", root, User{Group: "admins", GID: 10}, "", []string{"id 10", `"wheel"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MergeGroup([]byte(tt.base), tt.u)
			checkMerge(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func checkMerge(t *testing.T, got []byte, err error, want string, wantErr []string) {
	t.Helper()
	if wantErr != nil {
		if err == nil {
			t.Fatalf("no error; got %q", got)
		}
		for _, w := range wantErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not contain %q", err, w)
			}
		}
		return
	}
	if err != nil {
		t.Fatalf("error %v", err)
	}
	if string(got) != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

// bigPasswd is a passwd file of at least n bytes of ordinary accounts
// (uids from 2000), then last.
func bigPasswd(n int, last string) string {
	var b strings.Builder
	b.WriteString("root:x:0:0:root:/root:/bin/sh\n")
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "user%07d:x:%d:%d::/home/user%07d:/usr/sbin/nologin\n", i, 2000+i, 2000+i, i)
	}
	b.WriteString(last)
	return b.String()
}

// TestUserEntriesBigPasswd: a base /etc/passwd over 4 MiB is merged whole
// (an id clash on its last line is found, the merged file keeps every
// line); one over MaxBaseFileSize is refused with its size, never cut.
func TestUserEntriesBigPasswd(t *testing.T) {
	ctx := context.Background()
	app := User{Name: "app", UID: 1000, Group: "app", GID: 1000}
	layer := func(passwd string) v1.Layer {
		return static.NewLayer(makeTar(t, []tarEntry{
			{name: "etc/", typ: tar.TypeDir, mode: 0o755},
			{name: "etc/passwd", mode: 0o644, data: passwd},
			{name: "etc/group", mode: 0o644, data: "root:x:0:\n"},
		}, 0), types.OCIUncompressedLayer)
	}

	clash := bigPasswd(5<<20, "late:x:1000:1000::/:/bin/sh\n")
	_, err := UserEntries(ctx, NewBaseFS(newCache(t), []v1.Layer{layer(clash)}), nil, app, nil, nil)
	if err == nil || !strings.Contains(err.Error(), `already taken by "late"`) {
		t.Errorf("uid clash on the last line of a %d-byte passwd: %v", len(clash), err)
	}

	whole := bigPasswd(5<<20, "last:x:1999:1999::/:/bin/sh\n")
	entries, err := UserEntries(ctx, NewBaseFS(newCache(t), []v1.Layer{layer(whole)}), nil, app, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := whole + "app:x:1000:1000::/:/sbin/nologin\n"
	for _, e := range entries {
		if e.Name == "etc/passwd" && (string(e.Data) != want || e.Size != int64(len(want))) {
			t.Errorf("merged passwd is %d bytes ending %q, want %d bytes", len(e.Data), e.Data[max(0, len(e.Data)-60):], len(want))
		}
	}

	huge := bigPasswd(MaxBaseFileSize+1, "")
	_, err = UserEntries(ctx, NewBaseFS(newCache(t), []v1.Layer{layer(huge)}), nil, app, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "base /etc/passwd is 16.0 MiB, over gantry's 16 MiB limit") {
		t.Errorf("passwd over the limit: %v", err)
	}
}

// TestUserEntriesLinkedPasswd: a base whose /etc/passwd and /etc/group are
// symlinks (relative as in Nix images, absolute, over several hops) or hard
// links gets the user merged into the real files, which keep every account;
// symlinks are kept, a hard link is written again to the new file after it.
// Loops and links out of the image are errors.
func TestUserEntriesLinkedPasswd(t *testing.T) {
	ctx := context.Background()
	app := User{Name: "app", UID: 1000, Group: "app", GID: 1000}
	const passwd = "root:x:0:0:root:/root:/bin/sh\nnixbld1:x:30001:30000::/var/empty:/sbin/nologin\n"
	const group = "root:x:0:\nnixbld:x:30000:nixbld1\n"
	real := []tarEntry{
		{name: "usr/lib/passwd", mode: 0o644, uid: 0, gid: 0, data: passwd},
		{name: "usr/lib/group", mode: 0o640, gid: 7, data: group},
	}
	sym := func(name, target string) tarEntry {
		return tarEntry{name: name, typ: tar.TypeSymlink, mode: 0o777, linkname: target}
	}
	tests := []struct {
		name    string
		entries []tarEntry
		want    []string // "name" or "name -> hard link target", in order
		err     string
	}{
		{"relative symlinks (Nix)", []tarEntry{sym("etc/passwd", "../usr/lib/passwd"), sym("etc/group", "../usr/lib/group")},
			[]string{"usr/lib/group", "usr/lib/passwd"}, ""},
		{"absolute symlinks", []tarEntry{sym("etc/passwd", "/usr/lib/passwd"), sym("etc/group", "/usr/lib/group")},
			[]string{"usr/lib/group", "usr/lib/passwd"}, ""},
		{"several hops and a linked directory", []tarEntry{sym("etc/passwd", "passwd.real"), sym("etc/passwd.real", "/lib/passwd"), sym("lib", "usr/lib"), sym("etc/group", "../lib/group")},
			[]string{"usr/lib/group", "usr/lib/passwd"}, ""},
		{"hard links", []tarEntry{{name: "etc/passwd", typ: tar.TypeLink, linkname: "usr/lib/passwd"}, {name: "etc/group", typ: tar.TypeLink, linkname: "usr/lib/group"}},
			[]string{"usr/lib/group", "usr/lib/passwd", "etc/group -> usr/lib/group", "etc/passwd -> usr/lib/passwd"}, ""},
		{"loop", []tarEntry{sym("etc/passwd", "passwd2"), sym("etc/passwd2", "/etc/passwd")}, nil, "more than 40 symlinks"},
		{"escape", []tarEntry{sym("etc/passwd", "../../../../host/etc/passwd")}, nil, "climbs above the image root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := append([]tarEntry{{name: "etc/", typ: tar.TypeDir, mode: 0o755}}, real...)
			bottom := static.NewLayer(gzipOf(t, makeTar(t, tb, 0)), types.DockerLayer)
			links := static.NewLayer(gzipOf(t, makeTar(t, tt.entries, 0)), types.DockerLayer)
			entries, err := UserEntries(ctx, NewBaseFS(newCache(t), []v1.Layer{bottom, links}), nil, app, nil, nil)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range entries {
				switch e.Type {
				case tar.TypeLink:
					got = append(got, e.Name+" -> "+e.Linkname)
				default:
					got = append(got, e.Name)
				}
				switch e.Name {
				case "usr/lib/passwd":
					if string(e.Data) != passwd+"app:x:1000:1000::/:/sbin/nologin\n" || e.Mode != 0o644 {
						t.Errorf("usr/lib/passwd: mode %#o %q", e.Mode, e.Data)
					}
				case "usr/lib/group":
					if string(e.Data) != group+"app:x:1000:\n" || e.Mode != 0o640 || e.GID != 7 {
						t.Errorf("usr/lib/group: mode %#o gid %d %q", e.Mode, e.GID, e.Data)
					}
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("entries %q, want %q", got, tt.want)
			}
			// the layer is valid: a hard link follows its target
			l := mustBuild(t, &Builder{Cache: newCache(t), MTime: testMTime}, entries)
			seen := map[string]bool{}
			for _, m := range layerTar(t, l, testMTime) {
				if m.hdr.Typeflag == tar.TypeLink && !seen[m.hdr.Linkname] {
					t.Errorf("%s precedes its target %s", m.hdr.Name, m.hdr.Linkname)
				}
				seen[m.hdr.Name] = true
			}
		})
	}

	// The uid clash check sees the real file's accounts.
	bottom := static.NewLayer(gzipOf(t, makeTar(t, append([]tarEntry{sym("etc/passwd", "../usr/lib/passwd")}, real...), 0)), types.DockerLayer)
	_, err := UserEntries(ctx, NewBaseFS(newCache(t), []v1.Layer{bottom}), nil, User{Name: "app", UID: 30001, Group: "app", GID: 1000}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), `"nixbld1"`) {
		t.Errorf("uid of an account of the linked passwd: %v", err)
	}
	// A new layer writing the real file is refused, as one writing /etc/passwd is.
	_, err = UserEntries(ctx, NewBaseFS(newCache(t), []v1.Layer{bottom}), map[string]Entry{"usr/lib/passwd": {Name: "usr/lib/passwd", Type: tar.TypeReg}}, app, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "a new layer writes /usr/lib/passwd") {
		t.Errorf("new layer writing the linked passwd: %v", err)
	}
}
