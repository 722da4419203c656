package spec

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gantry-dev/gantry/layers"
	"github.com/gantry-dev/gantry/layers/python"
)

// layer validates the layer lc, found at path p.
func (v validator) layer(p string, lc LayerConfig) (LayerSpec, error) {
	ls := LayerSpec{Name: lc.Name}
	ls.Include, ls.Exclude, ls.Precompress = lc.Include, lc.Exclude, lc.Precompress
	ls.FollowSymlinks, ls.SecretFiles, ls.AllowSecretFiles = lc.FollowSymlinks, true, lc.AllowSecretFiles
	var err error
	if ls.Split, err = v.split(p, lc); err != nil {
		return ls, err
	}
	if lc.Debian != nil {
		return v.debianLayer(p, lc, ls)
	}
	if lc.Python != nil {
		return v.pythonLayer(p, lc, ls)
	}
	if lc.From == "" && len(lc.Files) == 0 {
		return ls, v.loc.Errorf(p, "a layer needs from: (a directory or file), files:, python: or debian:")
	}
	if lc.From != "" {
		s, err := v.source(p, lc.From, lc.To)
		if err != nil {
			return ls, err
		}
		ls.Sources = append(ls.Sources, s)
	} else if lc.To != "" {
		return ls, v.errorf(p, "to", "to: goes with from:; each of files: has its own to:")
	}
	for j, fc := range lc.Files {
		s, err := v.source(fmt.Sprintf("%s.files[%d]", p, j), fc.From, fc.To)
		if err != nil {
			return ls, err
		}
		ls.Sources = append(ls.Sources, s)
	}
	if err := v.owned(p, lc, &ls); err != nil {
		return ls, err
	}
	if ls.Name == "" {
		ls.Name = ls.Sources[0].To
	}
	return ls, nil
}

// split parses split:, the part size of a layer of files.
func (v validator) split(p string, lc LayerConfig) (int64, error) {
	if lc.Split == "" {
		return 0, nil
	}
	if lc.Debian != nil || lc.Python != nil {
		return 0, v.errorf(p, "split", "applies to layers of files (from: or files:), not to python: or debian:")
	}
	n, err := ParseSize(lc.Split)
	if err == nil && n < 1<<20 {
		err = fmt.Errorf("%s is under 1MiB: parts that small cost more in layers than they save", lc.Split)
	}
	if err != nil {
		return 0, v.errorf(p, "split", "%v", err)
	}
	return n, nil
}

// owned parses what every kind of layer has: owner, modes, platforms.
func (v validator) owned(p string, lc LayerConfig, ls *LayerSpec) error {
	if lc.Owner != "" {
		o, err := ParseOwner(lc.Owner)
		if err != nil {
			return v.errorf(p, "owner", "%v", err)
		}
		ls.Owner = &o
	}
	if err := v.modes(p, lc, ls); err != nil {
		return err
	}
	var err error
	ls.Platforms, err = v.platforms(p, lc.Platforms)
	return err
}

// pythonLayer validates a layer of Python packages: a lock that pins and
// hashes every requirement, and where to find the wheels.
func (v validator) pythonLayer(p string, lc LayerConfig, ls LayerSpec) (LayerSpec, error) {
	pc := lc.Python
	if err := v.pythonFields(p, lc); err != nil {
		return ls, err
	}
	lock := v.hostPath(pc.Requirements)
	reqs, err := python.ParseLock(lock, nil)
	if err != nil {
		return ls, v.errorf(p, "python.requirements", "%v", err)
	}
	ps := &PythonSpec{Lock: lock, Requirements: reqs, Target: pc.Target}
	for j, w := range pc.Wheels {
		if strings.HasPrefix(w, "https://") || strings.HasPrefix(w, "http://") {
			ps.Wheels = append(ps.Wheels, w)
			continue
		}
		dir := v.hostPath(w)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return ls, v.errorf(p, fmt.Sprintf("python.wheels[%d]", j), "%s is not a directory (relative paths start at %s) or an http(s) index URL", dir, v.dir)
		}
		ps.Wheels = append(ps.Wheels, dir)
	}
	ls.Python = ps
	if err := v.owned(p, lc, &ls); err != nil {
		return ls, err
	}
	if ls.Name == "" {
		ls.Name = "python-packages"
	}
	return ls, nil
}

// pythonFields checks that a python: layer has what it needs and nothing
// of a files layer.
func (v validator) pythonFields(p string, lc LayerConfig) error {
	pc := lc.Python
	switch {
	case lc.From != "" || len(lc.Files) > 0 || lc.To != "":
		return v.errorf(p, "python", "a layer is python: or from:/to:/files:, not both; give the packages a layer of their own")
	case pc.Requirements == "":
		return v.errorf(p, "python.requirements", "missing; give the lock file (pip-compile --generate-hashes, uv pip compile --generate-hashes, or a pylock.toml)")
	case len(pc.Wheels) == 0:
		return v.errorf(p, "python.wheels", "missing; give wheel directories or index URLs (e.g. https://pypi.org/simple)")
	case pc.Target != "" && !path.IsAbs(pc.Target):
		return v.errorf(p, "python.target", "%q is not an absolute path in the image", pc.Target)
	}
	return nil
}

// modes parses a layer's fileMode and dirMode.
func (v validator) modes(p string, lc LayerConfig, ls *LayerSpec) error {
	for _, m := range []struct {
		field string
		val   string
		dst   *fs.FileMode
	}{{"fileMode", lc.FileMode, &ls.FileMode}, {"dirMode", lc.DirMode, &ls.DirMode}} {
		if m.val == "" {
			continue
		}
		n, err := strconv.ParseUint(m.val, 8, 32)
		if err != nil || n > 0o7777 || n == 0 {
			return v.errorf(p, m.field, "%q is not an octal mode such as \"0644\"", m.val)
		}
		*m.dst = fs.FileMode(n)
	}
	return nil
}

func (v validator) source(p, from, to string) (layers.Source, error) {
	if from == "" {
		return layers.Source{}, v.errorf(p, "from", "missing")
	}
	if to == "" {
		return layers.Source{}, v.errorf(p, "to", "missing; give an absolute path in the image")
	}
	if !path.IsAbs(to) {
		return layers.Source{}, v.errorf(p, "to", "%q is not an absolute path in the image", to)
	}
	host := from
	if !filepath.IsAbs(host) {
		host = filepath.Join(v.dir, from)
	}
	if hasPlatformVar(host) {
		return layers.Source{From: host, To: to}, nil // checked per platform (ForPlatform)
	}
	if _, err := os.Lstat(host); err != nil {
		where := v.dir
		if where == "" {
			where = "the current directory"
		}
		return layers.Source{}, v.errorf(p, "from", "%s does not exist (relative paths start at %s)", host, where)
	}
	return layers.Source{From: host, To: to}, nil
}
