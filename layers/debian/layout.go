package debian

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/gantry-dev/gantry/layers"
)

// BaseFS is what Install reads of the base image's filesystem. Names are
// relative to "/" ("var/lib/dpkg/status").
type BaseFS interface {
	// Stat reports name's tar type and, for a symlink, its target,
	// without following a symlink at name itself.
	Stat(ctx context.Context, name string) (typ byte, linkname string, ok bool, err error)
	// ReadFile returns a regular file's content, following symlinks.
	ReadFile(ctx context.Context, name string) ([]byte, bool, error)
	// ReadDir lists the base names in dir (none if it does not exist).
	ReadDir(ctx context.Context, dir string) ([]string, error)
}

// layout places files in the new layer over the base: every path goes
// through the symlinks of the base (and of the layer itself), so a
// package's ./bin/ps lands in usr/bin/ps when the base has bin -> usr/bin,
// and no base symlink is ever replaced by a directory.
type layout struct {
	ctx     context.Context
	base    BaseFS
	entries map[string]*layers.Entry
	from    map[string]string // entry name → the package that put it there
	sums    map[string]string // regular entry → sha256
	store   store
}

func newLayout(ctx context.Context, base BaseFS, s store) *layout {
	return &layout{ctx: ctx, base: base, entries: map[string]*layers.Entry{}, from: map[string]string{}, sums: map[string]string{}, store: s}
}

// stat is name's type in the layer (first) or the base.
func (l *layout) stat(name string) (typ byte, link string, ok bool, err error) {
	if e, ok := l.entries[name]; ok {
		return e.Type, e.Linkname, true, nil
	}
	typ, link, ok, err = l.base.Stat(l.ctx, name)
	if err != nil {
		return 0, "", false, fmt.Errorf("reading /%s in the base image: %w", name, err)
	}
	return typ, link, ok, nil
}

// resolve is where name really is: every symlink on the way followed
// (the last component's too when last is set).
func (l *layout) resolve(name string, last bool) (string, error) {
	todo := strings.Split(strings.Trim(name, "/"), "/")
	cur, hops := "", 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			if cur == "." {
				cur = ""
			}
			continue
		}
		next := path.Join(cur, c)
		typ, link, ok, err := l.stat(next)
		if err != nil {
			return "", err
		}
		if ok && typ == tar.TypeSymlink && (len(todo) > 0 || last) {
			if hops++; hops > 40 {
				return "", fmt.Errorf("/%s: too many levels of symbolic links", name)
			}
			if strings.HasPrefix(link, "/") {
				cur = ""
			}
			todo = append(strings.Split(link, "/"), todo...)
			continue
		}
		if ok && typ != tar.TypeDir && len(todo) > 0 {
			return "", fmt.Errorf("/%s: /%s is not a directory", name, next)
		}
		cur = next
	}
	return cur, nil
}

// place puts one data member of pkg into the layer.
func (l *layout) place(pkg string, m debMember) error {
	if m.Name == "" {
		return nil
	}
	if m.Type == tar.TypeDir {
		return l.dir(pkg, m)
	}
	parent, err := l.resolve(path.Dir(m.Name), true)
	if err != nil {
		return fmt.Errorf("%s: %w", pkg, err)
	}
	real := path.Join(parent, path.Base(m.Name))
	if err := l.parents(parent); err != nil {
		return fmt.Errorf("%s: %w", pkg, err)
	}
	typ, _, ok, err := l.stat(real)
	if err != nil {
		return err
	}
	if ok && typ == tar.TypeDir {
		return fmt.Errorf("%s installs a file at /%s, where the image has a directory", pkg, real)
	}
	if prev, ok := l.from[real]; ok {
		if l.sums[real] == m.SHA256 && l.entries[real].Type == m.Type && l.entries[real].Linkname == m.Link {
			return nil // the same file from two packages (shared docs)
		}
		return fmt.Errorf("%s and %s both install /%s", prev, pkg, real)
	}
	e, err := l.entry(pkg, real, m)
	if err != nil {
		return err
	}
	l.entries[real], l.from[real] = e, pkg
	return nil
}

