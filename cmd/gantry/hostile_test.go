package main

import (
	"archive/tar"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gantry-dev/gantry/assemble/registrytest"
)

// TestHostileInputs: each hostile input fails with its one-line error (or,
// for an escaping symlink, is kept as a harmless symlink), and leaves the
// registry and the output directory as they were.
func TestHostileInputs(t *testing.T) {
	reg := registrytest.RealRegistry(t)
	root := t.TempDir()
	mk := func(rel, body string, mode os.FileMode) string {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		return filepath.Dir(p)
	}
	config := func(name, body string) string {
		p := filepath.Join(root, name+".yaml")
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	site := mk("site/index.html", "<h1>hi</h1>", 0o644)
	fifo := mk("fifo/index.html", "x", 0o644)
	if err := syscall.Mkfifo(filepath.Join(fifo, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := mk("sock/index.html", "x", 0o644)
	if l, err := net.Listen("unix", filepath.Join(sock, "s.sock")); err == nil {
		defer l.Close()
	} else {
		t.Fatal(err)
	}
	dotenv := mk("dotenv/.env", "DATABASE_URL=postgres://u:p@db/x\n", 0o644)
	key := mk("key/server.pem", "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n", 0o644)
	git := filepath.Dir(mk("git/.git/config", "[core]\n", 0o644))
	shadow := mk("shadow/index.html", "x", 0o644)
	os.Symlink("/etc/shadow", filepath.Join(shadow, "shadow"))
	linkdir := mk("linkdir/keep", "x", 0o644)
	os.Symlink("/etc", filepath.Join(linkdir, "etc"))
	mk("intolink/passwd", "root::0:0::/:/bin/sh\n", 0o644)
	base := "oci:" + mustAbs(t, nginxBase)

	yamlImage := func(extra string) string {
		return "images:\n  - name: web\n    base: " + base + "\n    user: {name: appuser, uid: 1001}\n" + extra
	}
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"dotdot target", []string{"build", "-f", config("dotdot", yamlImage("    layers:\n      - from: site\n        to: ../../etc\n"))},
			exitUsage, `dotdot.yaml:7: images[0].layers[0].to: "../../etc" is not an absolute path in the image`},
		{"target onto /etc/passwd", []string{"build", "-f", config("passwd", yamlImage("    layers:\n      - files: [{from: intolink/passwd, to: /app/../etc/passwd}]\n"))},
			exitBuild, "layer /app/../etc/passwd writes /etc/passwd, which the user merge also writes"},
		{"write through a symlink of an earlier layer", []string{"build", "-f", config("through", yamlImage("    layers:\n      - {from: linkdir, to: /opt/x}\n      - {from: intolink, to: /opt/x/etc}\n"))},
			exitBuild, "writes /opt/x/etc/passwd through /opt/x/etc, a symlink (to /etc) made by an earlier layer"},
		{"fifo", []string{"append", "--base", base, "--layer", fifo + ":/srv", "--allow-root"},
			exitBuild, "layer source " + filepath.Join(fifo, "pipe") + ": is a FIFO"},
		{"socket", []string{"append", "--base", base, "--layer", sock + ":/srv", "--allow-root"},
			exitBuild, "layer source " + filepath.Join(sock, "s.sock") + ": is a socket"},
		{"secret env value", []string{"build", "-f", config("env", yamlImage("    env:\n      OPENROUTER_API_KEY: sk-or-123\n"))},
			exitUsage, "env.yaml:6: images[0].env.OPENROUTER_API_KEY: its name says it holds a secret"},
		{"database url with password", []string{"append", "--base", base, "--env", "DATABASE_URL=postgres://app:hunter2@db/app", "--allow-root"},
			exitUsage, "--env DATABASE_URL: it is a URL with a password in it"},
		{".env file", []string{"append", "--base", base, "--layer", dotenv + ":/app", "--allow-root"},
			exitBuild, "layer source " + filepath.Join(dotenv, ".env") + " looks like a secret (an environment file)"},
		{"private key", []string{"append", "--base", base, "--layer", key + ":/app", "--allow-root"},
			exitBuild, "layer source " + filepath.Join(key, "server.pem") + " looks like a secret (it holds a private key)"},
		{".git directory", []string{"append", "--base", base, "--layer", git + ":/app", "--allow-root"},
			exitBuild, "layer source " + filepath.Join(git, ".git") + " looks like a secret (a git repository"},
		{"runs as root", []string{"append", "--base", base, "--layer", site + ":/srv"},
			exitBuild, "the image would run as root (User: unset, so root)"},
		{"world-writable", []string{"build", "-f", config("ww", yamlImage("    layers:\n      - {from: site, to: /srv, fileMode: \"0666\"}\n"))},
			exitBuild, "/srv/index.html is world-writable (mode 0666)"},
		{"setuid", []string{"build", "-f", config("suid", yamlImage("    layers:\n      - {from: site, to: /srv, fileMode: \"4755\"}\n"))},
			exitBuild, "/srv/index.html is setuid or setgid (mode 4755)"},
		{"max layers", []string{"build", "-f", config("maxl", yamlImage("    maxLayers: 3\n    layers:\n      - {from: site, to: /srv}\n"))},
			exitBuild, "image has 4 layers (2 from the base), over maxLayers 3"},
		{"uid out of range", []string{"build", "-f", config("uid", "images:\n  - name: web\n    base: "+base+"\n    user: {name: appuser, uid: 70000}\n")},
			exitUsage, "uid.yaml:4: images[0].user.uid: id 70000 out of range 0-65534"},
		{"bad user name", []string{"build", "-f", config("uname", "images:\n  - name: web\n    base: "+base+"\n    user: {name: App User, uid: 1001}\n")},
			exitUsage, `user name "App User" is not a valid POSIX name`},
		// the hardening cases (issue 11)
		{"passwd injection through home", []string{"build", "-f", config("home", "images:\n  - name: web\n    base: "+base+"\n    user: {name: appuser, uid: 1001, home: \"/app\\nbackdoor:x:0:0::/:/bin/sh\"}\n")},
			exitUsage, `images[0].user.home: home "/app\nbackdoor:x:0:0::/:/bin/sh" must be an absolute path without ":" or control characters`},
		{"a second YAML document", []string{"build", "-f", config("twodocs", yamlImage("    allowRoot: true\n")+"---\nimages: []\n")},
			exitUsage, "holds one document"},
		{"a tag that is a flag", []string{"append", "--base", base, "--layer", site + ":/srv", "--allow-root", "--tag", "good2", "--tag", "-x"},
			exitUsage, `--tag: "-x" is not a valid tag`},
		{"a crane-style -t with a registry", []string{"append", "--base", base, "--layer", site + ":/srv", "--allow-root", "-t", "ghcr.io/acme/app:v1"},
			exitUsage, `--tag: "ghcr.io/acme/app:v1" is not a valid tag`},
		{"zstd in a docker image", []string{"append", "--base", base, "--layer", site + ":/srv", "--allow-root", "--format", "docker", "--compression", "zstd"},
			exitUsage, "--format: docker images cannot hold zstd layers"},
		{"a healthcheck the image cannot run", []string{"append", "--base", base, "--layer", site + ":/srv", "--allow-root", "--healthcheck", "CMD curl -f http://127.0.0.1/"},
			exitBuild, "the healthcheck runs curl, which linux/amd64 does not have"},
		{"a base given as a bare path", []string{"append", "--base", nginxBase, "--layer", site + ":/srv", "--allow-root"},
			exitUsage, "is a directory here, not a registry reference; for an OCI layout write oci:"},
	}
	if os.Geteuid() == 0 {
		dev := filepath.Join(root, "dev")
		os.MkdirAll(dev, 0o755)
		if err := syscall.Mknod(filepath.Join(dev, "null"), syscall.S_IFCHR|0o666, 1<<8|3); err == nil {
			cases = append(cases, struct {
				name string
				args []string
				code int
				want string
			}{"device file", []string{"append", "--base", base, "--layer", dev + ":/srv", "--allow-root"}, exitBuild, "layer source " + filepath.Join(dev, "null") + ": is a device file"})
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			args := append(append([]string(nil), tc.args...), "--push", reg+"/hostile"+map[bool]string{true: "/web:1", false: ""}[tc.args[0] == "append"], "-o", "oci:"+out, "--cache-dir", t.TempDir())
			code, stdout, stderr := gantry(t, args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d: %s", code, tc.code, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.Contains(last, tc.want) {
				t.Errorf("error:\n  %s\nwant it to contain:\n  %s", last, tc.want)
			}
			if stdout != "" {
				t.Errorf("stdout: %q", stdout)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("output directory written: %v", err)
			}
			if repos := registrytest.Catalog(t, reg); len(repos) != 0 {
				t.Errorf("registry holds %v", repos)
			}
		})
	}

	// A symlink to /etc/shadow is kept as a symlink, never followed, even
	// with followSymlinks; the file's contents never enter the image.
	for _, follow := range []string{"false", "true"} {
		out := filepath.Join(t.TempDir(), "out")
		cfg := config("follow"+follow, yamlImage("    layers:\n      - {from: shadow, to: /srv, followSymlinks: "+follow+"}\n"))
		code, _, stderr := gantry(t, "build", "-f", cfg, "-o", "oci:"+out, "--cache-dir", t.TempDir(), "--platform", "linux/amd64")
		if code != 0 {
			t.Fatalf("followSymlinks %s: exit %d: %s", follow, code, stderr)
		}
		h := newLayerHeaders(t, out, "srv/shadow")
		if h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "/etc/shadow" || h.Size != 0 {
			t.Errorf("followSymlinks %s: srv/shadow is %+v, want a symlink to /etc/shadow", follow, h)
		}
	}
}

