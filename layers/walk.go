package layers

import (
	"archive/tar"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

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
	byName := &entrySet{at: map[string]int{}}
	for _, src := range s.Sources {
		if err := walkSource(s, src, byName); err != nil {
			return nil, err
		}
	}
	s.xattrs.warn(s.Log)
	entries := byName.list
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

// entrySet is a layer's entries by name: a map of indexes into a list, so
// that each entry is held once (a map of 100k entries holds them again, in
// slots up to twice as many).
type entrySet struct {
	at   map[string]int
	list []Entry
}

func (es *entrySet) get(name string) (Entry, bool) {
	i, ok := es.at[name]
	if !ok {
		return Entry{}, false
	}
	return es.list[i], true
}

// grow makes room for n more entries.
func (es *entrySet) grow(n int) {
	if len(es.at) == 0 {
		es.at = make(map[string]int, n)
	}
	es.list = slices.Grow(es.list, n)
}

// put adds e, or replaces the entry of its name.
func (es *entrySet) put(e Entry) {
	if i, ok := es.at[e.Name]; ok {
		es.list[i] = e
		return
	}
	es.at[e.Name] = len(es.list)
	es.list = append(es.list, e)
}

func walkSource(s Spec, src Source, out *entrySet) error {
	to, err := Target(src.To)
	if err != nil {
		return err
	}
	from, fi, err := resolveSource(src.From)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return addFileSource(s, src, to, from, fi, out)
	}
	return walkDirSource(s, src, to, from, out)
}

// resolveSource stats a source's host path, following it if it is a
// symlink: a source that is itself a symlink is the user's own argument, so
// it is followed (symlinks inside it stay governed by FollowSymlinks).
// Without this, a linked directory shipped as one symlink to a host path.
func resolveSource(p string) (from string, fi fs.FileInfo, err error) {
	fi, err = os.Lstat(p)
	if err != nil {
		return "", nil, fmt.Errorf("layer source %s: %w", p, unwrapPathError(err))
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		return p, fi, nil
	}
	if from, err = filepath.EvalSymlinks(p); err != nil {
		return "", nil, fmt.Errorf("layer source %s is a symlink that does not resolve: %w; point it at an existing file or directory", p, unwrapPathError(err))
	}
	if fi, err = os.Stat(from); err != nil {
		return "", nil, fmt.Errorf("layer source %s (a symlink to %s): %w", p, from, unwrapPathError(err))
	}
	return from, fi, nil
}

// addFileSource adds a source that is a single file (from is its real
// path): as to, or under it when src.To ends in "/" or is "/".
func addFileSource(s Spec, src Source, to, from string, fi fs.FileInfo, out *entrySet) error {
	base := filepath.Base(src.From)
	name := to
	if strings.HasSuffix(src.To, "/") || to == "" {
		name = path.Join(to, base)
	}
	for _, n := range []string{base, filepath.Base(from)} {
		if err := s.checkSecretName(src.From, n, false); err != nil {
			return err
		}
	}
	s.xattrs.check(from, fi.Mode())
	e, err := entryFor(s, from, name, fi)
	if err != nil {
		return err
	}
	s.markSecret(&e, base)
	addEntry(s, out, e)
	return nil
}

// walkDirSource adds the entries of a directory source (from is its real
// path) under to, as its patterns select them.
func walkDirSource(s Spec, src Source, to, from string, out *entrySet) error {
	exclude, include, err := sourceMatchers(s, from)
	if err != nil {
		return err
	}
	w := &dirWalker{s: &s, to: to, exclude: exclude, include: include}
	if s.FollowSymlinks {
		if w.root, err = filepath.EvalSymlinks(from); err != nil {
			return fmt.Errorf("layer source %s: %w", src.From, unwrapPathError(err))
		}
	}
	if err := w.walk(from, ""); err != nil {
		return err
	}
	if err := w.settle(); err != nil {
		return err
	}
	if include != nil {
		w.out = pruneEmptyDirs(w.out, to)
	}
	out.grow(len(w.out))
	for _, e := range w.out {
		addEntry(s, out, e)
	}
	return nil
}

