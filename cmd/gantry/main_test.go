package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/assemble/registrytest"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// TestBuildTaskFlowRealRegistry is the "done when": the example is
// pushed to a real registry process as two-platform indexes, read back with
// skopeo and crane, and a second build gives the same digests.
func TestBuildTaskFlowRealRegistry(t *testing.T) {
	reg := registrytest.RealRegistry(t)
	registrytest.PushLayout(t, nginxBase, reg+"/library/nginx:alpine")
	registrytest.PushLayout(t, pythonBase, reg+"/library/python:3.13-slim")
	args := []string{"build", "-f", example, "--push", reg + "/taskflow",
		"--base", "taskflow-frontend=" + reg + "/library/nginx:alpine",
		"--base", "taskflow-backend=" + reg + "/library/python:3.13-slim",
		"--json", "--cache-dir", t.TempDir()}
	code, stdout, stderr := gantry(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	results := parseResults(t, stdout)
	if len(results) != 2 {
		t.Fatalf("%d results: %s", len(results), stdout)
	}
	for _, r := range results {
		ref := reg + "/taskflow/" + r.Name + ":latest"
		if len(r.References) != 1 || r.References[0] != ref {
			t.Errorf("%s: references %q", r.Name, r.References)
		}
		if len(r.Platforms) != 2 || r.Platforms[0].UncompressedSize <= r.Platforms[0].CompressedSize {
			t.Errorf("%s: platforms %+v", r.Name, r.Platforms)
		}
		// skopeo reads the index: two platforms, no attestations
		var idx struct {
			MediaType string
			Manifests []struct {
				Digest   string
				Platform struct{ Architecture, OS string }
			}
		}
		raw := tool(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+ref)
		if err := json.Unmarshal([]byte(raw), &idx); err != nil {
			t.Fatal(err)
		}
		if len(idx.Manifests) != 2 || idx.Manifests[0].Platform.Architecture != "amd64" || idx.Manifests[1].Platform.Architecture != "arm64" {
			t.Errorf("%s: skopeo sees %s", r.Name, raw)
		}
		// skopeo's view of the arm64 image config
		var cfg struct {
			Config struct {
				User        string
				Env         []string
				Healthcheck struct{ Interval, Timeout int64 }
			} `json:"config"`
		}
		raw = tool(t, "skopeo", "inspect", "--tls-verify=false", "--override-arch", "arm64", "--config", "--raw", "docker://"+ref)
		if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.Config.User != "1001:1001" || cfg.Config.Healthcheck.Interval != 10e9 || cfg.Config.Healthcheck.Timeout != 5e9 {
			t.Errorf("%s: config %s", r.Name, raw)
		}
		// crane flattens the amd64 filesystem: check owners and /etc/passwd
		export := filepath.Join(t.TempDir(), "fs.tar")
		tool(t, "crane", "export", "--insecure", "--platform", "linux/amd64", ref, export)
		files := readTar(t, export)
		// the new content: the site, or the code and the installed packages
		root := map[string]string{"taskflow-frontend": "usr/share/nginx/html/", "taskflow-backend": "app/"}[r.Name]
		site := "usr/local/lib/python3.13/site-packages/t" // taskflow_*, tfnative
		n := 0
		for p, h := range files {
			ours := strings.HasPrefix(p, root) || r.Name == "taskflow-backend" && strings.HasPrefix(p, site)
			if ours && !strings.HasPrefix(p, "app/logs") && !strings.HasPrefix(p, "app/config") {
				n++
				if h.Uid != 1001 || h.Gid != 1001 {
					if r.Name == "taskflow-frontend" && (p == root+"50x.html") {
						continue // the base's own file, left as the base has it
					}
					t.Errorf("%s: %s owned %d:%d", r.Name, p, h.Uid, h.Gid)
				}
			}
		}
		if n < 5 {
			t.Errorf("%s: only %d files under /%s", r.Name, n, root)
		}
		passwd := string(files["etc/passwd"].content)
		if !strings.HasPrefix(passwd, "root:x:0:0:") || !strings.Contains(passwd, "\nappuser:x:1001:1001:") {
			t.Errorf("%s: /etc/passwd:\n%s", r.Name, passwd)
		}
	}

	// A second build: same digests, and nothing uploaded (same references).
	code, stdout2, stderr := gantry(t, args...)
	if code != 0 {
		t.Fatalf("second build: exit %d: %s", code, stderr)
	}
	for i, r := range parseResults(t, stdout2) {
		if r.Digest != results[i].Digest {
			t.Errorf("%s: second build %s, first %s", r.Name, r.Digest, results[i].Digest)
		}
	}
}

type tarFile struct {
	*tar.Header
	content []byte
}

func readTar(t *testing.T, file string) map[string]tarFile {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]tarFile{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		var b []byte
		if h.Name == "etc/passwd" || h.Name == "manifest.json" {
			b, _ = io.ReadAll(tr)
		}
		out[strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")] = tarFile{h, b}
	}
}

func TestExitCodesAndErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	badField := write("bad.yaml", "images:\n  - name: web\n    base: oci:x\n    colour: blue\n")
	missingDir := write("missing.yaml", "images:\n  - name: web\n    base: nginx:alpine\n    layers:\n      - from: nowhere\n        to: /srv\n")
	goodish := write("good.yaml", "images:\n  - name: web\n    base: "+dir+"/nope-layout\n")
	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"unknown field", []string{"build", "-f", badField}, exitUsage, []string{"bad.yaml:4", "colour"}},
		{"missing directory", []string{"build", "-f", missingDir}, exitUsage, []string{"missing.yaml:5", "images[0].layers[0].from", "nowhere does not exist"}},
		{"missing config", []string{"build", "-f", filepath.Join(dir, "none.yaml")}, exitUsage, []string{"none.yaml", "no such file"}},
		{"bad flag", []string{"build", "--frobnicate"}, exitUsage, []string{"unknown flag: --frobnicate"}},
		{"unreachable registry", []string{"append", "--base", "127.0.0.1:1/library/nginx:alpine", "--cache-dir", dir}, exitRegistry, []string{"base 127.0.0.1:1/library/nginx:alpine", "connection refused", "is the registry running"}},
		{"bad layer flag", []string{"append", "--base", "oci:" + nginxBase, "--layer", "nothing-here"}, exitUsage, []string{"--layer \"nothing-here\": want SRC:DEST"}},
		{"bad user", []string{"append", "--base", "oci:" + nginxBase, "--user", "App User:1001"}, exitUsage, []string{"not a valid POSIX name"}},
		{"split too small", []string{"append", "--base", "oci:" + nginxBase, "--layer", dir + ":/srv", "--split", "64KB"}, exitUsage, []string{"--split: 64KB is under 1MiB"}},
		{"tar needs one platform", []string{"append", "--base", "oci:" + nginxBase, "--allow-root", "-o", "tar:" + filepath.Join(dir, "x.tar"), "--cache-dir", dir}, exitUsage, []string{"holds one platform", "--platform"}},
		{"layout base missing", []string{"build", "-f", goodish, "--cache-dir", dir}, exitBuild, []string{"nope-layout"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := gantry(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tc.code, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout not empty: %q", stdout)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "gantry: error: ") {
				t.Errorf("last stderr line %q", last)
			}
			for _, w := range tc.want {
				if !strings.Contains(last, w) {
					t.Errorf("error %q lacks %q", last, w)
				}
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "x.tar")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed tar output left %s behind", filepath.Join(dir, "x.tar"))
	}
}

