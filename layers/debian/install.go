package debian

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/gantry-dev/gantry/layers"
)

// Options say what Install installs for one platform, and from where.
type Options struct {
	Arch     string // the Debian architecture (amd64, arm64, armhf, ...)
	Platform string // the OCI platform, for messages
	Packages []Request
	Sources  []*Archive
	// Keys is the keyring an archive's Release must be signed with.
	Keys func(context.Context, *Archive) (openpgp.EntityList, error)
	// Locked, when not nil, is installed exactly instead of resolving
	// Packages: every package must be in the archive (or the cache) with
	// this version, architecture and sha256.
	Locked []Locked
	Cache  string // downloads and extracted files: <Cache>/debian/...
	Client *http.Client
	Log    *slog.Logger
}

// Locked is one installed package as the lock file records it.
type Locked struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
	SHA256  string `json:"sha256"`
}

// LockedRelease is the digest of an archive's InRelease (or Release) file.
type LockedRelease struct {
	Source string `json:"source"`
	Digest string `json:"digest"`
}

// Result is what Install made.
type Result struct {
	Entries  []layers.Entry // sorted, for layers.Builder
	Packages []Locked
	Releases []LockedRelease
	// Warnings name maintainer scripts and triggers that were not run.
	Warnings []string
}

// chosen is a package to install and how to get it.
type chosen struct {
	pkg *Package
	url string // "" when the store has it already (locked builds)
}

// Install resolves (or takes from the lock) the packages for o.Arch over
// the base's dpkg database, downloads and verifies them, and returns the
// layer entries: their files, placed through the base's symlinks, and the
// dpkg database with them added.
func Install(ctx context.Context, base BaseFS, o Options) (*Result, error) {
	res := &Result{}
	f, s, status, picks, err := prepare(ctx, base, o, res)
	if err != nil {
		return nil, err
	}
	l := newLayout(ctx, base, s)
	var stanzas []*Paragraph
	for _, c := range picks {
		p, err := unpack(ctx, f, s, l, c, res)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.Platform, err)
		}
		stanzas = append(stanzas, p)
	}
	if err := writeStatus(l, status, stanzas); err != nil {
		return nil, fmt.Errorf("%s: %w", o.Platform, err)
	}
	res.Entries = l.sorted()
	return res, nil
}

// Plan is what Install would install for o, without downloading any .deb:
// the packages (name, version, architecture, sha256 from the signed index)
// and the digests of the Release files, for a lock file.
func Plan(ctx context.Context, base BaseFS, o Options) (*Result, error) {
	o.Locked = nil
	res := &Result{}
	_, _, _, picks, err := prepare(ctx, base, o, res)
	if err != nil {
		return nil, err
	}
	for _, c := range picks {
		p := c.pkg
		res.Packages = append(res.Packages, Locked{Name: p.Name, Version: p.Version.String(), Arch: p.Arch, SHA256: p.SHA256})
	}
	return res, nil
}

// prepare opens the download cache and the file store, reads the base's
// dpkg database and picks the packages to install.
func prepare(ctx context.Context, base BaseFS, o Options, res *Result) (*fetcher, store, *BaseStatus, []chosen, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	f, err := newFetcher(o.Client, o.Cache)
	if err != nil {
		return nil, store{}, nil, nil, err
	}
	s, err := openStore(o.Cache)
	if err != nil {
		return nil, store{}, nil, nil, err
	}
	status, err := ReadBaseStatus(ctx, base)
	if err != nil {
		return nil, store{}, nil, nil, err
	}
	picks, err := pick(ctx, f, s, status, o, res)
	return f, s, status, picks, err
}

