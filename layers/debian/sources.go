package debian

import (
	"bytes"
	"fmt"
	"net/url"
	"path"
	"strings"
)

// Archive is one apt source: an archive root, a suite and its components,
// and the keys its Release file must be signed with.
type Archive struct {
	URI        string // the archive root, without a trailing slash
	Suite      string
	Components []string
	// Archs limits the source to these architectures (arch=); nil: any.
	Archs []string
	// SignedBy is a keyring file, or an armored key block (deb822
	// Signed-By); "" means the default keyring.
	SignedBy string
	// AnyAge accepts a Release file past its Valid-Until
	// (check-valid-until=no, for snapshot.debian.org).
	AnyAge bool
	// Where is the file and line the source came from, for errors.
	Where string
}

// String names the source as sources.list does.
func (a *Archive) String() string {
	return "deb " + a.URI + " " + a.Suite + " " + strings.Join(a.Components, " ")
}

// ParseSourceLine parses one sources.list line: "deb [opt=value ...] URI
// SUITE COMPONENT...". ok is false for a comment, a blank line or deb-src.
func ParseSourceLine(line, where string) (a *Archive, ok bool, err error) {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	f := strings.Fields(line)
	if len(f) == 0 || f[0] == "deb-src" {
		return nil, false, nil
	}
	if f[0] != "deb" {
		return nil, false, fmt.Errorf("%s: %q: a source starts with deb (deb URI SUITE COMPONENT...)", where, line)
	}
	f = f[1:]
	a = &Archive{Where: where}
	if len(f) > 0 && strings.HasPrefix(f[0], "[") {
		var opts []string
		for len(f) > 0 {
			o := f[0]
			f = f[1:]
			opts = append(opts, strings.Trim(o, "[]"))
			if strings.HasSuffix(o, "]") {
				break
			}
		}
		if err := a.options(strings.Fields(strings.Join(opts, " "))); err != nil {
			return nil, false, fmt.Errorf("%s: %w", where, err)
		}
	}
	if len(f) < 3 {
		return nil, false, fmt.Errorf("%s: %q: give deb URI SUITE COMPONENT... (flat repositories are not supported)", where, strings.TrimSpace(line))
	}
	a.URI, a.Suite, a.Components = f[0], f[1], f[2:]
	return a, true, a.check()
}

// options applies sources.list options (arch=, signed-by=, trusted=).
func (a *Archive) options(opts []string) error {
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			return fmt.Errorf("option %q is not key=value", o)
		}
		switch k {
		case "arch":
			a.Archs = strings.Split(v, ",")
		case "signed-by":
			a.SignedBy = v
		case "check-valid-until":
			a.AnyAge = v == "no"
		case "trusted":
			if v == "yes" {
				return fmt.Errorf("trusted=yes: gantry installs only from archives whose Release file it can verify; give the archive's key instead")
			}
		}
	}
	return nil
}

// archiveURI reports whether uri names an archive gantry can fetch from:
// http(s), or a directory of the build machine (file:/abs, file:///abs,
// or file:rel beside gantry.yaml, which the config resolves).
func archiveURI(uri string) bool {
	u, err := url.Parse(uri)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "http", "https":
		return u.Host != ""
	case "file":
		return u.Host == "" && (u.Opaque != "" || path.IsAbs(u.Path))
	}
	return false
}

func (a *Archive) check() error {
	if !archiveURI(a.URI) {
		return fmt.Errorf("%s: %q is not an http(s) or file: archive URI", a.Where, a.URI)
	}
	a.URI = strings.TrimRight(a.URI, "/")
	if strings.HasSuffix(a.Suite, "/") || a.Suite == "" {
		return fmt.Errorf("%s: suite %q: flat repositories are not supported", a.Where, a.Suite)
	}
	for _, c := range a.Components {
		if c == "" || strings.ContainsAny(c, " \t") || strings.Contains(c, "..") {
			return fmt.Errorf("%s: component %q is not a component name", a.Where, c)
		}
	}
	return nil
}

// ParseSourcesList reads a sources.list file (one-line format).
func ParseSourcesList(data []byte, name string) ([]*Archive, error) {
	var out []*Archive
	for i, line := range strings.Split(string(data), "\n") {
		a, ok, err := ParseSourceLine(line, fmt.Sprintf("%s:%d", name, i+1))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, a)
		}
	}
	return out, nil
}

// ParseSources reads a deb822 .sources file: Types, URIs, Suites,
// Components, Architectures, Signed-By (a keyring file or an armored key
// block) and Enabled.
func ParseSources(data []byte, name string) ([]*Archive, error) {
	paras, err := ParseControl(bytes.NewReader(data), name, true)
	if err != nil {
		return nil, err
	}
	var out []*Archive
	for _, p := range paras {
		where := fmt.Sprintf("%s:%d", name, p.Line)
		if !strings.Contains(" "+p.Get("Types")+" ", " deb ") || strings.EqualFold(p.Get("Enabled"), "no") {
			continue
		}
		if p.Get("Trusted") == "yes" {
			return nil, fmt.Errorf("%s: Trusted: yes: gantry installs only from archives whose Release file it can verify; give the archive's key instead", where)
		}
		comps := strings.Fields(p.Get("Components"))
		signed := p.Get("Signed-By")
		if strings.Contains(signed, "\n") { // an inline key: its lines, "." for blank ones
			signed = strings.TrimSpace(strings.Join(append([]string{firstLine(signed)}, Lines(signed)...), "\n"))
		}
		for _, uri := range strings.Fields(p.Get("URIs")) {
			for _, suite := range strings.Fields(p.Get("Suites")) {
				a := &Archive{URI: uri, Suite: suite, Components: comps, SignedBy: signed, Where: where, AnyAge: p.Get("Check-Valid-Until") == "no"}
				if archs := p.Get("Architectures"); archs != "" {
					a.Archs = strings.Fields(archs)
				}
				if len(comps) == 0 {
					return nil, fmt.Errorf("%s: no Components (flat repositories are not supported)", where)
				}
				if err := a.check(); err != nil {
					return nil, err
				}
				out = append(out, a)
			}
		}
	}
	return out, nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// For reports whether the source serves arch (its arch= option).
func (a *Archive) For(arch string) bool {
	if len(a.Archs) == 0 {
		return true
	}
	for _, x := range a.Archs {
		if x == arch {
			return true
		}
	}
	return false
}
