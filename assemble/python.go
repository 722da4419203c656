package assemble

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"

	"github.com/gantry-dev/gantry/assemble/spec"
	"github.com/gantry-dev/gantry/layers"
	"github.com/gantry-dev/gantry/layers/python"
	"github.com/gantry-dev/gantry/manifests"
)

// pythonEntries installs a layer's Python packages for this platform: it
// finds the base's Python (its site directory, version and C library),
// picks each pinned requirement's wheel for it, verified against the lock,
// and lays the wheels out as the wheel spec says.
func (e *Engine) pythonEntries(ctx context.Context, pb *platformBuild, ls spec.LayerSpec) ([]layers.Entry, error) {
	env, err := e.baseEnv(pb)
	if err != nil {
		return nil, err
	}
	p := pb.p.platform
	t, err := python.DetectTarget(ctx, pythonFS{pb.fs}, manifests.MergeEnv(env, pb.s.Env), p.OS, p.Architecture, p.Variant, ls.Python.Target)
	if err != nil {
		return nil, err
	}
	f := &python.Finder{Sources: ls.Python.Wheels, Cache: e.cache.Dir()}
	wheels, err := python.Select(ctx, f, ls.Python.Requirements, t)
	if err != nil {
		return nil, err
	}
	pb.installed = wheelPackages(wheels)
	return python.Install(ctx, wheels, t, python.InstallOptions{Owner: ls.Owner, FileMode: ls.FileMode, DirMode: ls.DirMode, Cache: e.cache.Dir()})
}

// baseEnv is the Env of the platform's base config.
func (e *Engine) baseEnv(pb *platformBuild) ([]string, error) {
	raw, err := e.baseConfig(pb)
	if err != nil {
		return nil, err
	}
	var c struct {
		Config struct{ Env []string } `json:"config"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("reading base config: %w", err)
	}
	return c.Config.Env, nil
}

// baseConfig is the platform's base config, read once per cache: the
// manifest names it (go-containerregistry's ConfigName would download it
// to hash it).
func (e *Engine) baseConfig(pb *platformBuild) ([]byte, error) {
	bm, err := pb.p.image.Manifest()
	if err != nil {
		return nil, fmt.Errorf("reading base manifest: %w", err)
	}
	raw, err := e.cache.Blob(bm.Config.Digest, pb.p.image.RawConfigFile)
	if err != nil {
		return nil, fmt.Errorf("reading base config: %w", err)
	}
	return raw, nil
}

// pythonFS is the base's filesystem as Python detection reads it.
type pythonFS struct{ fs *layers.BaseFS }

func (p pythonFS) Stat(ctx context.Context, name string) (byte, string, bool, error) {
	f, ok, err := p.fs.Lookup(ctx, name)
	return f.Type, f.Linkname, ok, err
}

func (p pythonFS) ReadDir(ctx context.Context, dir string) ([]string, error) {
	return p.fs.ReadDir(ctx, dir)
}

func (p pythonFS) ReadFile(ctx context.Context, name string) ([]byte, bool, error) {
	b, err := p.fs.ReadFile(ctx, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	return b, err == nil, err
}