// pick is the packages to install: the lock's, or what resolution finds.
func pick(ctx context.Context, f *fetcher, s store, status *BaseStatus, o Options, res *Result) ([]chosen, error) {
	if o.Locked != nil && s.allUnpacked(o.Locked) {
		var out []chosen
		for _, lp := range o.Locked {
			v, err := ParseVersion(lp.Version)
			if err != nil {
				return nil, fmt.Errorf("%s: the lock's %s: %w", o.Platform, lp.Name, err)
			}
			out = append(out, chosen{pkg: &Package{Name: lp.Name, Version: v, Arch: lp.Arch, SHA256: lp.SHA256}})
		}
		return out, nil
	}
	var avail []*Package
	for _, a := range o.Sources {
		if !a.For(o.Arch) {
			continue
		}
		keys, err := o.Keys(ctx, a)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.Platform, err)
		}
		ix, err := f.loadIndex(ctx, a, o.Arch, keys)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.Platform, err)
		}
		avail = append(avail, ix.Packages...)
		res.Releases = append(res.Releases, LockedRelease{Source: a.String(), Digest: "sha256:" + ix.ReleaseDigest})
		o.Log.Debug("debian index", "platform", o.Platform, "source", a.String(), "packages", len(ix.Packages))
	}
	if len(avail) == 0 {
		return nil, fmt.Errorf("%s: no apt source serves %s", o.Platform, o.Arch)
	}
	var pkgs []*Package
	var err error
	if o.Locked != nil {
		pkgs, err = lockedPackages(o.Locked, avail, res.Releases)
	} else {
		pkgs, err = NewUniverse(o.Arch, status.Packages, avail).Resolve(o.Packages)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w (sources: %s)", o.Platform, err, sourceList(o.Sources))
	}
	out := make([]chosen, len(pkgs))
	for i, p := range pkgs {
		out[i] = chosen{pkg: p, url: p.Origin.URI + "/" + escapePath(p.Filename)}
	}
	return out, nil
}

func sourceList(as []*Archive) string {
	var s []string
	for _, a := range as {
		s = append(s, a.String())
	}
	return strings.Join(s, "; ")
}

// lockedPackages finds each locked package in the archive, with its sha256.
func lockedPackages(locked []Locked, avail []*Package, rels []LockedRelease) ([]*Package, error) {
	var out []*Package
	for _, lp := range locked {
		var found *Package
		for _, p := range avail {
			if p.Name == lp.Name && p.Arch == lp.Arch && p.Version.String() == lp.Version {
				found = p
				if p.SHA256 == lp.SHA256 {
					break
				}
			}
		}
		switch {
		case found == nil:
			return nil, fmt.Errorf("the lock pins %s %s (%s), which the archive no longer has (Release now %s); use a snapshot.debian.org source, or run gantry lock --update", lp.Name, lp.Version, lp.Arch, releaseDigests(rels))
		case found.SHA256 != lp.SHA256:
			return nil, fmt.Errorf("the lock pins %s %s (%s) at sha256:%s, but the archive's index says sha256:%s: %w", lp.Name, lp.Version, lp.Arch, lp.SHA256, found.SHA256, ErrHashMismatch)
		}
		out = append(out, found)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func releaseDigests(rels []LockedRelease) string {
	var s []string
	for _, r := range rels {
		s = append(s, r.Digest)
	}
	return strings.Join(s, ", ")
}

// allUnpacked reports whether the store has every locked package already.
func (s store) allUnpacked(locked []Locked) bool {
	for _, lp := range locked {
		if _, ok := s.cached(lp.SHA256); !ok {
			return false
		}
	}
	return true
}

// unpack downloads (unless the store has it) and places one package,
// returning its dpkg database stanza.
func unpack(ctx context.Context, f *fetcher, s store, l *layout, c chosen, res *Result) (*Paragraph, error) {
	p := c.pkg
	m, err := s.unpack(ctx, p.SHA256, func() (io.ReadCloser, error) {
		if c.url == "" {
			return nil, fmt.Errorf("%s: not in the cache", p.Name)
		}
		if _, err := f.blob(ctx, c.url, p.SHA256, p.Size); err != nil {
			return nil, err
		}
		return f.verified(p.SHA256)
	})
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", p.Name, p.Version, err)
	}
	where := p.Name + " " + c.url + ": control"
	stanza, err := installedStanza(m.Control["control"], m.Control["conffiles"], m.Control["md5sums"], where)
	if err != nil {
		return nil, err
	}
	ctl, err := packageFromParagraph(stanza, where, false)
	if err != nil {
		return nil, err
	}
	if ctl.Name != p.Name || ctl.Arch != p.Arch || Compare(ctl.Version, p.Version) != 0 {
		return nil, fmt.Errorf("%s: the .deb is %s, but the index says %s", c.url, ctl.ID(), p.ID())
	}
	for _, mem := range m.Members {
		if err := l.place(ctl.Name, mem); err != nil {
			return nil, err
		}
	}
	if err := infoFiles(l, ctl, m); err != nil {
		return nil, err
	}
	res.Packages = append(res.Packages, Locked{Name: ctl.Name, Version: ctl.Version.String(), Arch: ctl.Arch, SHA256: p.SHA256})
	res.Warnings = append(res.Warnings, scriptWarnings(ctl.Name, m)...)
	return stanza, nil
}

// escapePath escapes each segment of a path below the archive root for a
// URL (pool names may hold '%', '+' or ':').
func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}
