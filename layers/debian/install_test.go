package debian

import (
	"archive/tar"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/gantry-dev/gantry/layers"
	"github.com/gantry-dev/gantry/layers/debian/debiantest"
)

func installOpts(t *testing.T, ta *debiantest.Archive, arch, cache string, pkgs ...string) Options {
	keys, err := ReadKeyring(ta.Key, "test key")
	must(t, err)
	src, _, err := ParseSourceLine(ta.Source(), "test")
	must(t, err)
	var reqs []Request
	for _, p := range pkgs {
		r, err := ParseRequest(p)
		must(t, err)
		reqs = append(reqs, r)
	}
	return Options{Arch: arch, Platform: "linux/" + arch, Packages: reqs, Sources: []*Archive{src}, Cache: cache,
		Keys: func(context.Context, *Archive) (openpgp.EntityList, error) { return keys, nil }}
}

func byName(entries []layers.Entry) map[string]layers.Entry {
	m := map[string]layers.Entry{}
	for _, e := range entries {
		m[e.Name] = e
	}
	return m
}

func content(t *testing.T, e layers.Entry) string {
	if e.Data != nil {
		return string(e.Data)
	}
	b, err := os.ReadFile(e.Source)
	must(t, err)
	return string(b)
}

// TestInstallRealPackages installs curl, jq and procps from real bookworm
// .debs, for amd64 and arm64, into a merged-/usr base.
func TestInstallRealPackages(t *testing.T) {
	ta := debiantest.New(t)
	cache := t.TempDir()
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			t.Parallel() // one cache, two architectures: no file is shared
			ctx := context.Background()
			res, err := Install(ctx, slimBase(t, ta, arch), installOpts(t, ta, arch, cache, "curl", "jq", "procps"))
			must(t, err)
			t.Logf("%s: %d packages, %d entries; warnings: %q", arch, len(res.Packages), len(res.Entries), res.Warnings)
			m := byName(res.Entries)
			for _, want := range []string{"usr/bin/ps", "usr/bin/jq", "usr/bin/curl"} {
				if e, ok := m[want]; !ok || e.Type != tar.TypeReg {
					t.Errorf("no regular file %s", want)
				}
			}
			// the base's /bin -> usr/bin stays a symlink: nothing is written below it
			for name := range m {
				if name == "bin" || strings.HasPrefix(name, "bin/") || name == "lib" || strings.HasPrefix(name, "lib/") || name == "sbin" {
					t.Errorf("entry %s would replace the base's symlink", name)
				}
			}
			f, err := elf.Open(m["usr/bin/jq"].Source)
			must(t, err)
			if f.Machine != machines[arch] {
				t.Errorf("jq is %v, want %v", f.Machine, machines[arch])
			}
			f.Close()
			status := content(t, m["var/lib/dpkg/status"])
			if !strings.HasPrefix(status, baseStatus(arch)[:40]) || !strings.Contains(status, "Package: jq\nStatus: install ok installed\n") {
				t.Errorf("status is not the base's with jq added:\n%.400s", status)
			}
			if strings.Count(status, "Package: libc6\n") != 1 {
				t.Error("libc6, which the base has, was installed again")
			}
			if !strings.Contains(content(t, m["var/lib/dpkg/info/procps.list"]), "\n/bin/ps\n") {
				t.Error("procps.list does not name /bin/ps as the package does")
			}
			if _, ok := m["var/lib/dpkg/info/libjq1:"+arch+".list"]; !ok {
				t.Error("no info file for Multi-Arch: same libjq1 with its architecture")
			}
			if !strings.Contains(strings.Join(res.Warnings, "\n"), "procps: its postinst script was not run") {
				t.Errorf("warnings: %q", res.Warnings)
			}
			for _, w := range res.Warnings {
				if strings.Contains(w, "ldconfig") {
					t.Errorf("ldconfig trigger warned about: %s", w)
				}
			}
			checkWithDpkg(t, res.Entries, arch)
		})
	}
}

