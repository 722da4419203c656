package layers

import (
	"archive/tar"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// IgnoreFile is read from the root of every directory source; it has the
// syntax of .dockerignore and adds to the layer's exclude patterns.
const IgnoreFile = ".gantryignore"

// Source maps a host path into the image.
type Source struct {
	// From is a host directory (its contents go under To) or a single file
	// (it becomes To, or To/<base name> when To ends in "/").
	From string
	// To is an absolute path in the image.
	To string
}

// Owner is a numeric uid:gid.
type Owner struct{ UID, GID int }

// Spec describes one layer made from host files.
type Spec struct {
	Sources []Source
	// Owner of every entry; nil means 0:0 (never the host's ids).
	Owner *Owner
	// FileMode and DirMode replace the permission bits of regular files and
	// directories. Zero means normalised: 0755 for directories and for files
	// with any execute bit, 0644 for other files (independent of umask).
	FileMode, DirMode fs.FileMode
	// Include and Exclude are .dockerignore-style patterns relative to each
	// directory source. With Include set, only matching files are taken.
	Include, Exclude []string
	// Precompress adds a deterministic gzip sibling ("x.js.gz") for each
	// compressible file, for servers such as nginx's gzip_static.
	Precompress bool
}

// compressible lists the extensions Precompress applies to.
var compressible = map[string]bool{
	".html": true, ".htm": true, ".css": true, ".js": true, ".mjs": true, ".json": true,
	".map": true, ".svg": true, ".txt": true, ".xml": true, ".wasm": true, ".ico": true,
	".webmanifest": true,
}

// Walk lists the entries of the layer described by s, sorted by name. It
// reads metadata only, never file contents.
func Walk(s Spec) ([]Entry, error) {
	byName := map[string]Entry{}
	for _, src := range s.Sources {
		if err := walkSource(s, src, byName); err != nil {
			return nil, err
		}
	}
	entries := make([]Entry, 0, len(byName))
	for _, e := range byName {
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	linkHardLinks(entries)
	return entries, nil
}

// Target cleans an absolute image path and returns it without the leading
// slash, or an error if it is not absolute.
func Target(p string) (string, error) {
	if !path.IsAbs(p) {
		return "", fmt.Errorf("target %q is not an absolute path", p)
	}
	return strings.TrimPrefix(path.Clean(p), "/"), nil
}

func walkSource(s Spec, src Source, out map[string]Entry) error {
	to, err := Target(src.To)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(src.From)
	if err != nil {
		return fmt.Errorf("layer source %s: %w", src.From, unwrapPathError(err))
	}
	if !fi.IsDir() {
		name := to
		if strings.HasSuffix(src.To, "/") || to == "" {
			name = path.Join(to, fi.Name())
		}
		e, err := entryFor(s, src.From, name, fi)
		if err != nil {
			return err
		}
		addEntry(s, out, e)
		return nil
	}

	excludes := append([]string(nil), s.Exclude...)
	if f, err := os.Open(filepath.Join(src.From, IgnoreFile)); err == nil {
		pats, err := ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("reading %s: %w", filepath.Join(src.From, IgnoreFile), err)
		}
		excludes = append(excludes, pats...)
		excludes = append(excludes, IgnoreFile)
	}
	exclude, err := patternmatcher.New(excludes)
	if err != nil {
		return fmt.Errorf("exclude patterns %q: %w", excludes, err)
	}
	var include *patternmatcher.PatternMatcher
	if len(s.Include) > 0 {
		if include, err = patternmatcher.New(s.Include); err != nil {
			return fmt.Errorf("include patterns %q: %w", s.Include, err)
		}
	}

	local := map[string]Entry{}
	err = filepath.WalkDir(src.From, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("layer source %s: %w", p, unwrapPathError(err))
		}
		rel, err := filepath.Rel(src.From, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel != "." {
			excluded, err := exclude.MatchesOrParentMatches(rel)
			if err != nil {
				return fmt.Errorf("matching %s against excludes: %w", p, err)
			}
			if excluded {
				if d.IsDir() && !exclude.Exclusions() {
					return filepath.SkipDir
				}
				return nil
			}
			if include != nil && !d.IsDir() {
				ok, err := include.MatchesOrParentMatches(rel)
				if err != nil {
					return fmt.Errorf("matching %s against includes: %w", p, err)
				}
				if !ok {
					return nil
				}
			}
		}
		fi, err := d.Info()
		if err != nil {
			return fmt.Errorf("layer source %s: %w", p, unwrapPathError(err))
		}
		name := to
		if rel != "." {
			name = path.Join(to, rel)
		}
		if name == "" { // the source directory maps onto "/": no entry for "/"
			return nil
		}
		e, err := entryFor(s, p, name, fi)
		if err != nil {
			return err
		}
		local[name] = e
		return nil
	})
	if err != nil {
		return err
	}
	if include != nil {
		pruneEmptyDirs(local, to)
	}
	for _, e := range local {
		addEntry(s, out, e)
	}
	return nil
}

