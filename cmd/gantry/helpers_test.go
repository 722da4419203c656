package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/assemble/registrytest"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// The CLI tests run gantry in process through run, against registries
// from registrytest.

const (
	example    = "../../testdata/taskflow/gantry.yaml"
	nginxBase  = "../../testdata/bases/nginx-alpine"
	pythonBase = "../../testdata/bases/python-slim"
	dockerBase = "../../testdata/bases/docker-v2"
)

// The one user of the registries that need credentials.
const (
	regUser     = "ci-bot"
	regPassword = "Zx9-login-secret-never-printed"
)

// gantry runs the CLI in process with only HOME and PATH in its
// environment and returns its exit code, stdout and stderr.
func gantry(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return gantryEnv(t, nil, "", args...)
}

// gantryEnv is gantry with more environment (looked up first; HOME and
// PATH still come from the process) and a standard input.
func gantryEnv(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	// stderr gets log lines and progress lines from goroutines that each
	// lock their own mutex: the buffers lock themselves too
	var out, errb registrytest.Buffer
	getenv := func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		if k == "HOME" || k == "PATH" {
			return os.LookupEnv(k)
		}
		return "", false
	}
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb, getenv)
	return code, out.String(), errb.String()
}

// htpasswdRegistry is a registry over TLS with a certificate of ca and
// Basic auth for regUser.
func htpasswdRegistry(t *testing.T, ca *registrytest.CA) *registrytest.Registry {
	t.Helper()
	return registrytest.New(t, registrytest.WithTLS(ca), registrytest.WithHtpasswd(map[string]string{regUser: regPassword}))
}

// tool runs a real client (skopeo, crane, umoci) and returns its output;
// the test is skipped without it, or fails under CI.
func tool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(registrytest.LookPath(t, name), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

type result struct {
	Name       string
	References []string
	Digest     string
	MediaType  string
	Platforms  []struct {
		Platform                         string
		Digest                           string
		CompressedSize, UncompressedSize int64
	}
}

func parseResults(t *testing.T, stdout string) []result {
	t.Helper()
	var out []result
	dec := json.NewDecoder(strings.NewReader(stdout))
	for {
		var r result
		if err := dec.Decode(&r); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("stdout is not JSON objects: %v\n%s", err, stdout)
		}
		out = append(out, r)
	}
}

// lastLine is the last line of stderr.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// siteDir is a directory with one page, for --layer.
func siteDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	if err := os.WriteFile(filepath.Join(d, "index.html"), []byte("<h1>login</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// isolateDockerConfig points DOCKER_CONFIG and HOME at empty directories
// for this test and returns the config directory. The keychain of
// go-containerregistry and the credential helpers read the process
// environment, so tests using it cannot run in parallel.
func isolateDockerConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("REGISTRY_AUTH_FILE", "")
	t.Setenv("XDG_RUNTIME_DIR", "")
	return dir
}

// assertNoSecret: secret is in none of the texts nor any file under dirs.
func assertNoSecret(t *testing.T, secret string, texts map[string]string, dirs ...string) {
	t.Helper()
	forms := []string{secret, base64.StdEncoding.EncodeToString([]byte(regUser + ":" + secret))}
	for what, s := range texts {
		for _, f := range forms {
			if strings.Contains(s, f) {
				t.Errorf("the password is in %s", what)
			}
		}
	}
	for _, d := range dirs {
		filepath.WalkDir(d, func(p string, de fs.DirEntry, err error) error {
			if err != nil || de.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, f := range forms {
				if bytes.Contains(b, []byte(f)) {
					t.Errorf("the password is in %s", p)
				}
			}
			return nil
		})
	}
}

// checkDigestFile: every line is REF@DIGEST, REF is one of refs, and the
// registry resolves REF to DIGEST.
func checkDigestFile(t *testing.T, file string, refs []string, opts ...remote.Option) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != len(refs) {
		t.Fatalf("--digest-file has %d lines, want %d:\n%s", len(lines), len(refs), b)
	}
	for i, line := range lines {
		ref, dig, ok := strings.Cut(line, "@")
		if !ok || ref != refs[i] || !strings.HasPrefix(dig, "sha256:") || len(dig) != 71 {
			t.Errorf("--digest-file line %q, want %s@sha256:...", line, refs[i])
			continue
		}
		// the tag resolves to the digest, and the digest reference resolves
		d, err := name.NewDigest(line)
		if err != nil {
			t.Errorf("%q is not a digest reference: %v", line, err)
			continue
		}
		desc, err := remote.Head(d, opts...)
		if err != nil || desc.Digest.String() != dig {
			t.Errorf("%s does not resolve: %v %v", line, desc, err)
		}
		tag, _ := name.NewTag(ref)
		desc, err = remote.Head(tag, opts...)
		if err != nil || desc.Digest.String() != dig {
			t.Errorf("%s resolves to %v (%v), the digest file says %s", ref, desc, err, dig)
		}
	}
}
