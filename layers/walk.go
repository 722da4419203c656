package layers

import (
	"archive/tar"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
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
	// FileMode and DirMode replace the permission bits (including setuid,
	// setgid and sticky, as 0o7777) of regular files and directories. Zero means normalised: 0755 for directories and for files
	// with any execute bit, 0644 for other files (independent of umask).
	FileMode, DirMode fs.FileMode
	// Include and Exclude are .dockerignore-style patterns relative to each
	// directory source. With Include set, only matching files are taken.
	Include, Exclude []string
	// Precompress adds a deterministic gzip sibling ("x.js.gz") for each
	// compressible file, for servers such as nginx's gzip_static.
	Precompress bool
	// FollowSymlinks replaces symlinks that resolve inside the source with
	// what they point to. Symlinks pointing outside are always kept as
	// symlinks, never followed.
	FollowSymlinks bool
	// SecretFiles refuses files that look like secrets (.env, private
	// keys, .git, tokens in .npmrc/.pypirc) unless AllowSecretFiles (the
	// same pattern syntax as Exclude) matches them.
	SecretFiles      bool
	AllowSecretFiles []string
	// Log, if set, gets warnings about what the layer cannot carry, such
	// as extended attributes (security.capability, user.*) of source
	// files, which are never written to the tar. Nil means no warnings.
	Log *slog.Logger

	allowMatcher *patternmatcher.PatternMatcher
	xattrs       *xattrReport
}

// xattrReport collects the source files that have extended attributes, to
// warn about them once the walk is done.
type xattrReport struct {
	files []string // "path (attr, attr)": the first maxXattrWarnings, and all with a capability
	count int
	buf   []byte
}

// maxXattrWarnings is how many files with extended attributes are named one
// by one; the rest are counted.
const maxXattrWarnings = 10

// ignoredXattr: the host's SELinux label is policy of the machine, not of
// the file, and is on every file of such systems.
func ignoredXattr(name string) bool { return name == "security.selinux" }

func (r *xattrReport) check(hostPath string) {
	if r == nil {
		return
	}
	var names []string
	names, r.buf = listXattrs(hostPath, r.buf)
	kept := names[:0]
	for _, n := range names {
		if !ignoredXattr(n) {
			kept = append(kept, n)
		}
	}
	if len(kept) == 0 {
		return
	}
	r.count++
	// a lost file capability is always named: the program may not work
	if len(r.files) < maxXattrWarnings || slices.Contains(kept, "security.capability") {
		r.files = append(r.files, hostPath+" ("+strings.Join(kept, ", ")+")")
	}
}

