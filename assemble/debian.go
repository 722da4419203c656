package assemble

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/gantry-dev/gantry/assemble/attest"
	"github.com/gantry-dev/gantry/assemble/spec"
	"github.com/gantry-dev/gantry/layers"
	"github.com/gantry-dev/gantry/layers/debian"
	"github.com/gantry-dev/gantry/manifests"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// debianArchs maps an OCI platform's architecture (and variant) to
// Debian's name for it.
var debianArchs = map[string]string{
	"amd64": "amd64", "arm64": "arm64", "arm/v7": "armhf", "arm/v6": "armel", "arm/v5": "armel",
	"386": "i386", "ppc64le": "ppc64el", "s390x": "s390x", "riscv64": "riscv64", "mips64le": "mips64el",
}

func debianArch(arch, variant string) (string, bool) {
	if a, ok := debianArchs[arch+"/"+variant]; ok && variant != "" {
		return a, true
	}
	a, ok := debianArchs[arch]
	if arch == "arm" && variant == "" {
		a, ok = "armhf", true
	}
	return a, ok
}

// debianOptions are what a debian: layer installs on this platform: its
// packages (or the lock's), from its sources or the base's own, checked
// against its keyring or the base's trusted keys.
func (e *Engine) debianOptions(ctx context.Context, base *layers.BaseFS, p *v1.Platform, ls spec.LayerSpec) (pythonFS, debian.Options, error) {
	fs := pythonFS{base}
	plat := manifests.PlatformString(p)
	arch, ok := debianArch(p.Architecture, p.Variant)
	if !ok {
		return fs, debian.Options{}, fmt.Errorf("%s has no Debian architecture gantry knows", plat)
	}
	d := ls.Debian
	o := debian.Options{Arch: arch, Platform: plat, Packages: d.Packages, Sources: d.Sources, Cache: e.cache.Dir(), Log: e.log}
	if o.Sources == nil {
		srcs, err := debian.BaseSources(ctx, fs)
		if err != nil {
			return fs, o, fmt.Errorf("%s: %w", plat, err)
		}
		o.Sources = srcs
	}
	o.Keys = func(ctx context.Context, a *debian.Archive) (openpgp.EntityList, error) {
		return debian.BaseKeys(ctx, fs, a)
	}
	if d.Keyring != "" {
		o.Keys = hostKeyring(d.Keyring)
	}
	if d.Locked != nil {
		o.Locked = d.Locked[plat]
		if o.Locked == nil {
			return fs, o, fmt.Errorf("%s: the lock file pins no Debian packages for this platform; run gantry lock --update", plat)
		}
	}
	return fs, o, nil
}

// hostKeyring reads a keyring file of the build machine once.
func hostKeyring(file string) func(context.Context, *debian.Archive) (openpgp.EntityList, error) {
	load := sync.OnceValues(func() (openpgp.EntityList, error) {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading keyring: %w", err)
		}
		return debian.ReadKeyring(b, file)
	})
	return func(context.Context, *debian.Archive) (openpgp.EntityList, error) { return load() }
}

// debianEntries installs a layer's Debian packages for this platform.
func (e *Engine) debianEntries(ctx context.Context, pb *platformBuild, ls spec.LayerSpec) ([]layers.Entry, error) {
	fs, o, err := e.debianOptions(ctx, pb.fs, pb.p.platform, ls)
	if err != nil {
		return nil, err
	}
	res, err := debian.Install(ctx, fs, o)
	if err != nil {
		return nil, err
	}
	for _, w := range res.Warnings {
		e.log.Warn("debian package", "image", pb.s.Name, "layer", ls.Name, "platform", o.Platform, "warning", w)
	}
	e.progress.Event(pb.s.Name, fmt.Sprintf("%s: %d Debian packages for %s", ls.Name, len(res.Packages), o.Platform))
	osr, _ := attest.ReadOSRelease(ctx, pb.fs) // the purls' distro, when the base says
	pb.installed = debPackages(res.Packages, osr)
	return res.Entries, nil
}

// debPackages are the installed packages as the SBOM lists them.
func debPackages(pkgs []debian.Locked, osr attest.OSRelease) []attest.Package {
	var out []attest.Package
	for _, p := range pkgs {
		out = append(out, attest.Package{Name: p.Name, Version: p.Version, PURL: attest.Deb("", p.Name, p.Version, p.Arch, osr), SHA256: p.SHA256})
	}
	return out
}

// builds reports whether a build of s makes platform p (the lock pins
// every platform of the base; packages only for those built).
func builds(s spec.ImageSpec, p platformImage) bool {
	if len(s.Platforms) == 0 {
		return true
	}
	for _, w := range s.Platforms {
		if manifests.Matches(p.platform, w) {
			return true
		}
	}
	return false
}

// lockDebian records, per debian: layer and platform, the packages a
// build would install now and the Release files they came from.
func (e *Engine) lockDebian(ctx context.Context, s spec.ImageSpec, plats []platformImage, lb *spec.LockedBase) error {
	for _, ls := range s.Layers {
		if ls.Debian == nil {
			continue
		}
		if lb.Debian == nil {
			lb.Debian = map[string]map[string]spec.DebianLock{}
		}
		locks := map[string]spec.DebianLock{}
		for _, p := range plats {
			if !builds(s, p) {
				continue
			}
			if _, ok, err := ls.ForPlatform(*p.platform); err != nil || !ok {
				continue
			}
			baseLayers, err := p.image.Layers()
			if err != nil {
				return fmt.Errorf("listing base layers: %w", err)
			}
			base := e.baseFS(baseLayers, nil)
			fs, o, err := e.debianOptions(ctx, base, p.platform, ls)
			if err != nil {
				return fmt.Errorf("layer %s: %w", ls.Name, err)
			}
			res, err := debian.Plan(ctx, fs, o)
			if err != nil {
				return fmt.Errorf("layer %s: %w", ls.Name, err)
			}
			locks[o.Platform] = spec.DebianLock{Requested: ls.Debian.Requested(), Releases: res.Releases, Packages: res.Packages}
		}
		lb.Debian[ls.Name] = locks
	}
	return nil
}
