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
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var out []Entry
	written := map[string]string{} // a path merged into -> the account file leading there
	for _, f := range accountFiles {
		entries, err := f.entries(ctx, base, upper, u, written, log)
		if err != nil {
			return nil, err
		}
		out = append(out, entries...)
	}
	dirs, err := ownedDirEntries(ctx, base, upper, u, owned)
	if err != nil {
		return nil, err
	}
	out = append(out, dirs...)
	// sorted by name, hard links last: a link must follow its target
	sort.Slice(out, func(i, j int) bool {
		if li, lj := out[i].Type == tar.TypeLink, out[j].Type == tar.TypeLink; li != lj {
			return lj
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// accountFile is a base file UserEntries merges the user into.
type accountFile struct {
	name  string
	merge func([]byte, User) ([]byte, error)
	root  string // the content it is created with when the base has none
}

var accountFiles = []accountFile{
	{"etc/passwd", MergePasswd, "root:x:0:0:root:/root:/bin/sh\n"},
	{"etc/group", MergeGroup, "root:x:0:\n"},
}

// entries are the entries that merge u into f: the file that holds its
// content and, if f is a hard link, the link written again after it.
func (f accountFile) entries(ctx context.Context, base *BaseFS, upper map[string]Entry, u User, written map[string]string, log *slog.Logger) ([]Entry, error) {
	data, meta, real, holder, err := f.read(ctx, base, log)
	if err != nil {
		return nil, err
	}
	if err := f.claim(upper, written, real, holder); err != nil {
		return nil, err
	}
	merged, err := f.merge(data, u)
	if err != nil {
		return nil, err
	}
	out := []Entry{{Name: holder, Type: tar.TypeReg, Mode: meta.Mode, UID: meta.UID, GID: meta.GID, Data: merged, Size: int64(len(merged))}}
	if holder != real { // a hard link: to the new file, not the old one
		out = append(out, Entry{Name: real, Type: tar.TypeLink, Linkname: holder, Mode: meta.Mode, UID: meta.UID, GID: meta.GID})
	}
	return out, nil
}

// read returns f's content and metadata in the base, the path f resolves
// to (real) and the file that holds the content (holder, real unless it is
// a hard link); a base without f gets one with only root, and a warning.
func (f accountFile) read(ctx context.Context, base *BaseFS, log *slog.Logger) (data []byte, meta BaseFile, real, holder string, err error) {
	real, err = base.Resolve(ctx, f.name)
	if err != nil {
		return nil, BaseFile{}, "", "", err
	}
	meta, ok, err := base.Lookup(ctx, real)
	if err != nil {
		return nil, BaseFile{}, "", "", err
	}
	switch {
	case !ok:
		log.Warn("base image has no regular file there; creating one with root and the new user", "path", "/"+f.name)
		return []byte(f.root), BaseFile{Type: tar.TypeReg, Mode: 0o644}, real, real, nil
	case meta.Type == tar.TypeReg || meta.Type == tar.TypeLink:
		data, meta, holder, err = base.readFile(ctx, real)
		return data, meta, real, holder, err
	}
	return nil, BaseFile{}, "", "", fmt.Errorf("base /%s is not a regular file (tar type %q); gantry cannot merge the user into it", real, meta.Type)
}

// claim records that the merge into f writes real and holder, refusing a
// path another account file or a new layer writes too.
func (f accountFile) claim(upper map[string]Entry, written map[string]string, real, holder string) error {
	paths := []string{real}
	if holder != real {
		paths = append(paths, holder)
	}
	for _, p := range paths {
		if other, dup := written[p]; dup {
			return fmt.Errorf("base /%s and /%s are the same file (/%s); gantry cannot merge a user and a group into one file", other, f.name, p)
		}
		if _, ok := upper[p]; ok && p != f.name {
			return fmt.Errorf("a new layer writes /%s, which the user merge writes too (/%s leads there); drop the file and let user: add the account", p, f.name)
		}
		written[p] = f.name
	}
	return nil
}

// ownedDirEntries are the entries that give u the directories owned, each
// once, "/" never.
func ownedDirEntries(ctx context.Context, base *BaseFS, upper map[string]Entry, u User, owned []string) ([]Entry, error) {
	var out []Entry
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
		mode, err := ownedDirMode(ctx, base, upper, d, name)
		if err != nil {
			return nil, err
		}
		out = append(out, Entry{Name: name, Type: tar.TypeDir, Mode: mode, UID: u.UID, GID: u.GID})
	}
	return out, nil
}

// ownedDirMode is the mode of owned directory d (name in the image): from
// the new layers, else from the base, else 0755.
func ownedDirMode(ctx context.Context, base *BaseFS, upper map[string]Entry, d, name string) (int64, error) {
	if e, ok := upper[name]; ok {
		if e.Type != tar.TypeDir {
			return 0, fmt.Errorf("owned directory %s is a file in a new layer", d)
		}
		return e.Mode, nil
	}
	meta, ok, err := base.Lookup(ctx, name)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0o755, nil
	}
	if meta.Type != tar.TypeDir {
		return 0, fmt.Errorf("owned directory %s is not a directory in the base image", d)
	}
	return meta.Mode, nil
}