// checkWithDpkg writes the layer's dpkg database over the base's into a
// directory and asks dpkg itself what is installed; on amd64 it also runs
// the installed jq.
func checkWithDpkg(t *testing.T, entries []layers.Entry, arch string) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Log("dpkg-query not installed: the database is not checked by dpkg")
		return
	}
	root := t.TempDir()
	for _, e := range entries {
		p := filepath.Join(root, e.Name)
		switch e.Type {
		case tar.TypeDir:
			must(t, os.MkdirAll(p, 0o755))
		case tar.TypeReg:
			must(t, os.MkdirAll(filepath.Dir(p), 0o755))
			must(t, os.WriteFile(p, []byte(content(t, e)), os.FileMode(e.Mode&0o777)))
		case tar.TypeSymlink:
			must(t, os.MkdirAll(filepath.Dir(p), 0o755))
			must(t, os.Symlink(e.Linkname, p))
		}
	}
	admin := filepath.Join(root, "var/lib/dpkg")
	out := runIn(t, root, nil, "dpkg-query", "--admindir="+admin, "-W", "-f", "${Package} ${db:Status-Abbrev}\n", "jq", "libc6", "procps")
	if want := "jq ii \nlibc6 ii \nprocps ii \n"; string(out) != want {
		t.Errorf("dpkg-query says %q, want %q", out, want)
	}
	if list := string(runIn(t, root, nil, "dpkg-query", "--admindir="+admin, "-L", "jq")); !strings.Contains(list, "/usr/bin/jq") {
		t.Errorf("dpkg -L jq: %s", list)
	}
	if arch == "amd64" && runtime.GOARCH == "amd64" {
		lib := filepath.Join(root, "usr/lib/x86_64-linux-gnu")
		out := runIn(t, root, []string{"LD_LIBRARY_PATH=" + lib}, filepath.Join(root, "usr/bin/jq"), "--version")
		if !strings.HasPrefix(string(out), "jq-1.6") {
			t.Errorf("jq --version: %q", out)
		}
	}
}

