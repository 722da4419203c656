// Package debiantest serves a Debian archive on loopback for tests, made
// from real bookworm .debs of amd64 and arm64 (fetched once by
// testdata/debian/fetch-debs.sh), indexed with apt-ftparchive and signed
// with a throwaway key gpg makes for the test.
package debiantest

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ulikunitz/xz"
)

// Archive is a Debian archive on loopback made from real bookworm .debs:
// dists/bookworm/main/binary-{amd64,arm64}, Packages.xz for amd64 and
// Packages.gz for arm64, InRelease and Release + Release.gpg signed with a
// key made for the test; suites detached and expired share its indexes.
type Archive struct {
	Root string // the archive's files
	Key  []byte // the signing key (binary keyring)
	URL  string // http://127.0.0.1:PORT
	srv  *httptest.Server
	hits sync.Map // path → *atomic.Int64
	// Corrupt maps a URL path to the bytes served instead of the file.
	Corrupt sync.Map
}

// Source is the archive's sources.list line for suite bookworm.
func (ta *Archive) Source() string { return ta.SourceFor("bookworm") }

// SourceFor is the sources.list line for suite: bookworm; detached (only
// Release and Release.gpg); expired (Valid-Until in the past).
func (ta *Archive) SourceFor(suite string) string { return "deb " + ta.URL + " " + suite + " main" }

// DebsDir is where testdata/debian/fetch-debs.sh keeps the .debs.
func DebsDir() string {
	if d := os.Getenv("GANTRY_DEBIAN_DEBS"); d != "" {
		return d
	}
	return "/var/cache/gantry-e2e/debian-debs"
}

// New builds and serves the archive, or skips the test when the .debs or
// the tools are missing.
func New(t testing.TB) *Archive {
	t.Helper()
	for _, a := range []string{"amd64", "arm64"} {
		if _, err := os.Stat(filepath.Join(DebsDir(), a, ".complete")); err != nil {
			t.Skipf("no bookworm .debs for %s in %s: run testdata/debian/fetch-debs.sh (needs apt-get and a Debian mirror)", a, DebsDir())
		}
	}
	for _, tool := range []string{"apt-ftparchive", "gpg", "gpgconf"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install apt-utils gnupg)", tool)
		}
	}
	ta := &Archive{Root: t.TempDir()}
	for _, a := range []string{"amd64", "arm64"} {
		pool := filepath.Join(ta.Root, "pool", "main", a)
		must(t, os.MkdirAll(pool, 0o755))
		debs, _ := filepath.Glob(filepath.Join(DebsDir(), a, "*.deb"))
		for _, d := range debs {
			// apt-get download writes an epoch's ':' as %3a; the archive's pool has ':'
			name := strings.ReplaceAll(filepath.Base(d), "%3a", ":")
			must(t, os.Symlink(d, filepath.Join(pool, name)))
		}
		idx := run(t, ta.Root, nil, "apt-ftparchive", "packages", "pool/main/"+a)
		dir := filepath.Join(ta.Root, "dists", "bookworm", "main", "binary-"+a)
		must(t, os.MkdirAll(dir, 0o755))
		must(t, os.WriteFile(filepath.Join(dir, "Packages"), idx, 0o644))
		if a == "amd64" {
			writeCompressed(t, filepath.Join(dir, "Packages.xz"), idx, true)
		} else {
			writeCompressed(t, filepath.Join(dir, "Packages.gz"), idx, false)
		}
	}
	rel := run(t, filepath.Join(ta.Root, "dists", "bookworm"), nil, "apt-ftparchive",
		"-o", "APT::FTPArchive::Release::Suite=bookworm", "-o", "APT::FTPArchive::Release::Codename=bookworm",
		"-o", "APT::FTPArchive::Release::Architectures=amd64 arm64", "-o", "APT::FTPArchive::Release::Components=main", "release", ".")
	must(t, os.WriteFile(filepath.Join(ta.Root, "dists", "bookworm", "Release"), rel, 0o644))
	// two more suites over the same indexes: "detached" has only Release
	// and Release.gpg, "expired" a Valid-Until in the past
	for _, suite := range []string{"detached", "expired"} {
		dir := filepath.Join(ta.Root, "dists", suite)
		must(t, os.MkdirAll(dir, 0o755))
		must(t, os.Symlink("../bookworm/main", filepath.Join(dir, "main")))
		r := rel
		if suite == "expired" {
			r = append([]byte("Valid-Until: Sat, 01 Jan 2000 00:00:00 UTC\n"), rel...)
		}
		must(t, os.WriteFile(filepath.Join(dir, "Release"), r, 0o644))
	}
	ta.Key = signReleases(t, filepath.Join(ta.Root, "dists"))
	ta.srv = httptest.NewServer(http.HandlerFunc(ta.serve))
	t.Cleanup(ta.srv.Close)
	ta.URL = ta.srv.URL
	return ta
}

func (ta *Archive) serve(w http.ResponseWriter, r *http.Request) {
	n, _ := ta.hits.LoadOrStore(r.URL.Path, new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
	if b, ok := ta.Corrupt.Load(r.URL.Path); ok {
		w.Write(b.([]byte))
		return
	}
	http.FileServer(http.Dir(ta.Root)).ServeHTTP(w, r)
}

// Requests is how many requests the server has seen, by path.
func (ta *Archive) Requests() map[string]int64 {
	out := map[string]int64{}
	ta.hits.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

// ResetRequests forgets the requests seen so far.
func (ta *Archive) ResetRequests() { ta.hits.Clear() }

// signReleases makes a throwaway ed25519 key in a GNUPGHOME of its own,
// signs each suite's Release in dists as InRelease and Release.gpg (only
// Release.gpg for "detached"), and returns the public key.
func signReleases(t testing.TB, dists string) []byte {
	home, err := os.MkdirTemp("", "gpg") // short: gpg-agent's socket path is limited
	must(t, err)
	env := []string{"GNUPGHOME=" + home}
	t.Cleanup(func() {
		kill := exec.Command("gpgconf", "--kill", "all") // the agent gpg started
		kill.Env = append(os.Environ(), env...)
		kill.Run()
		os.RemoveAll(home)
	})
	run(t, dists, env, "gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", "gantry test archive <test@example.invalid>", "ed25519", "sign", "never")
	for _, suite := range []string{"bookworm", "detached", "expired"} {
		dir := filepath.Join(dists, suite)
		if suite != "detached" {
			run(t, dir, env, "gpg", "--batch", "--yes", "--clearsign", "-o", "InRelease", "Release")
		}
		run(t, dir, env, "gpg", "--batch", "--yes", "--detach-sign", "-o", "Release.gpg", "Release")
	}
	return run(t, dists, env, "gpg", "--batch", "--export")
}

func writeCompressed(t testing.TB, file string, data []byte, useXZ bool) {
	var b bytes.Buffer
	if useXZ {
		w, err := xz.NewWriter(&b)
		must(t, err)
		w.Write(data)
		must(t, w.Close())
	} else {
		w := gzip.NewWriter(&b)
		w.Write(data)
		must(t, w.Close())
	}
	must(t, os.WriteFile(file, b.Bytes(), 0o644))
}

func run(t testing.TB, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
