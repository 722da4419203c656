package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gantry-dev/gantry/layers/debian"
)

// DebianConfig is a layer of Debian packages, installed per platform from
// apt sources without running anything in the image.
type DebianConfig struct {
	// Packages are names or name=version.
	Packages []string `yaml:"packages"`
	// Sources are sources.list one-line entries ("deb URI SUITE COMP...");
	// default: the base's own /etc/apt/sources.list(.d).
	Sources []string `yaml:"sources"`
	// Keyring is a host keyring file (binary or armored) every source's
	// Release must be signed with; default: the base's trusted keys.
	Keyring string `yaml:"keyring"`
}

// DebianSpec is a validated debian: layer.
type DebianSpec struct {
	Packages []debian.Request
	// Sources are the archives to install from; nil: the base's own.
	Sources []*debian.Archive
	Keyring string // host path, "" for the base's keys
	// Locked maps os/arch[/variant] to the packages the lock file pins
	// for that platform (nil without --locked).
	Locked map[string][]debian.Locked
}

// debianLayer validates a layer of Debian packages.
func (v validator) debianLayer(p string, lc LayerConfig, ls LayerSpec) (LayerSpec, error) {
	if err := v.debianFields(p, lc); err != nil {
		return ls, err
	}
	dc := lc.Debian
	ds := &DebianSpec{}
	var err error
	if ds.Packages, err = v.debianPackages(p, dc.Packages); err != nil {
		return ls, err
	}
	if ds.Sources, err = v.debianSources(p, dc.Sources); err != nil {
		return ls, err
	}
	if dc.Keyring != "" {
		ds.Keyring = v.hostPath(dc.Keyring)
		if fi, err := os.Stat(ds.Keyring); err != nil || fi.IsDir() {
			return ls, v.errorf(p, "debian.keyring", "%s is not a keyring file (relative paths start at %s)", ds.Keyring, v.dir)
		}
	}
	ls.Debian = ds
	if ls.Platforms, err = v.platforms(p, lc.Platforms); err != nil {
		return ls, err
	}
	if ls.Name == "" {
		ls.Name = "debian-packages"
	}
	return ls, nil
}

// debianFields checks that a debian: layer has packages and nothing of
// another kind of layer.
func (v validator) debianFields(p string, lc LayerConfig) error {
	switch {
	case lc.From != "" || len(lc.Files) > 0 || lc.To != "" || lc.Python != nil:
		return v.errorf(p, "debian", "a layer is debian: or python: or from:/to:/files:, one of them; give the packages a layer of their own")
	case lc.Owner != "":
		return v.errorf(p, "owner", "Debian packages keep their own owners and modes; owner: does not apply to a debian: layer")
	case lc.FileMode != "":
		return v.errorf(p, "fileMode", "Debian packages keep their own owners and modes; fileMode: does not apply to a debian: layer")
	case lc.DirMode != "":
		return v.errorf(p, "dirMode", "Debian packages keep their own owners and modes; dirMode: does not apply to a debian: layer")
	case len(lc.Debian.Packages) == 0:
		return v.errorf(p, "debian.packages", "missing; give package names, e.g. [curl, libpq5]")
	}
	return nil
}

func (v validator) debianPackages(p string, pkgs []string) ([]debian.Request, error) {
	var out []debian.Request
	seen := map[string]bool{}
	for j, s := range pkgs {
		field := fmt.Sprintf("debian.packages[%d]", j)
		r, err := debian.ParseRequest(strings.TrimSpace(s))
		if err != nil {
			return nil, v.errorf(p, field, "%v", err)
		}
		if seen[r.Name] {
			return nil, v.errorf(p, field, "%s is listed twice", r.Name)
		}
		seen[r.Name] = true
		out = append(out, r)
	}
	return out, nil
}

// debianSources parses sources.list lines; a relative signed-by= is a
// host file beside the config.
func (v validator) debianSources(p string, lines []string) ([]*debian.Archive, error) {
	var out []*debian.Archive
	for j, s := range lines {
		field := fmt.Sprintf("debian.sources[%d]", j)
		a, ok, err := debian.ParseSourceLine(s, field)
		if err == nil && !ok {
			err = fmt.Errorf("%q is no deb source line (deb URI SUITE COMPONENT...)", s)
		}
		if err != nil {
			return nil, v.errorf(p, field, "%v", err)
		}
		if a.SignedBy != "" && !strings.HasPrefix(a.SignedBy, "/") {
			a.SignedBy = v.hostPath(a.SignedBy)
		}
		if rel, ok := strings.CutPrefix(a.URI, "file:"); ok && !strings.HasPrefix(rel, "/") {
			// an archive beside the config
			dir, err := filepath.Abs(v.hostPath(rel))
			if err != nil {
				return nil, v.errorf(p, field, "%v", err)
			}
			a.URI = "file://" + filepath.ToSlash(dir)
		}
		out = append(out, a)
	}
	return out, nil
}

// Names are the packages as asked for, comma-separated.
func (d *DebianSpec) Names() string { return strings.Join(d.Requested(), ", ") }

// DebianLock is what the lock file pins for a debian: layer on one
// platform: the digest of each source's Release file when it was locked,
// and every package installed.
type DebianLock struct {
	// Requested is the layer's packages: as it asked for them when locked.
	Requested []string               `json:"requested"`
	Releases  []debian.LockedRelease `json:"releases"`
	Packages  []debian.Locked        `json:"packages"`
}

// applyDebianLock gives each debian: layer of s the packages lb pins.
func applyDebianLock(s *ImageSpec, lb LockedBase, file string) error {
	for _, ls := range s.Layers {
		if ls.Debian == nil {
			continue
		}
		pl, ok := lb.Debian[ls.Name]
		if !ok {
			return fmt.Errorf("%s is stale: it pins no Debian packages for layer %s of image %s; run gantry lock --update", file, ls.Name, s.Name)
		}
		ls.Debian.Locked = map[string][]debian.Locked{}
		for plat, l := range pl {
			if got := strings.Join(l.Requested, ", "); got != ls.Debian.Names() {
				return fmt.Errorf("%s is stale for layer %s of image %s on %s: it pins packages for %s, the layer asks for %s; run gantry lock --update", file, ls.Name, s.Name, plat, got, ls.Debian.Names())
			}
			ls.Debian.Locked[plat] = append([]debian.Locked{}, l.Packages...)
		}
	}
	return nil
}

// Requested is the layer's packages as the lock file records them.
func (d *DebianSpec) Requested() []string {
	out := make([]string, len(d.Packages))
	for i, r := range d.Packages {
		out[i] = r.String()
	}
	return out
}
