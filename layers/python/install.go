package python

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/gantry-dev/gantry/layers"
)

// InstallOptions are the knobs of Install.
type InstallOptions struct {
	// Owner of every entry; nil means 0:0.
	Owner *layers.Owner
	// FileMode and DirMode replace the permission bits of regular files and
	// directories, as in layers.Spec. Zero means 0644 for files, 0755 for
	// executables and directories. An executable (a script, a launcher, a
	// member with an execute bit) gets FileMode plus x wherever it has r.
	FileMode, DirMode fs.FileMode
	// Cache is the directory of extracted files: <Cache>/python/files/<sha256>
	// holds contents, <Cache>/python/unpacked/<wheel sha256>.json what a
	// verified wheel holds.
	Cache string
}

// installer is the name written to .dist-info/INSTALLER.
const installer = "gantry\n"

// placed is one file Install writes.
type placed struct {
	abs   string // absolute path in the image
	root  string // the scheme directory it is under (parents below it are created)
	from  string // "<wheel>: <member>", for collision messages
	store string // sha256 of store content, or ""
	data  []byte // inline content when store is ""
	size  int64
	sum   string // hex sha256
	exec  bool
}

// Install lays out wheels for t as layer entries (names relative to "/",
// sorted, for layers.Builder), following the wheel spec (PEP 427/491) as
// pypa/installer does; see the package documentation for what goes where.
// Every wheel is verified against its RECORD once, when its files are
// extracted into the store under o.Cache.
func Install(ctx context.Context, wheels []Wheel, t Target, o InstallOptions) ([]layers.Entry, error) {
	s, err := openStore(o.Cache)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{t.SiteDir, t.ScriptsDir, t.Interpreter, t.Prefix} {
		if !path.IsAbs(d) || path.Clean(d) != d {
			return nil, fmt.Errorf("%s: target paths must be absolute and clean (site %q, scripts %q, interpreter %q, prefix %q)", t.Platform(), t.SiteDir, t.ScriptsDir, t.Interpreter, t.Prefix)
		}
	}
	var all []placed
	for _, w := range wheels {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ps, err := installWheel(ctx, s, w, t)
		if err != nil {
			return nil, err
		}
		all = append(all, ps...)
	}
	return entries(s, all, t, o)
}

// installWheel places the members of one wheel, its launchers, and a new
// INSTALLER and RECORD.
func installWheel(ctx context.Context, s store, w Wheel, t Target) ([]placed, error) {
	if !sha256RE.MatchString(w.SHA256) {
		sum, err := fileSHA256(ctx, w.Path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", w.Filename, err)
		}
		w.SHA256 = sum
	}
	m, err := s.unpack(ctx, w)
	if err != nil {
		return nil, err
	}
	fn := w.Filename
	out, entryPoints, err := placeMembers(ctx, s, m, fn, t)
	if err != nil {
		return nil, err
	}
	if entryPoints != nil {
		ls, err := launchers(fn, entryPoints, t)
		if err != nil {
			return nil, err
		}
		out = append(out, ls...)
	}
	distInfo := path.Join(t.SiteDir, m.DistInfo)
	out = append(out, inline(path.Join(distInfo, "INSTALLER"), t.SiteDir, fn+": INSTALLER", []byte(installer), false))
	record, err := recordFile(fn, path.Join(distInfo, "RECORD"), t.SiteDir, out)
	if err != nil {
		return nil, err
	}
	return append(out, record), nil
}

// placeMembers places every member of a wheel but its INSTALLER, and
// returns its entry_points.txt (nil if it has none).
func placeMembers(ctx context.Context, s store, m *storeManifest, fn string, t Target) ([]placed, []byte, error) {
	var out []placed
	var entryPoints []byte
	for _, mem := range m.Members {
		if mem.Name == m.DistInfo+"/INSTALLER" {
			continue // replaced by gantry's
		}
		if mem.Name == m.DistInfo+"/entry_points.txt" {
			data, err := os.ReadFile(s.path(mem.SHA256))
			if err != nil {
				return nil, nil, fmt.Errorf("%s: reading entry_points.txt from the store: %w", fn, err)
			}
			entryPoints = data
		}
		p, err := placeMember(ctx, s, m, fn, mem, t)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, p)
	}
	return out, entryPoints, nil
}

// placeMember decides where one member goes: the site directory, or the
// scheme directory of its .data subdirectory.
func placeMember(ctx context.Context, s store, m *storeManifest, fn string, mem storeMember, t Target) (placed, error) {
	p := placed{from: fn + ": " + mem.Name, store: mem.SHA256, size: mem.Size, sum: mem.SHA256, exec: mem.Exec}
	if rest, inData := strings.CutPrefix(mem.Name, m.DataDir+"/"); inData {
		if err := placeDataMember(ctx, s, m, fn, mem.Name, rest, t, &p); err != nil {
			return placed{}, err
		}
	} else {
		p.root, p.abs = t.SiteDir, path.Join(t.SiteDir, mem.Name)
	}
	if !strings.HasPrefix(p.abs, p.root+"/") && p.root != "/" {
		return placed{}, fmt.Errorf("%s: %s would be installed at %s, outside %s", fn, mem.Name, p.abs, p.root)
	}
	return p, nil
}

