package layers

import (
	"archive/tar"
	"context"
	"fmt"
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
