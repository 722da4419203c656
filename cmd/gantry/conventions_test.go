package main

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/assemble/registrytest"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// gantry --version answers; an unknown command is a usage error.
func TestVersionFlagAndUnknownCommand(t *testing.T) {
	code, stdout, stderr := gantry(t, "--version")
	if code != exitOK || !strings.HasPrefix(stdout, "gantry ") {
		t.Errorf("--version: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, _, stderr = gantry(t, "frobnicate")
	if code != exitUsage || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, stderr %q", code, stderr)
	}
}

// append has what build has: --precompress, --annotation, file and
// directory modes for every --layer.
func TestAppendLayerFlags(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	code, _, stderr := gantry(t, "append", "--base", "oci:"+mustAbs(t, nginxBase), "--layer", siteDir(t)+":/srv", "--allow-root",
		"--precompress", "--file-mode", "0444", "--dir-mode", "0555", "--annotation", "org.opencontainers.image.vendor=ACME",
		"--platform", "linux/amd64", "-o", "oci:"+out, "--cache-dir", t.TempDir())
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if h := newLayerHeaders(t, out, "srv/index.html"); h == nil || h.Mode != 0o444 {
		t.Errorf("srv/index.html: %+v", h)
	}
	if h := newLayerHeaders(t, out, "srv/index.html.gz"); h == nil {
		t.Error("no precompressed srv/index.html.gz")
	}
	if h := newLayerHeaders(t, out, "srv/"); h == nil || h.Mode != 0o555 {
		t.Errorf("srv/: %+v", h)
	}
	idx := registrytest.LayoutIndex(t, out)
	m, _ := idx.IndexManifest()
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	mf, _ := img.Manifest()
	if mf.Annotations["org.opencontainers.image.vendor"] != "ACME" {
		t.Errorf("annotations: %v", mf.Annotations)
	}
	code, _, stderr = gantry(t, "append", "--base", "oci:"+mustAbs(t, nginxBase), "--layer", siteDir(t)+":/srv", "--file-mode", "999", "-o", "oci:"+filepath.Join(t.TempDir(), "x"))
	if code != exitUsage || !strings.Contains(stderr, `--file-mode: "999" is not an octal mode`) {
		t.Errorf("bad --file-mode: exit %d, %q", code, stderr)
	}
}

// The source, revision and version CI reports become OCI annotations,
// unless the image sets them itself.
func TestAnnotationsFromCI(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	env := map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/site", "GITHUB_SHA": "0123abc", "GITHUB_REF_TYPE": "tag", "GITHUB_REF_NAME": "v2.0.0"}
	code, _, stderr := gantryEnv(t, env, "", "append", "--base", "oci:"+mustAbs(t, nginxBase), "--layer", siteDir(t)+":/srv", "--allow-root",
		"--annotation", "org.opencontainers.image.version=custom", "-o", "oci:"+out, "--cache-dir", t.TempDir())
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	idx := registrytest.LayoutIndex(t, out)
	m, _ := idx.IndexManifest()
	annotations := m.Annotations
	for k, want := range map[string]string{
		"org.opencontainers.image.source":   "https://github.com/acme/site",
		"org.opencontainers.image.revision": "0123abc",
		"org.opencontainers.image.version":  "custom", // set by the build: CI does not override it
	} {
		if got := annotations[k]; got != want {
			t.Errorf("index annotation %s = %q, want %q", k, got, want)
		}
	}
}

// -o tar:- writes the docker-loadable tarball to stdout and reports on
// stderr; --digest-file lists no local output as if it were pushed.
func TestTarToStdoutAndDigestFile(t *testing.T) {
	digests := filepath.Join(t.TempDir(), "digests")
	code, stdout, stderr := gantry(t, "append", "--base", "oci:"+mustAbs(t, nginxBase), "--layer", siteDir(t)+":/srv", "--allow-root",
		"--platform", "linux/amd64", "-o", "tar:-", "--digest-file", digests, "--cache-dir", t.TempDir())
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	tr := tar.NewReader(strings.NewReader(stdout))
	names := map[string]bool{}
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names[h.Name] = true
	}
	if !names["manifest.json"] {
		t.Errorf("stdout is not a docker tarball: %v", names)
	}
	if !strings.Contains(stderr, "tar:-:image:latest sha256:") {
		t.Errorf("the reference is not reported on stderr: %q", stderr)
	}
	if b, err := os.ReadFile(digests); err != nil || len(b) != 0 {
		t.Errorf("--digest-file lists local outputs: %q %v", b, err)
	}
}

// --format docker turns an OCI base's image into Docker v2 (podman reads
// HEALTHCHECK only from those): same layer bytes, Docker media types, the
// base recorded in labels; zstd cannot go with it.
func TestFormatDocker(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	code, _, stderr := gantry(t, "append", "--base", "oci:"+mustAbs(t, nginxBase), "--layer", siteDir(t)+":/srv", "--allow-root",
		"--format", "docker", "--healthcheck", "CMD wget -q -O /dev/null http://127.0.0.1:8080/health", "-o", "oci:"+out, "--cache-dir", t.TempDir())
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	idx := registrytest.LayoutIndex(t, out)
	im, _ := idx.IndexManifest()
	if im.MediaType != types.DockerManifestList || len(im.Annotations) != 0 {
		t.Errorf("index %s with annotations %v", im.MediaType, im.Annotations)
	}
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := img.Manifest()
		if m.MediaType != types.DockerManifestSchema2 || m.Config.MediaType != types.DockerConfigJSON {
			t.Errorf("%s: manifest %s, config %s", d.Platform.Architecture, m.MediaType, m.Config.MediaType)
		}
		for _, l := range m.Layers {
			if l.MediaType != types.DockerLayer {
				t.Errorf("%s: layer %s is %s", d.Platform.Architecture, l.Digest, l.MediaType)
			}
		}
		cf, _ := img.ConfigFile()
		if cf.Config.Healthcheck == nil || cf.Config.Labels["org.opencontainers.image.base.digest"] == "" {
			t.Errorf("%s: healthcheck %v, labels %v", d.Platform.Architecture, cf.Config.Healthcheck, cf.Config.Labels)
		}
	}
	code, _, stderr = gantry(t, "append", "--base", "oci:"+mustAbs(t, nginxBase), "--format", "docker", "--compression", "zstd", "-o", "oci:"+filepath.Join(t.TempDir(), "x"))
	if code != exitUsage || !strings.Contains(stderr, "--format: docker images cannot hold zstd layers") {
		t.Errorf("docker with zstd: exit %d, %q", code, stderr)
	}
}
