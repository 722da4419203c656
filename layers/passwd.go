package layers

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
)

// User is an account to merge into a base's /etc/passwd and /etc/group.
type User struct {
	Name  string
	UID   int
	Group string
	GID   int
	Home  string // default "/"
	Shell string // default "/sbin/nologin"
}

// MergePasswd adds u to a passwd file. An entry with the same name and ids
// is kept as it is; a clash on the name or the uid is an error.
func MergePasswd(base []byte, u User) ([]byte, error) {
	home, shell := u.Home, u.Shell
	if home == "" {
		home = "/"
	}
	if shell == "" {
		shell = "/sbin/nologin"
	}
	line := fmt.Sprintf("%s:x:%d:%d::%s:%s", u.Name, u.UID, u.GID, home, shell)
	return merge(base, "/etc/passwd", "user", u.Name, u.UID, line, func(f []string) bool {
		return len(f) >= 4 && f[0] == u.Name && f[2] == strconv.Itoa(u.UID) && f[3] == strconv.Itoa(u.GID)
	})
}

// MergeGroup adds u's group to a group file, with the same rules.
func MergeGroup(base []byte, u User) ([]byte, error) {
	line := fmt.Sprintf("%s:x:%d:", u.Group, u.GID)
	return merge(base, "/etc/group", "group", u.Group, u.GID, line, func(f []string) bool {
		return f[0] == u.Group && f[2] == strconv.Itoa(u.GID)
	})
}

// merge appends line to file unless same finds that entry already there; an
// entry with the same name or id that is not the same entry is an error.
// Every line is looked at; the file is not copied until it is changed.
func merge(file []byte, fileName, what, name string, id int, line string, same func([]string) bool) ([]byte, error) {
	idStr := strconv.Itoa(id)
	for rest := file; len(rest) > 0; {
		var l []byte
		l, rest, _ = bytes.Cut(rest, []byte("\n"))
		if bytes.HasPrefix(l, []byte("#")) || bytes.Count(l, []byte(":")) < 2 {
			continue
		}
		f := strings.Split(string(l), ":")
		switch {
		case same(f):
			return file, nil
		case f[0] == name:
			return nil, fmt.Errorf("%s: %s %q already exists as %q; choose another name or use its ids", fileName, what, name, l)
		case f[2] == idStr:
			return nil, fmt.Errorf("%s: id %d for %s %q is already taken by %q; choose another id", fileName, id, what, name, f[0])
		}
	}
	out := make([]byte, 0, len(file)+len(line)+2)
	out = append(out, file...)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return append(append(out, line...), '\n'), nil
}

// UserEntries returns the entries of the small layer that adds u to the
// base's /etc/passwd and /etc/group and gives u the directories owned. Each
// file keeps the base's mode and owner; each owned directory keeps its mode
// from the layers above the base (upper, keyed by name) or from the base,
// and is created 0755 when neither has it. log (which may be nil) gets a
// warning when the base has no /etc/passwd or /etc/group.
//
// A file that is a symlink in the base (etc/passwd -> ../usr/lib/passwd,
// as Nix images have, or an absolute one, over several hops) is merged
// where it points, and the link is kept; a hard link is merged into its
// target, and the link is written again to the new target, after it.
func UserEntries(ctx context.Context, base *BaseFS, upper map[string]Entry, u User, owned []string, log *slog.Logger) ([]Entry, error) {
	var out []Entry
	written := map[string]string{}
	for _, f := range []struct {
		name  string
		merge func([]byte, User) ([]byte, error)
		root  string
	}{
		{"etc/passwd", MergePasswd, "root:x:0:0:root:/root:/bin/sh\n"},
		{"etc/group", MergeGroup, "root:x:0:\n"},
	} {
		real, err := base.Resolve(ctx, f.name)
		if err != nil {
			return nil, err
		}
		meta, ok, err := base.Lookup(ctx, real)
		if err != nil {
			return nil, err
		}
		var data []byte
		holder := real // the file that holds the content
		switch {
		case !ok:
			if log == nil {
				log = slog.New(slog.DiscardHandler)
			}
			log.Warn("base image has no regular file there; creating one with root and the new user", "path", "/"+f.name)
			meta, data = BaseFile{Type: tar.TypeReg, Mode: 0o644}, []byte(f.root)
		case meta.Type == tar.TypeReg || meta.Type == tar.TypeLink:
			if data, meta, holder, err = base.readFile(ctx, real); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("base /%s is not a regular file (tar type %q); gantry cannot merge the user into it", real, meta.Type)
		}
		paths := []string{real}
		if holder != real {
			paths = append(paths, holder)
		}
		for _, p := range paths {
			if other, dup := written[p]; dup {
				return nil, fmt.Errorf("base /%s and /%s are the same file (/%s); gantry cannot merge a user and a group into one file", other, f.name, p)
			}
			if _, ok := upper[p]; ok && p != f.name {
				return nil, fmt.Errorf("a new layer writes /%s, which the user merge writes too (/%s leads there); drop the file and let user: add the account", p, f.name)
			}
			written[p] = f.name
		}
		merged, err := f.merge(data, u)
		if err != nil {
			return nil, err
		}
		out = append(out, Entry{Name: holder, Type: tar.TypeReg, Mode: meta.Mode, UID: meta.UID, GID: meta.GID, Data: merged, Size: int64(len(merged))})
		if holder != real { // a hard link: to the new file, not the old one
			out = append(out, Entry{Name: real, Type: tar.TypeLink, Linkname: holder, Mode: meta.Mode, UID: meta.UID, GID: meta.GID})
		}
	}
	seen := map[string]bool{}
	for _, d := range owned {
		name, err := Target(d)
		if err != nil {
			return nil, fmt.Errorf("owned directory: %w", err)
		}
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		mode := int64(0o755)
		if e, ok := upper[name]; ok {
			if e.Type != tar.TypeDir {
				return nil, fmt.Errorf("owned directory %s is a file in a new layer", d)
			}
			mode = e.Mode
		} else {
			meta, ok, err := base.Lookup(ctx, name)
			if err != nil {
				return nil, err
			}
			if ok && meta.Type != tar.TypeDir {
				return nil, fmt.Errorf("owned directory %s is not a directory in the base image", d)
			}
			if ok {
				mode = meta.Mode
			}
		}
		out = append(out, Entry{Name: name, Type: tar.TypeDir, Mode: mode, UID: u.UID, GID: u.GID})
	}
	// sorted by name, hard links last: a link must follow its target
	sort.Slice(out, func(i, j int) bool {
		if li, lj := out[i].Type == tar.TypeLink, out[j].Type == tar.TypeLink; li != lj {
			return lj
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}
