package assemble

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	"github.com/gantry-dev/gantry/assemble/attest"
	"github.com/gantry-dev/gantry/assemble/spec"
	"github.com/gantry-dev/gantry/layers"
	"github.com/gantry-dev/gantry/manifests"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// platformBuild is one platform's image of an imageBuild: the base's
// layers, the new ones, and the config patch they add up to.
type platformBuild struct {
	*imageBuild
	p            platformImage
	baseLayers   []v1.Layer
	fs           *layers.BaseFS
	layers       []v1.Layer
	diffIDs      []v1.Hash
	uncompressed int64 // of the new layers
	patch        manifests.ConfigPatch
	upper        map[string]layers.Entry // every entry of the new layers, by name
	made         []attest.Layer          // the new layers, for the SBOM and provenance
	installed    []attest.Package        // what the layer being made installed (an installer's report)
}

// addContent adds the new content layers in their order: those built once
// for all platforms, and those built for this one (whose sources name the
// platform, or that exist only on some platforms).
func (e *Engine) addContent(ctx context.Context, pb *platformBuild) error {
	if pb.perPlatform {
		pb.upper = map[string]layers.Entry{}
	}
	plat := manifests.PlatformString(pb.p.platform)
	for i, ls := range pb.s.Layers {
		parts := pb.content[i]
		switch {
		case parts == nil:
			entries, ok, err := e.platformEntries(ctx, pb, ls)
			if err != nil {
				return fmt.Errorf("layer %s: %w", ls.Name, err)
			}
			if !ok {
				continue
			}
			if parts, err = e.buildLayers(ctx, pb.imageBuild, ls, entries, pb.upper, plat); err != nil {
				return fmt.Errorf("layer %s: %w", ls.Name, err)
			}
		case pb.perPlatform:
			// checked when built against the shared layers only; again
			// here, above this platform's own layers
			if err := pb.gates.entries(ls.Name, pb.entries[i], pb.upper); err != nil {
				return err
			}
			for _, en := range pb.entries[i] {
				pb.upper[en.Name] = en
			}
		}
		for k, l := range parts {
			part := partOf(k, len(parts))
			if err := pb.gates.arch(ls.Name+part, l, pb.p.platform); err != nil {
				return err
			}
			pb.add(e, l)
			pb.noteLayer(ls, part, l)
			pb.patch.History = append(pb.patch.History, manifests.History{CreatedBy: "gantry: " + ls.Description() + part, Comment: pb.s.Compression.HistoryComment()})
		}
	}
	return nil
}

func (e *Engine) buildPlatform(ctx context.Context, ib *imageBuild, p platformImage) (v1.Image, PlatformResult, error) {
	pr := PlatformResult{Platform: manifests.PlatformString(p.platform)}
	baseLayers, err := p.image.Layers()
	if err != nil {
		return nil, pr, fmt.Errorf("listing base layers: %w", err)
	}
	fsys := e.baseFS(baseLayers, ib.sinks.indexes)
	pb := &platformBuild{imageBuild: ib, p: p, baseLayers: baseLayers, fs: fsys, upper: ib.upper}
	pb.patch = e.configPatch(ib.s)
	if err := e.addContent(ctx, pb); err != nil {
		return nil, pr, err
	}
	if err := e.addUser(ctx, pb); err != nil {
		return nil, pr, err
	}
	img, err := e.image(ctx, pb)
	if err != nil {
		return nil, pr, err
	}
	if err := ib.gates.layerCount(len(baseLayers), len(pb.layers)); err != nil {
		return nil, pr, err
	}
	if err := e.measure(ctx, pb, img, &pr); err != nil {
		return nil, pr, err
	}
	if err := ib.gates.size(pr.UncompressedSize, ib.s.MaxSize); err != nil {
		return nil, pr, err
	}
	arts, err := e.attach(ctx, pb, img)
	if err != nil {
		return nil, pr, err
	}
	ib.referrers = append(ib.referrers, arts...)
	for _, a := range arts {
		pr.Referrers = append(pr.Referrers, a.Digest.String())
	}
	return img, pr, nil
}

// platformEntries are the entries of a layer built for this platform: its
// Python packages, or its host files with the platform in their paths. ok
// is false when the layer does not exist on this platform.
func (e *Engine) platformEntries(ctx context.Context, pb *platformBuild, ls spec.LayerSpec) ([]layers.Entry, bool, error) {
	lspec, ok, err := ls.ForPlatform(*pb.p.platform)
	if err != nil || !ok {
		return nil, ok, err
	}
	if ls.Python != nil {
		entries, err := e.pythonEntries(ctx, pb, ls)
		return entries, err == nil, err
	}
	if ls.Debian != nil {
		entries, err := e.debianEntries(ctx, pb, ls)
		return entries, err == nil, err
	}
	entries, err := e.walk(ls.Name, lspec)
	return entries, err == nil, err
}

// add appends a new layer to the platform's image.
func (pb *platformBuild) add(e *Engine, l *layers.Layer) {
	pb.layers = append(pb.layers, e.tracked(pb.s.Name, l))
	d, _ := l.DiffID()
	pb.diffIDs = append(pb.diffIDs, d)
	pb.uncompressed += l.UncompressedSize()
}

