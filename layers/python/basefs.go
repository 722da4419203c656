package python

import (
	"archive/tar"
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
)

// BaseFS is what DetectTarget needs from a base image's filesystem. Names
// are relative to "/" ("usr/local/bin/python3"). No method follows a
// symlink in the last component (DetectTarget resolves symlinks itself);
// symlinks in the directories above it need not be followed either.
type BaseFS interface {
	// Stat reports the tar type flag of name and, for a symlink, its target.
	Stat(ctx context.Context, name string) (typ byte, linkname string, ok bool, err error)
	// ReadDir lists the base names in dir (none if it does not exist).
	ReadDir(ctx context.Context, dir string) ([]string, error)
	// ReadFile returns the contents of a small file; it is only asked for
	// var/lib/dpkg/status(.d/*) and lib/apk/db/installed.
	ReadFile(ctx context.Context, name string) ([]byte, bool, error)
}

// resolver follows symlinks inside a BaseFS, as the kernel would inside the
// image's root.
type resolver struct {
	ctx context.Context
	fs  BaseFS
}

// resolve returns name with every symlink followed (relative to "/"), its
// type, and whether it exists.
func (r resolver) resolve(name string) (string, byte, bool, error) {
	return r.walk(strings.Trim(path.Clean("/"+name), "/"), 0)
}

func (r resolver) walk(name string, depth int) (string, byte, bool, error) {
	if name == "" {
		return "", tar.TypeDir, true, nil
	}
	parts := strings.Split(name, "/")
	cur := ""
	for i, p := range parts {
		next := path.Join(cur, p)
		typ, link, ok, err := r.fs.Stat(r.ctx, next)
		if err != nil {
			return "", 0, false, fmt.Errorf("reading /%s in the base image: %w", next, err)
		}
		if !ok {
			return path.Join(append([]string{next}, parts[i+1:]...)...), 0, false, nil
		}
		if typ == tar.TypeSymlink {
			if depth >= 40 {
				return "", 0, false, fmt.Errorf("/%s in the base image: too many levels of symbolic links", next)
			}
			target := link
			if !path.IsAbs(target) {
				target = path.Join("/"+cur, target)
			}
			rest := append([]string{strings.Trim(path.Clean(target), "/")}, parts[i+1:]...)
			return r.walk(strings.Trim(path.Clean("/"+path.Join(rest...)), "/"), depth+1)
		}
		if i < len(parts)-1 && typ != tar.TypeDir {
			return path.Join(parts...), 0, false, nil
		}
		cur = next
		if i == len(parts)-1 {
			return cur, typ, true, nil
		}
	}
	return cur, tar.TypeDir, true, nil
}

func (r resolver) isDir(name string) (bool, error) {
	_, typ, ok, err := r.resolve(name)
	return ok && typ == tar.TypeDir, err
}

func (r resolver) isFile(name string) (bool, error) {
	_, typ, ok, err := r.resolve(name)
	return ok && (typ == tar.TypeReg || typ == tar.TypeLink), err
}

func (r resolver) readDir(dir string) ([]string, error) {
	real, typ, ok, err := r.resolve(dir)
	if err != nil || !ok || typ != tar.TypeDir {
		return nil, err
	}
	names, err := r.fs.ReadDir(r.ctx, real)
	if err != nil {
		return nil, fmt.Errorf("listing /%s in the base image: %w", real, err)
	}
	sort.Strings(names)
	return names, nil
}

func (r resolver) readFile(name string) ([]byte, bool, error) {
	real, typ, ok, err := r.resolve(name)
	if err != nil || !ok || typ != tar.TypeReg {
		return nil, false, err
	}
	data, ok, err := r.fs.ReadFile(r.ctx, real)
	if err != nil {
		return nil, false, fmt.Errorf("reading /%s in the base image: %w", real, err)
	}
	return data, ok, nil
}