// sourceMatchers compiles the exclude patterns of directory source from
// (the Spec's and its IgnoreFile's) and the include patterns (nil when the
// Spec has none).
func sourceMatchers(s Spec, from string) (exclude, include *patternmatcher.PatternMatcher, err error) {
	ignored, err := readIgnoreFile(from)
	if err != nil {
		return nil, nil, err
	}
	excludes := append(append([]string(nil), s.Exclude...), ignored...)
	exclude, err = patternmatcher.New(excludes)
	if err != nil {
		return nil, nil, fmt.Errorf("exclude patterns %q: %w", excludes, err)
	}
	if len(s.Include) > 0 {
		if include, err = patternmatcher.New(s.Include); err != nil {
			return nil, nil, fmt.Errorf("include patterns %q: %w", s.Include, err)
		}
	}
	return exclude, include, nil
}

// readIgnoreFile returns the patterns of the IgnoreFile in directory dir,
// and IgnoreFile itself, which is never taken; none if dir has no
// IgnoreFile (or it cannot be opened).
func readIgnoreFile(dir string) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, IgnoreFile))
	if err != nil {
		return nil, nil
	}
	pats, err := ignorefile.ReadAll(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(dir, IgnoreFile), err)
	}
	return append(pats, IgnoreFile), nil
}

// dirWalker walks one directory source (and, with FollowSymlinks, the
// directories that symlinks inside it point to).
type dirWalker struct {
	s                *Spec
	to               string
	root             string // the source's real path, when following symlinks
	exclude, include *patternmatcher.PatternMatcher
	out              []Entry // in the walk's order; each name once
	depth            int
	found            []found // entries whose metadata settle reads
}

// found is an entry the walk took whose metadata is read afterwards, on
// several workers (statFound): on a tree of many small files, lstat and
// listxattr are most of a walk's time.
type found struct {
	p, rel, name string
	d            fs.DirEntry
	fi           fs.FileInfo
	xattrs       []string
	err          error
}

// walk adds the entries of hostDir, whose path relative to the source is
// prefix ("" for the source itself).
func (w *dirWalker) walk(hostDir, prefix string) error {
	// WalkDir names what is under hostDir by joining it, cleaned, with
	// each name: rel is then the rest of the path, with no allocation
	under := filepath.Clean(hostDir)
	if !strings.HasSuffix(under, string(filepath.Separator)) {
		under += string(filepath.Separator)
	}
	return filepath.WalkDir(hostDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("layer source %s: %w", p, unwrapPathError(err))
		}
		rel, ok := strings.CutPrefix(p, under)
		if !ok {
			if rel, err = filepath.Rel(hostDir, p); err != nil {
				return err
			}
		}
		if rel = filepath.ToSlash(rel); prefix != "" {
			rel = path.Join(prefix, rel)
		}
		if rel != "." {
			if skip, err := w.skip(p, rel, d); skip || err != nil {
				return err
			}
		}
		return w.add(p, rel, d)
	})
}

// skip reports whether host path p (rel in the source) stays out of the
// layer: excluded (with filepath.SkipDir for a directory that no exception
// reaches into), not included, or refused as a secret (an error).
func (w *dirWalker) skip(p, rel string, d fs.DirEntry) (bool, error) {
	excluded, err := w.exclude.MatchesOrParentMatches(rel)
	if err != nil {
		return true, fmt.Errorf("matching %s against excludes: %w", p, err)
	}
	if excluded {
		if d.IsDir() && !w.exclude.Exclusions() {
			return true, filepath.SkipDir
		}
		return true, nil
	}
	included, err := w.included(p, rel, d)
	if err != nil || !included {
		return true, err
	}
	if err := w.s.checkSecretName(p, rel, d.IsDir()); err != nil {
		return true, err
	}
	return false, nil
}

// included reports whether the include patterns take p; they select files
// only, so directories and symlinks always pass.
func (w *dirWalker) included(p, rel string, d fs.DirEntry) (bool, error) {
	if w.include == nil || d.IsDir() || d.Type()&fs.ModeSymlink != 0 {
		return true, nil
	}
	ok, err := w.include.MatchesOrParentMatches(rel)
	if err != nil {
		return false, fmt.Errorf("matching %s against includes: %w", p, err)
	}
	return ok, nil
}