// pruneEmptyDirs drops directories that hold no included entry, keeping the
// target directory itself.
func pruneEmptyDirs(m map[string]Entry, root string) {
	keep := map[string]bool{root: true}
	for name, e := range m {
		if e.Type == tar.TypeDir {
			continue
		}
		for d := path.Dir(name); d != "." && d != "/" && !keep[d]; d = path.Dir(d) {
			keep[d] = true
		}
	}
	for name, e := range m {
		if e.Type == tar.TypeDir && !keep[name] {
			delete(m, name)
		}
	}
}

func addEntry(s Spec, out map[string]Entry, e Entry) {
	out[e.Name] = e
	if s.Precompress && e.Type == tar.TypeReg && compressible[strings.ToLower(path.Ext(e.Name))] {
		gz := e
		gz.Name += ".gz"
		gz.Gzip = true
		// a sibling generated from an earlier source's file is replaced; a
		// ".gz" the sources hold themselves is kept
		if old, exists := out[gz.Name]; !exists || old.Gzip {
			out[gz.Name] = gz
		}
	}
}

func entryFor(s Spec, hostPath, name string, fi fs.FileInfo) (Entry, error) {
	if !utf8.ValidString(name) {
		return Entry{}, fmt.Errorf("layer source %s: file name is not valid UTF-8; rename it or exclude it", hostPath)
	}
	e := Entry{Name: name, SourceMTime: fi.ModTime()}
	if s.Owner != nil {
		e.UID, e.GID = s.Owner.UID, s.Owner.GID
	}
	mode := fi.Mode()
	switch {
	case mode.IsRegular():
		e.Type = tar.TypeReg
		e.Size = fi.Size()
		e.Source = hostPath
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			e.inode = fileID{uint64(st.Dev), st.Ino}
		}
		e.Mode = 0o644
		if mode.Perm()&0o111 != 0 {
			e.Mode = 0o755
		}
		if s.FileMode != 0 {
			e.Mode = int64(s.FileMode.Perm())
		}
	case mode.IsDir():
		e.Type = tar.TypeDir
		e.Mode = 0o755
		if s.DirMode != 0 {
			e.Mode = int64(s.DirMode.Perm())
		}
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(hostPath)
		if err != nil {
			return Entry{}, fmt.Errorf("layer source %s: %w", hostPath, unwrapPathError(err))
		}
		e.Type = tar.TypeSymlink
		e.Linkname = target
		e.Mode = 0o777
	default:
		return Entry{}, fmt.Errorf("layer source %s: is a %s; only regular files, directories and symlinks can go into a layer (exclude it)", hostPath, kind(mode))
	}
	return e, nil
}

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device file"
	}
	return "special file"
}

// linkHardLinks turns the second and later names of a multiply-linked host
// file into tar hard links to the first (content stored once).
func linkHardLinks(entries []Entry) {
	first := map[fileID]string{}
	for i := range entries {
		e := &entries[i]
		if e.Type != tar.TypeReg || e.inode == (fileID{}) || e.Gzip {
			continue
		}
		if name, ok := first[e.inode]; ok {
			e.Type, e.Linkname, e.Size, e.Source = tar.TypeLink, name, 0, ""
			continue
		}
		first[e.inode] = e.Name
	}
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