// TestAppendOutputs covers append's flags and the two file outputs: an OCI
// layout that skopeo and umoci read, and a docker-loadable tarball.
func TestAppendOutputs(t *testing.T) {
	dir := t.TempDir()
	site := filepath.Join(dir, "site")
	os.MkdirAll(filepath.Join(site, "css"), 0o755)
	os.WriteFile(filepath.Join(site, "index.html"), []byte("<h1>hello</h1>"), 0o644)
	os.WriteFile(filepath.Join(site, "css", "a.css"), []byte("h1{}"), 0o644)
	out := filepath.Join(dir, "layout")
	code, stdout, stderr := gantry(t, "append", "--base", "oci:"+nginxBase+":alpine",
		"--layer", site+":/usr/share/nginx/html", "--owner", "1001:1001",
		"--user", "appuser:1001:appgroup:1001", "--own", "/var/cache/nginx",
		"--env", "NODE_ENV=production", "--port", "8080", "--volume", "/tmp/app",
		"--healthcheck", "wget -q -O /dev/null http://127.0.0.1:8080/health",
		"--healthcheck-interval", "10s", "--healthcheck-timeout", "5s",
		"--cmd", "nginx,-g,daemon off;", "--label", "team=web",
		"--name", "site", "-o", "oci:"+out, "--json", "--cache-dir", filepath.Join(dir, "cache"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	rs := parseResults(t, stdout)
	if len(rs) != 1 || len(rs[0].Platforms) != 2 || rs[0].References[0] != "oci:"+out+":site:latest" {
		t.Fatalf("results: %s", stdout)
	}
	raw := tool(t, "skopeo", "inspect", "--raw", "--config", "oci:"+out+":site:latest")
	var cfg struct {
		Config struct {
			User         string
			Env, Cmd     []string
			ExposedPorts map[string]any
			Labels       map[string]string
			Healthcheck  struct {
				Test              []string
				Interval, Timeout int64
			}
		} `json:"config"`
	}
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}
	c := cfg.Config
	if c.User != "1001:1001" || c.Healthcheck.Test[0] != "CMD-SHELL" || c.Healthcheck.Interval != 10e9 || c.Healthcheck.Timeout != 5e9 ||
		strings.Join(c.Cmd, "|") != "nginx|-g|daemon off;" || c.Labels["team"] != "web" || c.ExposedPorts["8080/tcp"] == nil {
		t.Errorf("config: %s", raw)
	}
	if _, err := exec.LookPath("umoci"); err == nil {
		// umoci unpacks one platform's image: copy it out with skopeo first
		one := filepath.Join(dir, "one")
		tool(t, "skopeo", "copy", "oci:"+out+":site:latest", "oci:"+one+":site")
		bundle := filepath.Join(dir, "bundle")
		tool(t, "umoci", "unpack", "--rootless", "--image", one+":site", bundle)
		b, err := os.ReadFile(filepath.Join(bundle, "rootfs", "usr/share/nginx/html/index.html"))
		if err != nil || string(b) != "<h1>hello</h1>" {
			t.Errorf("unpacked index.html: %q %v", b, err)
		}
	}

	// tar: one platform, docker load format
	tarFile := filepath.Join(dir, "site.tar")
	code, _, stderr = gantry(t, "append", "--base", "oci:"+nginxBase+":alpine", "--layer", site+":/srv", "--allow-root",
		"--platform", "linux/arm64", "-o", "tar:"+tarFile, "--tag", "v1", "--cache-dir", filepath.Join(dir, "cache"))
	if code != 0 {
		t.Fatalf("tar: exit %d: %s", code, stderr)
	}
	files := readTar(t, tarFile)
	var manifest []struct{ RepoTags, Layers []string }
	if err := json.Unmarshal(files["manifest.json"].content, &manifest); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(manifest) != 1 || len(manifest[0].Layers) != 3 || manifest[0].RepoTags[0] != "site:v1" {
		t.Errorf("manifest.json: %+v", manifest)
	}
}

// TestDockerBaseKeepsFamily: a Docker v2 single-manifest base gives a
// Docker v2 single-manifest result, and the base's Healthcheck fields that
// go-containerregistry does not model (StartInterval) survive.
func TestDockerBaseKeepsFamily(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hi"), 0o644)
	out := filepath.Join(dir, "out")
	code, stdout, stderr := gantry(t, "append", "--base", "oci:"+dockerBase, "--layer", filepath.Join(dir, "hello.txt")+":/srv/hello.txt", "--allow-root",
		"-o", "oci:"+out, "--json", "--cache-dir", filepath.Join(dir, "cache"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	r := parseResults(t, stdout)[0]
	if r.MediaType != "application/vnd.docker.distribution.manifest.v2+json" || len(r.Platforms) != 1 {
		t.Fatalf("result %+v", r)
	}
	p, _ := layout.FromPath(out)
	top, _ := p.ImageIndex()
	im, _ := top.IndexManifest()
	img, err := top.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	for _, l := range m.Layers {
		if l.MediaType != "application/vnd.docker.image.rootfs.diff.tar.gzip" {
			t.Errorf("layer media type %s in a Docker manifest", l.MediaType)
		}
	}
	if m.Config.MediaType != "application/vnd.docker.container.image.v1+json" {
		t.Errorf("config media type %s", m.Config.MediaType)
	}
	cfg, _ := img.RawConfigFile()
	if !bytes.Contains(cfg, []byte(`"StartInterval":2000000000`)) {
		t.Errorf("base healthcheck StartInterval lost: %s", cfg)
	}

	// zstd turns the whole image into OCI media types
	code, stdout, stderr = gantry(t, "append", "--base", "oci:"+dockerBase, "--layer", filepath.Join(dir, "hello.txt")+":/srv/hello.txt", "--allow-root",
		"-o", "oci:"+filepath.Join(dir, "zstd"), "--compression", "zstd", "--json", "--cache-dir", filepath.Join(dir, "cache"))
	if code != 0 {
		t.Fatalf("zstd: exit %d: %s", code, stderr)
	}
	if r := parseResults(t, stdout)[0]; r.MediaType != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("zstd result %s", r.MediaType)
	}
	if !strings.Contains(stderr, "zstd layers need OCI media types") {
		t.Errorf("no note about the OCI conversion: %s", stderr)
	}
}

func TestVersionAndHelp(t *testing.T) {
	code, stdout, _ := gantry(t, "version")
	if code != 0 || !strings.HasPrefix(stdout, "gantry ") {
		t.Errorf("version: %d %q", code, stdout)
	}
	for _, cmd := range []string{"build", "append"} {
		code, stdout, _ := gantry(t, cmd, "--help")
		for _, flag := range []string{"--platform", "--push", "--output", "--insecure", "--json", "--tag", "--cache-dir", "--compression"} {
			if !strings.Contains(stdout, flag) {
				t.Errorf("%s --help lacks %s", cmd, flag)
			}
		}
		if code != 0 || !strings.Contains(stdout, "Examples:") {
			t.Errorf("%s --help: %d %q", cmd, code, stdout)
		}
	}
}

// TestProgressModes: plain lines carry no control characters; the terminal
// mode draws bars; --quiet prints nothing; stdout holds only the JSON.
func TestProgressModes(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), bytes.Repeat([]byte("hello "), 1000), 0o644)
	base := []string{"append", "--base", "oci:" + nginxBase, "--layer", dir + ":/srv", "--json", "--allow-root"}
	for _, mode := range []string{"plain", "tty", "quiet"} {
		t.Run(mode, func(t *testing.T) {
			args := append(append([]string(nil), base...), "-o", "oci:"+filepath.Join(t.TempDir(), "out"), "--cache-dir", t.TempDir())
			if mode == "quiet" {
				args = append(args, "--quiet")
			} else {
				args = append(args, "--progress", mode)
			}
			code, stdout, stderr := gantry(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if rs := parseResults(t, stdout); len(rs) != 1 || len(rs[0].Platforms) != 2 {
				t.Errorf("stdout is not the one JSON result: %q", stdout)
			}
			switch mode {
			case "plain":
				for _, c := range stderr {
					if c < 0x20 && c != '\n' {
						t.Fatalf("control character %q in plain output: %q", c, stderr)
					}
				}
				for _, w := range []string{"nginx-alpine: layer /srv: built", "nginx-alpine linux/amd64:", "nginx-alpine linux/arm64/v8:", "nginx-alpine: blob ", ": sent; "} {
					if !strings.Contains(stderr, w) {
						t.Errorf("plain output lacks %q:\n%s", w, stderr)
					}
				}
			case "tty":
				// bars: labels padded into one column, statuses beside them,
				// redrawn in place (cursor-up escapes) once more than one
				// frame is drawn
				if !strings.Contains(stderr, "nginx-alpine: layer /srv  ") || !strings.Contains(stderr, "nginx-alpine linux/arm64/v8 ") || strings.Contains(stderr, "layer /srv: built") {
					t.Errorf("terminal output has no bars: %q", stderr)
				}
			case "quiet":
				if stderr != "" {
					t.Errorf("--quiet printed %q", stderr)
				}
			}
		})
	}
}

// TestLock: gantry lock pins the bases; build --locked builds exactly those
// even after the tag moves, and fails clearly when the lock is missing or
// stale.
func TestLock(t *testing.T) {
	reg := registrytest.RealRegistry(t)
	registrytest.PushLayout(t, nginxBase, reg+"/library/nginx:alpine")
	registrytest.PushLayout(t, pythonBase, reg+"/library/python:3.13-slim")
	dir := t.TempDir()
	cfg, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	cfg = bytes.ReplaceAll(cfg, []byte("docker.io/library/"), []byte(reg+"/library/"))
	for _, sub := range []string{"frontend", "backend"} {
		if err := os.Symlink(filepath.Join(mustAbs(t, "../../testdata/taskflow"), sub), filepath.Join(dir, sub)); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "gantry.yaml")
	os.WriteFile(file, cfg, 0o644)
	cache := t.TempDir()

	code, _, stderr := gantry(t, "build", "-f", file, "--locked", "--cache-dir", cache, "-o", "oci:"+filepath.Join(dir, "out0"))
	if code != exitUsage || !strings.Contains(stderr, "gantry.lock does not exist: run gantry lock") {
		t.Errorf("no lock: exit %d, %s", code, stderr)
	}
	code, stdout, stderr := gantry(t, "lock", "-f", file)
	if code != 0 || strings.TrimSpace(stdout) != filepath.Join(dir, "gantry.lock") {
		t.Fatalf("lock: exit %d, %q %s", code, stdout, stderr)
	}
	var lock struct {
		Images map[string]struct {
			Base, Digest string
			Platforms    map[string]string
		}
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "gantry.lock"))
	if err := json.Unmarshal(raw, &lock); err != nil {
		t.Fatal(err)
	}
	fe := lock.Images["taskflow-frontend"]
	if fe.Base != reg+"/library/nginx:alpine" || len(fe.Platforms) != 2 || !strings.HasPrefix(fe.Digest, "sha256:") {
		t.Fatalf("lock: %s", raw)
	}
	if code, _, stderr := gantry(t, "lock", "-f", file); code != exitUsage || !strings.Contains(stderr, "--update") {
		t.Errorf("second lock: exit %d, %s", code, stderr)
	}

	build := func(out string) (int, []result, string) {
		// --allow-missing-program: once the tag moves, the frontend's base is
		// the python one, which has no wget for its healthcheck
		code, stdout, stderr := gantry(t, "build", "-f", file, "--locked", "--json", "--allow-missing-program", "--cache-dir", cache, "-o", "oci:"+filepath.Join(dir, out))
		if code != 0 {
			return code, nil, stderr
		}
		return code, parseResults(t, stdout), stderr
	}
	code, before, stderr := build("out1")
	if code != 0 {
		t.Fatalf("locked build: exit %d: %s", code, stderr)
	}
	// the tag moves: nginx:alpine now points at the python base
	registrytest.PushLayout(t, pythonBase, reg+"/library/nginx:alpine")
	code, after, stderr := build("out2")
	if code != 0 {
		t.Fatalf("locked build after the tag moved: exit %d: %s", code, stderr)
	}
	if after[0].Digest != before[0].Digest {
		t.Errorf("locked build changed with the tag: %s → %s", before[0].Digest, after[0].Digest)
	}
	// an unlocked build follows the tag
	code, stdout, stderr = gantry(t, "build", "-f", file, "--json", "--allow-missing-program", "--cache-dir", cache, "-o", "oci:"+filepath.Join(dir, "out3"))
	if code != 0 {
		t.Fatalf("unlocked: %s", stderr)
	}
	if r := parseResults(t, stdout); r[0].Digest == before[0].Digest {
		t.Errorf("unlocked build did not follow the moved tag")
	}
	// a lock made for another base is stale
	code, _, stderr = gantry(t, "build", "-f", file, "--locked", "--base", "taskflow-backend=oci:"+pythonBase, "--cache-dir", cache)
	if code != exitUsage || !strings.Contains(stderr, "stale for image taskflow-backend") || !strings.Contains(stderr, "gantry lock --update") {
		t.Errorf("stale lock: exit %d: %s", code, stderr)
	}
	// --update refreshes it
	if code, _, stderr := gantry(t, "lock", "-f", file, "--update"); code != 0 {
		t.Fatalf("lock --update: %s", stderr)
	}
	code, updated, stderr := build("out4")
	if code != 0 || updated[0].Digest == before[0].Digest {
		t.Errorf("after --update: exit %d %s", code, stderr)
	}
}