func runIn(t *testing.T, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestInstallFailures and rebuilds: the errors name package, platform and
// source; nothing half-written enters the cache; a rebuild with nothing
// changed fetches only InRelease; a locked install from an empty cache
// makes the same entries.
func TestInstallFailures(t *testing.T) {
	ta := debiantest.New(t)
	ctx := context.Background()
	base := bookwormBase("arm64")
	cache := t.TempDir()
	first, err := Install(ctx, base, installOpts(t, ta, "arm64", cache, "jq"))
	must(t, err)
	if names := lockedNames(first.Packages); names != "jq libjq1 libonig5" {
		t.Errorf("jq installs %s", names)
	}

	t.Run("rebuild fetches only InRelease", func(t *testing.T) {
		ta.ResetRequests()
		again, err := Install(ctx, base, installOpts(t, ta, "arm64", cache, "jq"))
		must(t, err)
		if reqs := ta.Requests(); len(reqs) != 1 || reqs["/dists/bookworm/InRelease"] != 1 {
			t.Errorf("requests %v", reqs)
		}
		if len(again.Entries) != len(first.Entries) {
			t.Error("a rebuild made other entries")
		}
	})
	t.Run("locked from an empty cache", func(t *testing.T) {
		o := installOpts(t, ta, "arm64", t.TempDir())
		o.Locked = first.Packages
		res, err := Install(ctx, base, o)
		must(t, err)
		if len(res.Entries) != len(first.Entries) || content(t, byName(res.Entries)["var/lib/dpkg/status"]) != content(t, byName(first.Entries)["var/lib/dpkg/status"]) {
			t.Error("the locked install differs")
		}
		o.Locked = append([]Locked{}, first.Packages...)
		o.Locked[0].SHA256 = strings.Repeat("0", 64)
		o.Cache = t.TempDir()
		if _, err := Install(ctx, base, o); err == nil || !strings.Contains(err.Error(), "the lock pins jq") {
			t.Errorf("a changed package: %v", err)
		}
	})
	for _, c := range []struct {
		name    string
		pkgs    []string
		corrupt string // URL path served wrong
		keys    bool   // use another key
		want    string
	}{
		{"unknown package", []string{"nosuch"}, "", false, "linux/arm64: nosuch: no such package for arm64 in the archive"},
		{"wrong version", []string{"jq=9.9"}, "", false, "jq=9.9: the archive has jq only at 1.6-2.1+deb12u3"},
		{"unknown key", []string{"jq"}, "", true, "signed by a key the keyring does not have"},
		{"index hash mismatch", []string{"jq"}, "/dists/bookworm/main/binary-arm64/Packages.gz", false, "hash mismatch: the signed index says"},
		{"deb hash mismatch", []string{"jq"}, "/pool/main/arm64/jq_1.6-2.1+deb12u3_arm64.deb", false, "jq 1.6-2.1+deb12u3: http://127.0.0.1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.corrupt != "" {
				ta.Corrupt.Store(c.corrupt, []byte("not what the index says"))
				defer ta.Corrupt.Delete(c.corrupt)
			}
			o := installOpts(t, ta, "arm64", t.TempDir(), c.pkgs...)
			if c.keys {
				_, other := testKey(t)
				o.Keys = func(context.Context, *Archive) (openpgp.EntityList, error) { return other, nil }
			}
			_, err := Install(ctx, base, o)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "linux/arm64") {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %v", err)
			}
			t.Log(err)
		})
	}
	t.Run("Release and Release.gpg", func(t *testing.T) {
		o := installOpts(t, ta, "arm64", t.TempDir(), "jq")
		a, _, err := ParseSourceLine(ta.SourceFor("detached"), "test")
		must(t, err)
		o.Sources = []*Archive{a}
		ta.ResetRequests()
		if _, err := Install(ctx, base, o); err != nil {
			t.Fatal(err)
		}
		if r := ta.Requests(); r["/dists/detached/InRelease"] != 1 || r["/dists/detached/Release.gpg"] != 1 {
			t.Errorf("requests %v", r)
		}
	})
	t.Run("expired Release", func(t *testing.T) {
		o := installOpts(t, ta, "arm64", t.TempDir(), "jq")
		a, _, err := ParseSourceLine(ta.SourceFor("expired"), "test")
		must(t, err)
		o.Sources = []*Archive{a}
		if _, err := Install(ctx, base, o); err == nil || !strings.Contains(err.Error(), "expired on Sat, 01 Jan 2000") {
			t.Errorf("got %v", err)
		}
		a.AnyAge = true // [check-valid-until=no]
		if _, err := Install(ctx, base, o); err != nil {
			t.Errorf("check-valid-until=no: %v", err)
		}
	})
	t.Run("unreachable archive", func(t *testing.T) {
		o := installOpts(t, ta, "arm64", t.TempDir(), "jq")
		a, _, err := ParseSourceLine("deb http://127.0.0.1:1/debian bookworm main", "test")
		must(t, err)
		o.Sources = []*Archive{a}
		if _, err := Install(ctx, base, o); err == nil || !strings.Contains(err.Error(), "linux/arm64: fetching http://127.0.0.1:1/debian/dists/bookworm/InRelease") || !strings.Contains(err.Error(), "is the archive reachable?") {
			t.Errorf("got %v", err)
		}
	})
	if _, err := Install(ctx, bookwormBase("arm64"), installOpts(t, ta, "arm64", cache, "jq")); err != nil {
		t.Errorf("the cache was spoilt by the failures: %v", err)
	}
}

func lockedNames(ps []Locked) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.Name)
	}
	return strings.Join(s, " ")
}

// Without sources: or keyring:, the base's own apt sources (deb822 with
// signed-by=) and trusted keys are used.
func TestInstallBaseSources(t *testing.T) {
	ta := debiantest.New(t)
	ctx := context.Background()
	for name, files := range map[string]map[string]string{
		"deb822 signed-by": {
			"etc/apt/sources.list.d/debian.sources": "Types: deb\nURIs: " + ta.URL + "\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/test.gpg\n",
			"usr/share/keyrings/test.gpg":           string(ta.Key),
		},
		"one-line, trusted.gpg.d": {
			"etc/apt/sources.list":              ta.Source() + "\n",
			"etc/apt/trusted.gpg.d/archive.gpg": string(ta.Key),
		},
	} {
		t.Run(name, func(t *testing.T) {
			base := bookwormBase("amd64")
			for _, d := range []string{"etc/apt/sources.list.d", "etc/apt/trusted.gpg.d", "usr/share/keyrings"} {
				base[d] = mapEntry{typ: tar.TypeDir}
			}
			for n, data := range files {
				base[n] = mapEntry{typ: tar.TypeReg, data: data}
			}
			srcs, err := BaseSources(ctx, base)
			must(t, err)
			o := Options{Arch: "amd64", Platform: "linux/amd64", Packages: []Request{{Name: "jq"}}, Sources: srcs, Cache: t.TempDir(),
				Keys: func(ctx context.Context, a *Archive) (openpgp.EntityList, error) { return BaseKeys(ctx, base, a) }}
			res, err := Install(ctx, base, o)
			must(t, err)
			if len(res.Packages) != 3 || len(res.Releases) != 1 || !strings.HasPrefix(res.Releases[0].Digest, "sha256:") {
				t.Errorf("packages %v releases %v", res.Packages, res.Releases)
			}
		})
	}
	if _, err := BaseSources(ctx, bookwormBase("amd64")); err == nil || !strings.Contains(err.Error(), "give sources:") {
		t.Errorf("a base without sources: %v", err)
	}
}