// TestUnreadableSource runs gantry as an unprivileged user on a file it
// cannot read: the error names the file.
func TestUnreadableSource(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755) // the test's temporary root, for the unprivileged user
	src := filepath.Join(dir, "site")
	os.MkdirAll(src, 0o755)
	secret := filepath.Join(src, "locked.html")
	os.WriteFile(secret, []byte("x"), 0o000)
	var cmd *exec.Cmd
	bin := filepath.Join(dir, "gantry")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	os.Chmod(bin, 0o755)
	work := filepath.Join(dir, "work")
	os.MkdirAll(work, 0o777)
	os.Chmod(work, 0o777)
	args := []string{"append", "--base", "oci:" + mustAbs(t, nginxBase), "--layer", src + ":/srv", "--allow-root", "-o", "oci:" + filepath.Join(work, "out"), "--cache-dir", filepath.Join(work, "cache")}
	cmd = exec.Command(bin, args...)
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	cmd.Env = []string{"HOME=" + work}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitBuild {
		t.Fatalf("want exit %d, got %v: %s", exitBuild, err, out)
	}
	want := "layer source " + secret + ": permission denied"
	if !strings.Contains(string(out), want) {
		t.Errorf("output %q lacks %q", out, want)
	}
	if _, err := os.Stat(filepath.Join(work, "out")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("output written: %v", err)
	}
}

// newLayerHeaders finds name in the layers of the first image of a layout.
func newLayerHeaders(t *testing.T, dir, name string) *tar.Header {
	t.Helper()
	idx := registrytest.LayoutIndex(t, dir)
	m, _ := idx.IndexManifest()
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := img.Layers()
	for _, l := range ls {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Name == name {
				rc.Close()
				return h
			}
		}
		rc.Close()
	}
	return nil
}