// placeDataMember places the member name, rest below the .data directory,
// by its scheme (purelib, platlib, scripts, headers, data).
func placeDataMember(ctx context.Context, s store, m *storeManifest, fn, name, rest string, t Target, p *placed) error {
	scheme, sub, ok := strings.Cut(rest, "/")
	if !ok {
		return fmt.Errorf("%s: %s is not inside a scheme directory of %s", fn, name, m.DataDir)
	}
	switch scheme {
	case "purelib", "platlib":
		p.root, p.abs = t.SiteDir, path.Join(t.SiteDir, sub)
	case "scripts":
		p.root, p.abs, p.exec = t.ScriptsDir, path.Join(t.ScriptsDir, sub), true
		if err := rewriteShebang(ctx, s, p, t.Interpreter); err != nil {
			return fmt.Errorf("%s: %s: %w", fn, name, err)
		}
	case "headers":
		headersRoot := path.Join(t.Prefix, "include", "python"+t.Python.String())
		p.root = headersRoot
		p.abs = path.Join(headersRoot, m.Name, sub)
	case "data":
		p.root, p.abs = t.Prefix, path.Join(t.Prefix, sub)
		if top, _, nested := strings.Cut(sub, "/"); nested {
			// <prefix>/share, /etc, ... are the base's own
			p.root = path.Join(t.Prefix, top)
		}
	default:
		return fmt.Errorf("%s: %s is in %s/%s, not one of purelib, platlib, scripts, headers, data", fn, name, m.DataDir, scheme)
	}
	return nil
}

func inline(abs, root, from string, data []byte, exec bool) placed {
	sum := sha256.Sum256(data)
	return placed{abs: abs, root: root, from: from, data: data, size: int64(len(data)), sum: hex.EncodeToString(sum[:]), exec: exec}
}

// rewriteShebang replaces a "#!python" (or "#!pythonw") first line of a
// script with "#!<interpreter>", as pypa/installer does; the new content
// goes into the store.
func rewriteShebang(ctx context.Context, s store, p *placed, interpreter string) error {
	f, err := os.Open(s.path(p.store))
	if err != nil {
		return fmt.Errorf("reading script from the store: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	head, _ := br.Peek(8)
	if string(head) != "#!python" {
		return nil
	}
	if _, err := br.ReadString('\n'); err != nil && err != io.EOF {
		return fmt.Errorf("reading script from the store: %w", err)
	}
	r := io.MultiReader(strings.NewReader("#!"+interpreter+"\n"), br)
	sum, n, err := s.put(ctx, r, 1<<40, nil)
	if err != nil {
		return err
	}
	p.store, p.sum, p.size = sum, sum, n
	return nil
}

// entryAttrs are the owner and permission bits of the entries Install
// makes.
type entryAttrs struct {
	uid, gid int
	fileMode fs.FileMode // 0: the defaults
	dirMode  int64
}

func newEntryAttrs(o InstallOptions) entryAttrs {
	a := entryAttrs{fileMode: o.FileMode, dirMode: 0o755}
	if o.Owner != nil {
		a.uid, a.gid = o.Owner.UID, o.Owner.GID
	}
	if o.DirMode != 0 {
		a.dirMode = int64(o.DirMode) & 0o7777
	}
	return a
}

// mode is the permission bits of a file, executable or not.
func (a entryAttrs) mode(exec bool) int64 {
	if a.fileMode == 0 {
		if exec {
			return 0o755
		}
		return 0o644
	}
	mode := int64(a.fileMode) & 0o7777
	if exec {
		mode |= (mode & 0o444) >> 2
	}
	return mode
}

// entries turns placed files into sorted layer entries with the
// directories they need, refusing two files at one path.
func entries(s store, all []placed, t Target, o InstallOptions) ([]layers.Entry, error) {
	a := newEntryAttrs(o)
	files := map[string]string{} // abs → from
	dirs := map[string]bool{}
	for _, d := range t.NewDirs {
		dirs[d] = true
	}
	var out []layers.Entry
	for _, p := range all {
		if prev, ok := files[p.abs]; ok {
			return nil, fmt.Errorf("%s: %s and %s both install %s", t.Platform(), prev, p.from, p.abs)
		}
		files[p.abs] = p.from
		for d := path.Dir(p.abs); d != p.root && strings.HasPrefix(d, p.root+"/"); d = path.Dir(d) {
			dirs[d] = true
		}
		e, err := s.fileEntry(p, a)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	for d := range dirs {
		if from, ok := files[d]; ok {
			return nil, fmt.Errorf("%s: %s installs a file at %s, which other files need as a directory", t.Platform(), from, d)
		}
		out = append(out, layers.Entry{Name: strings.TrimPrefix(d, "/"), Type: tar.TypeDir, Mode: a.dirMode, UID: a.uid, GID: a.gid})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// fileEntry is the layer entry of a placed file: its inline data, or its
// store file, which must still have the size it was stored with.
func (s store) fileEntry(p placed, a entryAttrs) (layers.Entry, error) {
	e := layers.Entry{Name: strings.TrimPrefix(p.abs, "/"), Type: tar.TypeReg, Mode: a.mode(p.exec), UID: a.uid, GID: a.gid, Size: p.size}
	if p.store == "" {
		e.Data = p.data
		return e, nil
	}
	e.Source = s.path(p.store)
	fi, err := os.Stat(e.Source)
	if err != nil {
		return layers.Entry{}, fmt.Errorf("python file store: %w", err)
	}
	if fi.Size() != p.size {
		return layers.Entry{}, fmt.Errorf("python file store: %s has %d bytes, want %d (the cache was altered; delete %s)", e.Source, fi.Size(), p.size, s.files)
	}
	e.SourceMTime = fi.ModTime()
	return e, nil
}