// slimPackages are packages debian:bookworm-slim has installed (besides
// the three of bookwormBase), so that what a test installs is what an
// install into that image would be, not perl and dpkg again.
var slimPackages = []string{"dpkg", "tar", "perl-base", "init-system-helpers", "usr-is-merged", "libacl1", "libselinux1",
	"libpcre2-8-0", "libbz2-1.0", "liblzma5", "libzstd1", "libmd0", "libgcc-s1", "gcc-12-base", "libcrypt1", "zlib1g",
	"libsystemd0", "libcap2", "libgcrypt20", "libgpg-error0", "liblz4-1", "libtinfo6"}

// slimBase is bookwormBase with slimPackages installed at the versions the
// test archive has.
func slimBase(t *testing.T, ta *debiantest.Archive, arch string) mapFS {
	data, err := os.ReadFile(filepath.Join(ta.Root, "dists/bookworm/main/binary-"+arch+"/Packages"))
	must(t, err)
	paras, err := ParseControl(strings.NewReader(string(data)), "Packages", false)
	must(t, err)
	byName := map[string]*Paragraph{}
	for i := range paras {
		byName[paras[i].Get("Package")] = &paras[i]
	}
	base := bookwormBase(arch)
	var b strings.Builder
	b.WriteString(base["var/lib/dpkg/status"].data)
	for _, n := range slimPackages {
		p := byName[n]
		if p == nil {
			t.Fatalf("the test archive has no %s", n)
		}
		for _, f := range []string{"Filename", "Size", "SHA256", "MD5sum", "SHA1", "SHA512", "Description-md5"} {
			p.Delete(f)
		}
		p.Set("Status", "install ok installed", "Package")
		p.WriteTo(&b)
		b.WriteString("\n")
	}
	base["var/lib/dpkg/status"] = mapEntry{typ: tar.TypeReg, data: b.String()}
	return base
}

// A distroless-style base keeps its dpkg database as status.d/ stanzas and
// no status file: the new packages get status.d files of their own.
func TestInstallStatusDir(t *testing.T) {
	ta := debiantest.New(t)
	base := bookwormBase("amd64")
	delete(base, "var/lib/dpkg/status")
	base["var/lib/dpkg/status.d"] = mapEntry{typ: tar.TypeDir}
	base["var/lib/dpkg/status.d/libc6"] = mapEntry{typ: tar.TypeReg, data: strings.Split(baseStatus("amd64"), "\n\n")[2] + "\n"}
	base["var/lib/dpkg/status.d/libc6.md5sums"] = mapEntry{typ: tar.TypeReg, data: "0123 usr/lib/x.so\n"}
	res, err := Install(context.Background(), base, installOpts(t, ta, "amd64", t.TempDir(), "jq"))
	must(t, err)
	m := byName(res.Entries)
	if _, ok := m["var/lib/dpkg/status"]; ok {
		t.Error("a status file was written beside status.d")
	}
	if !strings.HasPrefix(content(t, m["var/lib/dpkg/status.d/jq"]), "Package: jq\nStatus: install ok installed\n") {
		t.Error("no status.d/jq stanza")
	}
	if _, ok := m["var/lib/dpkg/status.d/libc6"]; ok || lockedNames(res.Packages) != "jq libjq1 libonig5" {
		t.Errorf("the base's libc6 (in status.d) was installed again: %s", lockedNames(res.Packages))
	}
}
