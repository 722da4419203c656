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

// session is one Install or Plan: its options, the download cache, the
// file store and the base's dpkg database.
type session struct {
	o      Options
	f      *fetcher
	s      store
	status *BaseStatus
	res    *Result
}

func newSession(ctx context.Context, base BaseFS, o Options) (*session, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	ss := &session{o: o, res: &Result{}}
	var err error
	if ss.f, err = newFetcher(o.Client, o.Cache); err != nil {
		return nil, err
	}
	if ss.s, err = openStore(o.Cache); err != nil {
		return nil, err
	}
	if ss.status, err = ReadBaseStatus(ctx, base); err != nil {
		return nil, err
	}
	return ss, nil
}

// Install resolves (or takes from the lock) the packages for o.Arch over
// the base's dpkg database, downloads and verifies them, and returns the
// layer entries: their files, placed through the base's symlinks, and the
// dpkg database with them added. Errors start with o.Platform.
func Install(ctx context.Context, base BaseFS, o Options) (*Result, error) {
	res, err := install(ctx, base, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Platform, err)
	}
	return res, nil
}

func install(ctx context.Context, base BaseFS, o Options) (*Result, error) {
	ss, err := newSession(ctx, base, o)
	if err != nil {
		return nil, err
	}
	picks, err := ss.pick(ctx)
	if err != nil {
		return nil, err
	}
	l := newLayout(ctx, base, ss.s)
	var stanzas []*Paragraph
	for _, c := range picks {
		p, err := ss.unpack(ctx, l, c)
		if err != nil {
			return nil, err
		}
		stanzas = append(stanzas, p)
	}
	if err := writeStatus(l, ss.status, stanzas); err != nil {
		return nil, err
	}
	ss.res.Entries = l.sorted()
	return ss.res, nil
}

// Plan is what Install would install for o, without downloading any .deb:
// the packages (name, version, architecture, sha256 from the signed index)
// and the digests of the Release files, for a lock file.
func Plan(ctx context.Context, base BaseFS, o Options) (*Result, error) {
	o.Locked = nil
	ss, err := newSession(ctx, base, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Platform, err)
	}
	picks, err := ss.pick(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Platform, err)
	}
	for _, c := range picks {
		p := c.pkg
		ss.res.Packages = append(ss.res.Packages, Locked{Name: p.Name, Version: p.Version.String(), Arch: p.Arch, SHA256: p.SHA256})
	}
	return ss.res, nil
}

// pick is the packages to install: the lock's, or what resolution finds.
func (ss *session) pick(ctx context.Context) ([]chosen, error) {
	o := ss.o
	if o.Locked != nil && ss.s.allUnpacked(o.Locked) {
		var out []chosen
		for _, lp := range o.Locked {
			v, err := ParseVersion(lp.Version)
			if err != nil {
				return nil, fmt.Errorf("the lock's %s: %w", lp.Name, err)
			}
			out = append(out, chosen{pkg: &Package{Name: lp.Name, Version: v, Arch: lp.Arch, SHA256: lp.SHA256}})
		}
		return out, nil
	}
	avail, err := ss.available(ctx)
	if err != nil {
		return nil, err
	}
	var pkgs []*Package
	if o.Locked != nil {
		pkgs, err = lockedPackages(o.Locked, avail, ss.res.Releases)
	} else {
		pkgs, err = NewUniverse(o.Arch, ss.status.Packages, avail).Resolve(o.Packages)
	}
	if err != nil {
		return nil, fmt.Errorf("%w (sources: %s)", err, sourceList(o.Sources))
	}
	out := make([]chosen, len(pkgs))
	for i, p := range pkgs {
		out[i] = chosen{pkg: p, url: p.Origin.URI + "/" + escapePath(p.Filename)}
	}
	return out, nil
}

// available is every package the sources serving o.Arch list, from their
// verified indexes; each Release digest goes into the result.
func (ss *session) available(ctx context.Context) ([]*Package, error) {
	o := ss.o
	var avail []*Package
	for _, a := range o.Sources {
		if !a.For(o.Arch) {
			continue
		}
		keys, err := o.Keys(ctx, a)
		if err != nil {
			return nil, err
		}
		ix, err := ss.f.loadIndex(ctx, a, o.Arch, keys)
		if err != nil {
			return nil, err
		}
		avail = append(avail, ix.Packages...)
		ss.res.Releases = append(ss.res.Releases, LockedRelease{Source: a.String(), Digest: "sha256:" + ix.ReleaseDigest})
		o.Log.Debug("debian index", "platform", o.Platform, "source", a.String(), "packages", len(ix.Packages))
	}
	if len(avail) == 0 {
		return nil, fmt.Errorf("no apt source serves %s", o.Arch)
	}
	return avail, nil
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
func (ss *session) unpack(ctx context.Context, l *layout, c chosen) (*Paragraph, error) {
	p, f, res := c.pkg, ss.f, ss.res
	m, err := ss.s.unpack(ctx, p.SHA256, func() (io.ReadCloser, error) {
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