// configPatch is what the spec changes in every platform's config; the
// history grows as layers are added.
func (e *Engine) configPatch(s spec.ImageSpec) manifests.ConfigPatch {
	return manifests.ConfigPatch{
		Env: s.Env, Entrypoint: s.Entrypoint, Cmd: s.Cmd, WorkingDir: s.Workdir,
		ExposedPorts: s.Ports, Volumes: s.Volumes, StopSignal: s.StopSignal, Healthcheck: s.Healthcheck,
		Created: e.epoch,
	}
}

// addUser merges the spec's user into this platform's base /etc/passwd
// and /etc/group, in a layer of its own, and runs the image as that user.
func (e *Engine) addUser(ctx context.Context, pb *platformBuild) error {
	u := pb.s.User
	if u == nil {
		return nil
	}
	entries, err := layers.UserEntries(ctx, pb.fs, pb.upper, *u, pb.s.Owns, e.log)
	if err != nil {
		return err
	}
	if err := pb.gates.userEntries(entries, pb.upper); err != nil {
		return err
	}
	l, err := pb.builder.BuildWith(ctx, entries, reuseHooks(pb.sinks.reusers, pb.s, layers.Hooks{}))
	if err != nil {
		return fmt.Errorf("user layer: %w", err)
	}
	pb.add(e, l.WithMediaType(pb.layerType))
	pb.noteLayer(spec.LayerSpec{Name: "user " + u.Name}, "", l)
	pb.patch.User = fmt.Sprintf("%d:%d", u.UID, u.GID)
	pb.patch.History = append(pb.patch.History, manifests.History{CreatedBy: fmt.Sprintf("gantry: user %s (%d) group %s (%d)", u.Name, u.UID, u.Group, u.GID), Comment: pb.s.Compression.HistoryComment()})
	return nil
}

// image writes the platform's config and manifest.
func (e *Engine) image(ctx context.Context, pb *platformBuild) (v1.Image, error) {
	s := pb.s
	pb.patch.DiffIDs = pb.diffIDs
	annotations := e.annotations(s, pb.base.ref, pb.p.digest)
	pb.patch.Labels = maps.Clone(s.Labels)
	if pb.patch.Labels == nil {
		pb.patch.Labels = map[string]string{}
	}
	if len(s.RuntimeEnv) > 0 {
		v, err := json.Marshal(s.RuntimeEnv)
		if err != nil {
			return nil, err
		}
		pb.patch.Labels[spec.RuntimeEnvLabel] = string(v)
	}
	if pb.family == manifests.Docker {
		// Docker manifests carry no annotations: record the base as labels.
		maps.Copy(pb.patch.Labels, annotations)
	}
	rawCfg, err := e.baseConfig(pb)
	if err != nil {
		return nil, err
	}
	cfg, err := manifests.PatchConfig(rawCfg, pb.patch)
	if err != nil {
		return nil, err
	}
	if err := pb.gates.runAs(cfg); err != nil {
		return nil, err
	}
	if err := pb.gates.programs(ctx, imageFS{base: pb.fs, upper: pb.upper}, cfg, manifests.PlatformString(pb.p.platform),
		s.Healthcheck != nil, s.Entrypoint != nil || s.Cmd != nil); err != nil {
		return nil, err
	}
	return manifests.Append(pb.p.image, cfg, pb.layers, manifests.AppendOptions{Family: pb.family, Annotations: annotations})
}

// baseSize sums the base layers' uncompressed sizes as size gives them;
// exact says whether every one of them was.
func (pb *platformBuild) baseSize(ctx context.Context, size func(context.Context, int) (int64, bool, error)) (total int64, exact bool, err error) {
	exact = true
	for i := range pb.baseLayers {
		n, ok, err := size(ctx, i)
		if err != nil {
			return 0, false, err
		}
		total += n
		exact = exact && ok
	}
	return total, exact, nil
}

// measure fills in the platform's digest and sizes.
func (e *Engine) measure(ctx context.Context, pb *platformBuild, img v1.Image, pr *PlatformResult) error {
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	pr.CompressedSize = m.Config.Size
	for _, d := range m.Layers {
		pr.CompressedSize += d.Size
	}
	// Without a size gate the base layers' sizes come from their gzip
	// trailers where the cache has no index: a lower bound, never read
	// whole. With one, a sum of lower bounds already over it fails at once;
	// otherwise every size is made exact, reading a base layer (once per
	// cache) where it must.
	hint, exact, err := pb.baseSize(ctx, pb.fs.UncompressedSizeHint)
	if err != nil {
		return err
	}
	pr.UncompressedSize, pr.UncompressedSizeExact = pb.uncompressed+hint, exact
	if pb.s.MaxSize > 0 && !exact && pr.UncompressedSize <= pb.s.MaxSize {
		n, _, err := pb.baseSize(ctx, func(ctx context.Context, i int) (int64, bool, error) {
			n, err := pb.fs.UncompressedSize(ctx, i)
			return n, true, err
		})
		if err != nil {
			return err
		}
		pr.UncompressedSize, pr.UncompressedSizeExact = pb.uncompressed+n, true
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	pr.Digest = d.String()
	return nil
}
