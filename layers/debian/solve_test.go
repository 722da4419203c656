package debian

import (
	"bytes"
	"strings"
	"testing"
)

// universe builds a Universe for amd64 from Packages-style stanzas.
func universe(t *testing.T, installed, available string) *Universe {
	t.Helper()
	parse := func(s string, index bool) []*Package {
		paras, err := ParseControl(strings.NewReader(s), "test", false)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := ParsePackages(paras, "test", index)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	return NewUniverse("amd64", parse(installed, false), parse(available, true))
}

func stanza(name, version, arch, extra string) string {
	return "Package: " + name + "\nVersion: " + version + "\nArchitecture: " + arch + "\n" + extra +
		"Filename: pool/" + name + ".deb\nSize: 1\nSHA256: " + strings.Repeat("a", 64) + "\n\n"
}

const testInstalled = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nMulti-Arch: same\nVersion: 2.36-9\n\n" +
	"Package: oldlib\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n\n" +
	"Package: removed\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0-1\n\n"

func names(ps []*Package) string {
	var b bytes.Buffer
	for _, p := range ps {
		b.WriteString(p.Name + "=" + p.Version.String() + " ")
	}
	return strings.TrimSpace(b.String())
}

func TestResolve(t *testing.T) {
	avail := stanza("app", "2.0-1", "amd64", "Depends: libc6 (>= 2.34), libfoo | libbar, mail-transport-agent, removed\nPre-Depends: data\nRecommends: extra\n") +
		stanza("app", "1.0-1", "amd64", "") +
		stanza("libc6", "2.36-9+deb12u14", "amd64", "") +
		stanza("libbar", "1.0", "amd64", "") +
		stanza("libfoo", "1.0", "arm64", "") + // wrong architecture: not a candidate
		stanza("exim4", "4.96", "amd64", "Provides: mail-transport-agent\n") +
		stanza("dma", "0.13", "amd64", "Provides: mail-transport-agent\n") +
		stanza("data", "1~rc1", "all", "") +
		stanza("removed", "1.0-1", "amd64", "") +
		stanza("extra", "1", "amd64", "")
	u := universe(t, testInstalled, avail)
	got, err := u.Resolve([]Request{{Name: "app"}})
	if err != nil {
		t.Fatal(err)
	}
	// libc6 is the base's; libbar is the first alternative the archive has;
	// dma is the first provider by name; a package the base has only as
	// config files is installed; recommends are not followed.
	if want := "app=2.0-1 data=1~rc1 dma=0.13 libbar=1.0 removed=1.0-1"; names(got) != want {
		t.Errorf("got %s, want %s", names(got), want)
	}
	if got, err := u.Resolve([]Request{{Name: "app", Version: "1.0-1"}}); err != nil || names(got) != "app=1.0-1" {
		t.Errorf("app=1.0-1: %s %v", names(got), err)
	}
}

func TestResolveErrors(t *testing.T) {
	avail := stanza("tool", "1.0", "amd64", "Depends: libnew (>= 2)\n") +
		stanza("libnew", "2.0", "amd64", "Depends: oldlib (>= 2.0)\n") +
		stanza("oldlib", "2.0-1", "amd64", "") +
		stanza("virtual-user", "1", "amd64", "Depends: some-virtual (>= 2)\n") +
		stanza("provider", "1", "amd64", "Provides: some-virtual\n") +
		stanza("breaker", "1", "amd64", "Breaks: libc6 (<< 2.37)\n")
	u := universe(t, testInstalled, avail)
	for _, c := range []struct {
		req  Request
		want string
	}{
		// the base has oldlib 1.0-1, which libnew cannot use; the base's
		// package is never replaced
		{Request{Name: "tool"}, "tool 1.0 → libnew 2.0 needs oldlib (>= 2.0): the base has oldlib 1.0-1"},
		{Request{Name: "nosuch"}, "nosuch: no such package for amd64"},
		{Request{Name: "tool", Version: "9"}, "tool=9: the archive has tool only at 1.0"},
		{Request{Name: "oldlib", Version: "2.0-1"}, "the base has oldlib 1.0-1 installed"},
		{Request{Name: "some-virtual"}, "virtual package; ask for one of the packages that provide it: provider"},
		// an unversioned Provides does not meet a versioned dependency
		{Request{Name: "virtual-user"}, "virtual-user 1 needs some-virtual (>= 2): the archive has no some-virtual for amd64"},
		{Request{Name: "breaker"}, "breaker:amd64=1 conflicts with or breaks libc6:amd64=2.36-9, which the base has"},
	} {
		_, err := u.Resolve([]Request{c.req})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.req, err, c.want)
		}
	}
	if _, err := u.Resolve([]Request{{Name: "oldlib"}}); err != nil {
		t.Errorf("a package the base has is no error: %v", err)
	}
}

func TestMultiArch(t *testing.T) {
	avail := stanza("py-user", "1", "amd64", "Depends: python3:any, perl:any\n") +
		stanza("python3", "3.11", "amd64", "Multi-Arch: allowed\n") +
		stanza("perl", "5.36", "amd64", "")
	u := universe(t, "", avail)
	_, err := u.Resolve([]Request{{Name: "py-user"}})
	if err == nil || !strings.Contains(err.Error(), "needs perl:any") {
		t.Fatalf("perl:any needs Multi-Arch: allowed, got %v", err)
	}
}

// An alternative whose own dependencies cannot be met is undone, and the
// next one is tried.
func TestResolveBacktracks(t *testing.T) {
	avail := stanza("app", "1", "amd64", "Depends: first | second\n") +
		stanza("first", "1", "amd64", "Depends: helper, nosuch\n") +
		stanza("helper", "1", "amd64", "") +
		stanza("second", "1", "amd64", "")
	got, err := universe(t, "", avail).Resolve([]Request{{Name: "app"}})
	if err != nil || names(got) != "app=1 second=1" {
		t.Fatalf("got %s %v", names(got), err)
	}
	avail = stanza("app", "1", "amd64", "Depends: first | second\n") +
		stanza("first", "1", "amd64", "Depends: nosuch\n")
	_, err = universe(t, "", avail).Resolve([]Request{{Name: "app"}})
	if err == nil || !strings.Contains(err.Error(), "app 1 needs first | second: app 1 → first 1 needs nosuch") || !strings.Contains(err.Error(), "the archive has no second") {
		t.Fatalf("got %v", err)
	}
}
