package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/assemble/registrytest"
)

// Tags and push references are checked before anything is built, pushed
// or written: each bad one exits 2 with one line, and the registry and the
// output directory stay empty.
func TestBadTagsAndReferencesLeaveNothing(t *testing.T) {
	reg := registrytest.New(t)
	base := "oci:" + mustAbs(t, nginxBase)
	site := siteDir(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"a tag that is a flag", []string{"--tag", "good2", "--tag", "-x", "--push", reg.Host + "/web/site"}, `--tag: "-x" is not a valid tag`},
		{"a tag with a space", []string{"-t", "v1", "-t", "bad tag!", "--push", reg.Host + "/web/site"}, `--tag: "bad tag!" is not a valid tag`},
		{"a bad tag to a layout", []string{"-t", "bad tag!"}, `--tag: "bad tag!" is not a valid tag`},
		{"upper case", []string{"--push", reg.Host + "/Web/Site:v1"}, `--push: "` + reg.Host + `/Web/Site:v1" is not a valid reference`},
		{"a digest", []string{"--push", reg.Host + "/web/site@sha256:" + strings.Repeat("a", 64)}, "names a digest; a push writes a tag"},
		{"a bad --cache-from", []string{"--push", reg.Host + "/web/site:v1", "--cache-from", reg.Host + "/Web/Site:main"}, `--cache-from: "` + reg.Host + `/Web/Site:main" is not a valid reference`},
		{"a bad --cache-from tag", []string{"--push", reg.Host + "/web/site:v1", "--cache-from", ":bad tag"}, `--cache-from: ":bad tag" is not a valid tag`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			args := append([]string{"append", "--base", base, "--layer", site + ":/srv", "--allow-root", "-o", "oci:" + out, "--cache-dir", t.TempDir()}, tc.args...)
			code, stdout, stderr := gantry(t, args...)
			if code != exitUsage || stdout != "" || !strings.Contains(lastLine(stderr), tc.want) {
				t.Errorf("exit %d (want %d), stdout %q, last line %q lacks %q", code, exitUsage, stdout, lastLine(stderr), tc.want)
			}
			if repos := registrytest.Catalog(t, reg.Host); len(repos) != 0 {
				t.Errorf("the registry has %q", repos)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s was written", out)
			}
		})
	}
}

// An interrupted run exits 130, as shells report a SIGINT.
func TestInterruptExits130(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr registrytest.Buffer
	code := run(ctx, []string{"append", "--base", "oci:" + mustAbs(t, nginxBase), "--layer", siteDir(t) + ":/srv", "--allow-root",
		"-o", "oci:" + filepath.Join(t.TempDir(), "out"), "--cache-dir", t.TempDir()}, strings.NewReader(""), &stdout, &stderr, func(string) (string, bool) { return "", false })
	if code != exitInterrupt || !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("exit %d, want %d; stderr %q", code, exitInterrupt, stderr.String())
	}
}

// A base that is a directory on disk is not looked up on Docker Hub; a
// layout base by digest names the image after the layout.
func TestBaseReferences(t *testing.T) {
	code, _, stderr := gantry(t, "append", "--base", nginxBase, "--layer", siteDir(t)+":/srv", "--allow-root", "-o", "oci:"+filepath.Join(t.TempDir(), "o"))
	if code != exitUsage || !strings.Contains(stderr, "is a directory here, not a registry reference; for an OCI layout write oci:"+nginxBase) {
		t.Errorf("bare path: exit %d, %q", code, stderr)
	}
	idx := registrytest.LayoutIndex(t, nginxBase)
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := gantry(t, "append", "--base", "oci:"+mustAbs(t, nginxBase)+"@"+d.String(), "--layer", siteDir(t)+":/srv", "--allow-root", "-o", "oci:"+out, "--cache-dir", t.TempDir())
	if code != exitOK || !strings.HasPrefix(stdout, "oci:"+out+":nginx-alpine:latest sha256:") {
		t.Errorf("layout base by digest: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// A base whose layers the registry fails to serve is a registry error
// (exit 3) naming the base's repository, not a build error.
func TestBaseLayerRegistryFailureExits3(t *testing.T) {
	reg := registrytest.New(t)
	registrytest.PushLayout(t, nginxBase, reg.Host+"/library/nginx:alpine")
	blobGET := func(r *http.Request) bool {
		return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:")
	}
	p := registrytest.NewFaultProxy(t, reg.Host, registrytest.Always(blobGET, registrytest.Status(http.StatusForbidden, "")))
	p.Enable()
	code, _, stderr := gantry(t, "append", "--base", p.Host+"/library/nginx:alpine", "--layer", siteDir(t)+":/srv", "--user", "app:1001",
		"-o", "oci:"+filepath.Join(t.TempDir(), "out"), "--cache-dir", t.TempDir())
	if code != exitRegistry || !strings.Contains(lastLine(stderr), "403 forbidden on "+p.Host+"/library/nginx") {
		t.Errorf("exit %d (want %d), last line %q", code, exitRegistry, lastLine(stderr))
	}
}
