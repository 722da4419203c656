package debian

import (
	"archive/tar"
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
)

func TestParseControl(t *testing.T) {
	ps, err := ParseControl(strings.NewReader("Package: a\nDescription: short\n long\n .\n more\n\n\nPackage: b\nConffiles:\n /etc/x 123\n"), "t", false)
	if err != nil || len(ps) != 2 {
		t.Fatal(ps, err)
	}
	if got := Lines(ps[0].Get("description")); strings.Join(got, "|") != "long||more" {
		t.Errorf("lines %q", got)
	}
	var b bytes.Buffer
	ps[1].WriteTo(&b)
	if b.String() != "Package: b\nConffiles:\n /etc/x 123\n" {
		t.Errorf("written %q", b.String())
	}
	for _, bad := range []string{"Package: a\nPackage: b\n", " leading\n", "no colon\n", "Package: a\n#comment\n"} {
		if _, err := ParseControl(strings.NewReader(bad), "t", false); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestRelations(t *testing.T) {
	cs, err := ParseRelations("libc6 (>= 2.34), python3:any | perl (<< 6~),\n foo (> 1)")
	if err != nil || len(cs) != 3 || cs[1][0].Arch != "any" || cs[1][1].Op != "<<" || cs[2][0].Op != ">=" {
		t.Fatalf("%v %v", cs, err)
	}
	if cs[1].String() != "python3:any | perl (<< 6~)" {
		t.Errorf("%s", cs[1])
	}
	for _, bad := range []string{"foo [amd64]", "foo <!nocheck>", "foo (>= 1", "foo (~ 1)", "Foo", "a,,b"} {
		if _, err := ParseRelations(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestSources(t *testing.T) {
	as, err := ParseSourcesList([]byte("# c\ndeb [arch=arm64 signed-by=/usr/share/keyrings/x.gpg] http://a/debian/ bookworm main contrib\ndeb-src http://a bookworm main\n"), "sources.list")
	if err != nil || len(as) != 1 || as[0].URI != "http://a/debian" || as[0].SignedBy != "/usr/share/keyrings/x.gpg" || !as[0].For("arm64") || as[0].For("amd64") {
		t.Fatalf("%+v %v", as, err)
	}
	deb822 := "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n" +
		"Types: deb\nURIs: http://b\nSuites: x\nComponents: main\nEnabled: no\n\n" +
		"Types: deb-src\nURIs: http://c\nSuites: x\nComponents: main\n"
	as, err = ParseSources([]byte(deb822), "debian.sources")
	if err != nil || len(as) != 2 || as[1].Suite != "bookworm-updates" {
		t.Fatalf("%+v %v", as, err)
	}
	for _, bad := range []string{"deb http://a ./", "deb [trusted=yes] http://a x main", "deb ftp://a x main", "deb file://host/srv x main", "rpm http://a x main"} {
		if _, err := ParseSourcesList([]byte(bad), "s"); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// testKey is an OpenPGP key made in the test, and a keyring holding it.
func testKey(t *testing.T) (*openpgp.Entity, openpgp.EntityList) {
	e, err := openpgp.NewEntity("test", "", "test@example.invalid", nil)
	must(t, err)
	return e, openpgp.EntityList{e}
}

func TestVerifyRelease(t *testing.T) {
	key, ring := testKey(t)
	_, other := testKey(t)
	release := []byte("Suite: bookworm\nSHA256:\n " + strings.Repeat("a", 64) + " 10 main/binary-amd64/Packages.xz\n")
	var signed bytes.Buffer
	w, err := clearsign.Encode(&signed, key.PrivateKey, nil)
	must(t, err)
	w.Write(release)
	must(t, w.Close())
	text, err := VerifyInRelease(signed.Bytes(), ring)
	if err != nil || !bytes.Equal(bytes.TrimSpace(text), bytes.TrimSpace(release)) {
		t.Fatalf("%q %v", text, err)
	}
	if _, err := VerifyInRelease(signed.Bytes(), other); err == nil || !strings.Contains(err.Error(), "key the keyring does not have") {
		t.Errorf("unknown key: %v", err)
	}
	tampered := bytes.Replace(signed.Bytes(), []byte("bookworm"), []byte("trixie"), 1)
	if _, err := VerifyInRelease(tampered, ring); err == nil || !strings.Contains(err.Error(), "bad Release signature") {
		t.Errorf("tampered: %v", err)
	}
	var sig bytes.Buffer
	must(t, openpgp.DetachSign(&sig, key, bytes.NewReader(release), nil))
	if err := VerifyDetached(release, sig.Bytes(), ring); err != nil {
		t.Error(err)
	}
	if err := VerifyDetached(append(release, 'x'), sig.Bytes(), ring); err == nil {
		t.Error("a changed Release verified")
	}
	rel, err := ParseRelease(text)
	if err != nil || rel.Files["main/binary-amd64/Packages.xz"].Size != 10 || !rel.ValidUntil.IsZero() {
		t.Errorf("%+v %v", rel, err)
	}
	rel, err = ParseRelease(append([]byte("Valid-Until: Sat, 01 Jan 2000 00:00:00 UTC\n"), release...))
	if err != nil || rel.ValidUntil.Year() != 2000 {
		t.Errorf("Valid-Until: %+v %v", rel, err)
	}
}

// Files of a package go through the base's symlinks; a directory the
// base has keeps its attributes; a file over a base directory is refused.
func TestLayoutMergedUsr(t *testing.T) {
	base := bookwormBase("amd64")
	s, err := openStore(t.TempDir())
	must(t, err)
	l := newLayout(context.Background(), base, s)
	sum, n, err := s.put(context.Background(), strings.NewReader("#!/bin/sh\n"), 10)
	must(t, err)
	for _, m := range []debMember{
		{Name: "", Type: tar.TypeDir, Mode: 0o755},
		{Name: "bin", Type: tar.TypeDir, Mode: 0o755},
		{Name: "bin/ps", Type: tar.TypeReg, Mode: 0o755, SHA256: sum, Size: n},
		{Name: "bin/pgrep", Type: tar.TypeLink, Link: "bin/ps"},
		{Name: "sbin/sysctl", Type: tar.TypeSymlink, Link: "../bin/ps"},
		{Name: "usr/share/doc/procps", Type: tar.TypeDir, Mode: 0o755},
	} {
		must(t, l.place("procps", m))
	}
	got := map[string]byte{}
	for _, e := range l.sorted() {
		got[e.Name] = e.Type
	}
	want := map[string]byte{"usr/bin/ps": tar.TypeReg, "usr/bin/pgrep": tar.TypeReg, "usr/sbin/sysctl": tar.TypeSymlink, "usr/share/doc/procps": tar.TypeDir}
	if len(got) != len(want) {
		t.Errorf("entries %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: type %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if err := l.place("other", debMember{Name: "usr/share", Type: tar.TypeReg, SHA256: sum, Size: n}); err == nil || !strings.Contains(err.Error(), "where the image has a directory") {
		t.Errorf("file over a directory: %v", err)
	}
	if err := l.place("other", debMember{Name: "bin/ps", Type: tar.TypeSymlink, Link: "x"}); err == nil || !strings.Contains(err.Error(), "procps and other both install /usr/bin/ps") {
		t.Errorf("collision: %v", err)
	}
	if _, err := cleanMember("./usr/../../etc/passwd"); err == nil {
		t.Error("a member leaving the root was accepted")
	}
}

func TestInstalledStanza(t *testing.T) {
	p, err := installedStanza([]byte("Package: procps\nVersion: 2:4.0.2-3\nArchitecture: amd64\nDescription: ps\n more\n"),
		[]byte("/etc/sysctl.conf\n"), []byte("0123 etc/sysctl.conf\nabcd usr/bin/ps\n"), "t")
	must(t, err)
	var b bytes.Buffer
	p.WriteTo(&b)
	want := "Package: procps\nStatus: install ok installed\nVersion: 2:4.0.2-3\nArchitecture: amd64\nConffiles:\n /etc/sysctl.conf 0123\nDescription: ps\n more\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	merged := string(mergedStatus([]byte(baseStatus("amd64")), []*Paragraph{p}))
	if !strings.HasPrefix(merged, baseStatus("amd64")) || !strings.HasSuffix(merged, want+"\n") {
		t.Errorf("merged:\n%s", merged)
	}
}