func (r *xattrReport) warn(log *slog.Logger) {
	if r == nil || log == nil || r.count == 0 {
		return
	}
	for _, f := range r.files {
		log.Warn("layer source has extended attributes, which gantry does not copy into the layer; a file capability (security.capability) is lost: grant it at run time (--cap-add) or set it in the base", "file", f)
	}
	if more := r.count - len(r.files); more > 0 {
		log.Warn("more layer sources have extended attributes, which are not copied either", "files", more)
	}
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
	if err := s.compileAllow(); err != nil {
		return nil, err
	}
	if s.Log != nil {
		s.xattrs = &xattrReport{buf: make([]byte, 256)}
	}
	byName := map[string]Entry{}
	for _, src := range s.Sources {
		if err := walkSource(s, src, byName); err != nil {
			return nil, err
		}
	}
	s.xattrs.warn(s.Log)
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
	// A source that is itself a symlink is the user's own argument: it is
	// followed (symlinks inside it stay governed by FollowSymlinks). Without
	// this, a linked directory shipped as one symlink to a host path.
	base, from := filepath.Base(src.From), src.From
	if fi.Mode()&fs.ModeSymlink != 0 {
		if from, err = filepath.EvalSymlinks(src.From); err != nil {
			return fmt.Errorf("layer source %s is a symlink that does not resolve: %w; point it at an existing file or directory", src.From, unwrapPathError(err))
		}
		if fi, err = os.Stat(from); err != nil {
			return fmt.Errorf("layer source %s (a symlink to %s): %w", src.From, from, unwrapPathError(err))
		}
	}
	if !fi.IsDir() {
		name := to
		if strings.HasSuffix(src.To, "/") || to == "" {
			name = path.Join(to, base)
		}
		for _, n := range []string{base, filepath.Base(from)} {
			if err := s.checkSecretName(src.From, n, false); err != nil {
				return err
			}
		}
		e, err := entryFor(s, from, name, fi)
		if err != nil {
			return err
		}
		s.markSecret(&e, base)
		addEntry(s, out, e)
		return nil
	}

	excludes := append([]string(nil), s.Exclude...)
	if f, err := os.Open(filepath.Join(from, IgnoreFile)); err == nil {
		pats, err := ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("reading %s: %w", filepath.Join(from, IgnoreFile), err)
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
	w := &dirWalker{s: &s, to: to, exclude: exclude, include: include, out: local}
	if s.FollowSymlinks {
		if w.root, err = filepath.EvalSymlinks(from); err != nil {
			return fmt.Errorf("layer source %s: %w", src.From, unwrapPathError(err))
		}
	}
	if err := w.walk(from, ""); err != nil {
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

// dirWalker walks one directory source (and, with FollowSymlinks, the
// directories that symlinks inside it point to).
type dirWalker struct {
	s                *Spec
	to               string
	root             string // the source's real path, when following symlinks
	exclude, include *patternmatcher.PatternMatcher
	out              map[string]Entry
	depth            int
}

// walk adds the entries of hostDir, whose path relative to the source is
// prefix ("" for the source itself).
func (w *dirWalker) walk(hostDir, prefix string) error {
	return filepath.WalkDir(hostDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("layer source %s: %w", p, unwrapPathError(err))
		}
		rel, err := filepath.Rel(hostDir, p)
		if err != nil {
			return err
		}
		rel = path.Join(prefix, filepath.ToSlash(rel))
		if rel != "." {
			excluded, err := w.exclude.MatchesOrParentMatches(rel)
			if err != nil {
				return fmt.Errorf("matching %s against excludes: %w", p, err)
			}
			if excluded {
				if d.IsDir() && !w.exclude.Exclusions() {
					return filepath.SkipDir
				}
				return nil
			}
			if w.include != nil && !d.IsDir() && d.Type()&fs.ModeSymlink == 0 {
				ok, err := w.include.MatchesOrParentMatches(rel)
				if err != nil {
					return fmt.Errorf("matching %s against includes: %w", p, err)
				}
				if !ok {
					return nil
				}
			}
			if err := w.s.checkSecretName(p, rel, d.IsDir()); err != nil {
				return err
			}
		}
		name, err := MapPath(w.to, rel)
		if err != nil {
			return fmt.Errorf("layer source %s: %w", p, err)
		}
		if name == "" { // the source directory maps onto "/": no entry for "/"
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return fmt.Errorf("layer source %s: %w", p, unwrapPathError(err))
		}
		if fi.Mode()&fs.ModeSymlink != 0 && w.s.FollowSymlinks {
			followed, err := w.follow(p, rel, name)
			if err != nil || followed {
				return err
			}
		}
		e, err := entryFor(*w.s, p, name, fi)
		if err != nil {
			return err
		}
		w.s.markSecret(&e, rel)
		w.out[name] = e
		return nil
	})
}

// follow replaces a symlink that resolves inside the source tree with what
// it points to; one pointing outside stays a symlink (never followed out).
func (w *dirWalker) follow(p, rel, name string) (bool, error) {
	target, err := filepath.EvalSymlinks(p)
	if err != nil {
		return false, nil // dangling: keep the symlink as it is
	}
	if target != w.root && !strings.HasPrefix(target, w.root+string(filepath.Separator)) {
		return false, nil
	}
	fi, err := os.Stat(target)
	if err != nil {
		return false, fmt.Errorf("layer source %s: %w", p, unwrapPathError(err))
	}
	if !fi.IsDir() {
		e, err := entryFor(*w.s, target, name, fi)
		if err != nil {
			return false, err
		}
		w.s.markSecret(&e, rel)
		w.out[name] = e
		return true, nil
	}
	if w.depth >= 16 {
		return false, fmt.Errorf("layer source %s: symlinked directories nest more than 16 deep (a loop?)", p)
	}
	w.depth++
	defer func() { w.depth-- }()
	return true, w.walk(target, rel)
}

// MapPath places rel (a slash-separated path inside a source, "." for the
// source itself) under to (a cleaned target without its leading slash). It
// fails rather than return a name outside to.
func MapPath(to, rel string) (string, error) {
	if rel == "." || rel == "" {
		return to, nil
	}
	if path.IsAbs(rel) || rel != path.Clean(rel) || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("path %q is not inside its source", rel)
	}
	name := path.Join(to, rel)
	if to != "" && !strings.HasPrefix(name, to+"/") {
		return "", fmt.Errorf("path %q would land outside its target /%s", rel, to)
	}
	return name, nil
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
	if mode.IsRegular() || mode.IsDir() {
		s.xattrs.check(hostPath)
	}
	switch {
	case mode.IsRegular():
		e.Type = tar.TypeReg
		e.Size = fi.Size()
		e.Source = hostPath
		if hs, ok := statOf(fi); ok {
			e.host = hs
			if hs.nlink > 1 {
				e.inode = hs.id
			}
		}
		e.Mode = 0o644
		if mode.Perm()&0o111 != 0 {
			e.Mode = 0o755
		}
		if s.FileMode != 0 {
			e.Mode = int64(s.FileMode) & 0o7777
		}
	case mode.IsDir():
		e.Type = tar.TypeDir
		e.Mode = 0o755
		if s.DirMode != 0 {
			e.Mode = int64(s.DirMode) & 0o7777
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