// add takes the entry of host path p (rel in the source): into w.found,
// or, for a symlink followed inside the source, what it points to.
func (w *dirWalker) add(p, rel string, d fs.DirEntry) error {
	name, err := MapPath(w.to, rel)
	if err != nil {
		return fmt.Errorf("layer source %s: %w", p, err)
	}
	if name == "" { // the source directory maps onto "/": no entry for "/"
		return nil
	}
	if d.Type()&fs.ModeSymlink == 0 || !w.s.FollowSymlinks {
		w.found = append(w.found, found{p: p, rel: rel, name: name, d: d})
		return nil
	}
	fi, err := d.Info()
	if err != nil {
		return fmt.Errorf("layer source %s: %w", p, unwrapPathError(err))
	}
	followed, err := w.follow(p, rel, name)
	if err != nil || followed {
		return err
	}
	return w.put(p, rel, name, fi)
}

// settle reads the metadata of the entries the walk found and records
// them, in the walk's order: the first that fails is the error.
func (w *dirWalker) settle() error {
	statFound(w.found, w.s.xattrs != nil)
	w.out = slices.Grow(w.out, len(w.found))
	for i := range w.found {
		f := &w.found[i]
		if f.err != nil {
			return fmt.Errorf("layer source %s: %w", f.p, unwrapPathError(f.err))
		}
		w.s.xattrs.note(f.p, f.xattrs)
		if err := w.record(f.p, f.rel, f.name, f.fi); err != nil {
			return err
		}
	}
	w.found = nil
	return nil
}

// statFound reads each entry's metadata (and, if xattrs, its extended
// attributes) on GOMAXPROCS workers, in batches; it returns when all are
// read.
func statFound(fl []found, xattrs bool) {
	const batch = 64
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), (len(fl)+batch-1)/batch) {
		wg.Go(func() {
			buf := make([]byte, 256)
			for {
				i := int(next.Add(batch)) - batch
				if i >= len(fl) {
					return
				}
				for j := i; j < min(i+batch, len(fl)); j++ {
					f := &fl[j]
					if f.fi, f.err = f.d.Info(); f.err == nil && xattrs && xattrsMatter(f.fi.Mode()) {
						f.xattrs, buf = keptXattrs(f.p, buf)
					}
				}
			}
		})
	}
	wg.Wait()
}

// put records the entry for host file hostPath as name, checking its
// extended attributes.
func (w *dirWalker) put(hostPath, rel, name string, fi fs.FileInfo) error {
	w.s.xattrs.check(hostPath, fi.Mode())
	return w.record(hostPath, rel, name, fi)
}

// record records the entry for host file hostPath as name.
func (w *dirWalker) record(hostPath, rel, name string, fi fs.FileInfo) error {
	e, err := entryFor(*w.s, hostPath, name, fi)
	if err != nil {
		return err
	}
	w.s.markSecret(&e, rel)
	w.out = append(w.out, e)
	return nil
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
		return true, w.put(target, rel, name, fi)
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
	if to == "" {
		return rel, nil
	}
	return to + "/" + rel, nil // both clean, rel inside: no cleaning, never outside to
}

// pruneEmptyDirs drops directories that hold no included entry, keeping the
// target directory itself.
func pruneEmptyDirs(es []Entry, root string) []Entry {
	keep := map[string]bool{root: true}
	for _, e := range es {
		if e.Type == tar.TypeDir {
			continue
		}
		for d := path.Dir(e.Name); d != "." && d != "/" && !keep[d]; d = path.Dir(d) {
			keep[d] = true
		}
	}
	return slices.DeleteFunc(es, func(e Entry) bool { return e.Type == tar.TypeDir && !keep[e.Name] })
}

// addEntry adds e to out, replacing an earlier source's entry of its name,
// and its precompressed sibling if s asks for one.
func addEntry(s Spec, out *entrySet, e Entry) {
	out.put(e)
	if s.Precompress && e.Type == tar.TypeReg && compressible[strings.ToLower(path.Ext(e.Name))] {
		gz := e
		gz.Name += ".gz"
		gz.Gzip = true
		// a sibling generated from an earlier source's file is replaced; a
		// ".gz" the sources hold themselves is kept
		if old, exists := out.get(gz.Name); !exists || old.Gzip {
			out.put(gz)
		}
	}
}