// entry is the layer entry of a file, symlink or hard link member placed
// at real. A hard link becomes a copy of its target (the layer's entries
// are sorted by name, so a tar hard link could precede its target).
func (l *layout) entry(pkg, real string, m debMember) (*layers.Entry, error) {
	e := &layers.Entry{Name: real, Type: m.Type, Mode: m.Mode, UID: m.UID, GID: m.GID}
	switch m.Type {
	case tar.TypeSymlink:
		e.Linkname = m.Link
	case tar.TypeLink:
		target, err := l.resolve(m.Link, false)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pkg, err)
		}
		t, ok := l.entries[target]
		if !ok || t.Type != tar.TypeReg {
			return nil, fmt.Errorf("%s: hard link /%s to /%s, which the package has not installed", pkg, m.Name, m.Link)
		}
		e.Type, e.Size, e.Source, e.SourceMTime = tar.TypeReg, t.Size, t.Source, t.SourceMTime
		l.sums[real] = l.sums[target]
	case tar.TypeReg:
		if err := l.store.fill(e, m); err != nil {
			return nil, err
		}
		l.sums[real] = m.SHA256
	}
	return e, nil
}

// dir makes a directory member, unless the image has it (whose mode and
// owner then stay).
func (l *layout) dir(pkg string, m debMember) error {
	real, err := l.resolve(m.Name, true)
	if err != nil {
		return fmt.Errorf("%s: %w", pkg, err)
	}
	if err := l.parents(path.Dir(real)); err != nil {
		return fmt.Errorf("%s: %w", pkg, err)
	}
	typ, _, ok, err := l.stat(real)
	switch {
	case err != nil:
		return err
	case ok && typ == tar.TypeDir:
		return nil
	case ok:
		return fmt.Errorf("%s installs a directory at /%s, where the image has a file", pkg, real)
	}
	l.entries[real] = &layers.Entry{Name: real, Type: tar.TypeDir, Mode: m.Mode, UID: m.UID, GID: m.GID}
	l.from[real] = pkg
	return nil
}

// parents makes the directories above a file the image lacks (0755 root).
func (l *layout) parents(dir string) error {
	if dir == "" || dir == "." {
		return nil
	}
	typ, _, ok, err := l.stat(dir)
	if err != nil || ok && typ == tar.TypeDir {
		return err
	}
	if ok {
		return fmt.Errorf("/%s is not a directory", dir)
	}
	if err := l.parents(path.Dir(dir)); err != nil {
		return err
	}
	l.entries[dir] = &layers.Entry{Name: dir, Type: tar.TypeDir, Mode: 0o755}
	return nil
}

// file adds a generated file (the dpkg database's) at name, resolved
// through symlinks, replacing what the base has.
func (l *layout) file(name string, data []byte, mode int64) error {
	parent, err := l.resolve(path.Dir(name), true)
	if err != nil {
		return err
	}
	if err := l.parents(parent); err != nil {
		return err
	}
	real := path.Join(parent, path.Base(name))
	if prev, ok := l.from[real]; ok {
		return fmt.Errorf("%s installs /%s, which gantry writes for dpkg", prev, real)
	}
	l.entries[real] = &layers.Entry{Name: real, Type: tar.TypeReg, Mode: mode, Size: int64(len(data)), Data: data}
	l.from[real] = "dpkg database"
	return nil
}

// sorted is the layer's entries by name.
func (l *layout) sorted() []layers.Entry {
	out := make([]layers.Entry, 0, len(l.entries))
	for _, e := range l.entries {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// readDir lists dir in the base; a directory that is not there has no
// names.
func readDir(ctx context.Context, base BaseFS, dir string) ([]string, error) {
	names, err := base.ReadDir(ctx, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return names, err
}
