package python

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
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

// storeManifest is what a verified wheel holds, so that a rebuild reads
// no zip.
type storeManifest struct {
	Format   int           `json:"format"`
	DistInfo string        `json:"distInfo"`
	DataDir  string        `json:"dataDir"`
	Name     string        `json:"name"` // METADATA Name
	Members  []storeMember `json:"members"`
}

type storeMember struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Exec   bool   `json:"exec,omitempty"`
}

const manifestFormat = 1

// store is the content-addressed file store under the install cache.
type store struct{ files, unpacked string }

func openStore(cache string) (store, error) {
	if cache == "" {
		return store{}, errors.New("python install: no cache directory")
	}
	s := store{files: filepath.Join(cache, "python", "files"), unpacked: filepath.Join(cache, "python", "unpacked")}
	for _, d := range []string{s.files, s.unpacked} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return store{}, fmt.Errorf("creating python file store: %w", err)
		}
	}
	return s, nil
}

func (s store) path(sha string) string { return filepath.Join(s.files, sha) }

// put copies r into the store, returning its sha256 and size; extra (if
// not nil) sees the same bytes. At most limit bytes are read.
func (s store) put(ctx context.Context, r io.Reader, limit int64, extra hash.Hash) (string, int64, error) {
	tmp, err := os.CreateTemp(s.files, ".tmp-*")
	if err != nil {
		return "", 0, fmt.Errorf("creating file in python file store: %w", err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	sinks := []io.Writer{tmp, h}
	if extra != nil {
		sinks = append(sinks, extra)
	}
	n, err := io.Copy(io.MultiWriter(sinks...), ctxReader{ctx, io.LimitReader(r, limit)})
	if err != nil {
		return "", 0, err
	}
	if err := tmp.Close(); err != nil {
		return "", 0, fmt.Errorf("writing python file store: %w", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if fi, err := os.Stat(s.path(sum)); err == nil && fi.Size() == n {
		return sum, n, nil // stored already: keep its mtime
	}
	if err := os.Rename(tmp.Name(), s.path(sum)); err != nil {
		return "", 0, fmt.Errorf("storing file in python file store: %w", err)
	}
	tmp = nil
	return sum, n, nil
}

// unpack returns what the wheel holds, extracting and verifying it against
// its RECORD unless the store has it from an earlier build.
func (s store) unpack(ctx context.Context, w Wheel) (*storeManifest, error) {
	mpath := filepath.Join(s.unpacked, w.SHA256+".json")
	if data, err := os.ReadFile(mpath); err == nil {
		var m storeManifest
		if json.Unmarshal(data, &m) == nil && m.Format == manifestFormat && s.complete(&m) {
			return &m, nil
		}
	}
	m, err := s.extract(ctx, w)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(s.unpacked, ".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("creating python store manifest: %w", err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("writing python store manifest: %w", err)
	}
	if err := os.Rename(tmp.Name(), mpath); err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("storing python store manifest: %w", err)
	}
	return m, nil
}

// complete reports whether every member's content is in the store.
func (s store) complete(m *storeManifest) bool {
	for _, mem := range m.Members {
		fi, err := os.Stat(s.path(mem.SHA256))
		if err != nil || fi.Size() != mem.Size {
			return false
		}
	}
	return true
}

func newHash(alg string) hash.Hash {
	switch alg {
	case "sha256":
		return sha256.New()
	case "sha384":
		return sha512.New384()
	case "sha512":
		return sha512.New()
	}
	return nil
}

// extract copies every member of w into the store, checking each against
// the wheel's RECORD: same set of files, same hashes and sizes.
func (s store) extract(ctx context.Context, w Wheel) (*storeManifest, error) {
	wa, err := openWheel(w.Path, w.Filename)
	if err != nil {
		return nil, err
	}
	defer wa.Close()
	fn := w.Filename

	wheelMeta, ok, err := wa.read(wa.distInfo + "/WHEEL")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s: no %s/WHEEL", fn, wa.distInfo)
	}
	wv := first(headers(wheelMeta), "Wheel-Version")
	if major, _, _ := strings.Cut(wv, "."); major != "1" {
		return nil, fmt.Errorf("%s: Wheel-Version %q is not supported (want 1.x)", fn, wv)
	}
	meta, err := wa.metadata()
	if err != nil {
		return nil, err
	}
	if n := first(meta, "Name"); normalizeName(n) != normalizeName(wa.name.Dist) {
		return nil, fmt.Errorf("%s: METADATA names project %q", fn, n)
	}
	if v := first(meta, "Version"); !sameVersion(v, wa.name.Version) {
		return nil, fmt.Errorf("%s: METADATA has version %q", fn, v)
	}

	recordName := wa.distInfo + "/RECORD"
	recordData, ok, err := wa.read(recordName)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s: no %s", fn, recordName)
	}
	record, err := parseRecord(fn, recordData)
	if err != nil {
		return nil, err
	}
	for name := range record {
		if _, ok := wa.files[name]; !ok && name != recordName && !strings.HasSuffix(name, "/") {
			return nil, fmt.Errorf("%s: RECORD lists %s, which the wheel does not have", fn, name)
		}
	}

	m := &storeManifest{Format: manifestFormat, DistInfo: wa.distInfo, DataDir: wa.dataDir, Name: first(meta, "Name")}
	for _, name := range wa.names {
		if name == recordName || name == recordName+".jws" || name == recordName+".p7s" {
			continue // RECORD is rewritten; its signatures no longer apply
		}
		rec, ok := record[name]
		if !ok {
			return nil, fmt.Errorf("%s: member %s is not in RECORD (the wheel was altered after it was built)", fn, name)
		}
		var extra hash.Hash
		switch {
		case rec.alg == "" && strings.HasSuffix(name, ".pyc"):
			// PEP 376 allows .pyc files without a hash
		case rec.alg == "":
			return nil, fmt.Errorf("%s: RECORD has no hash for %s", fn, name)
		case rec.alg != "sha256":
			if extra = newHash(rec.alg); extra == nil {
				return nil, fmt.Errorf("%s: RECORD hashes %s with %s; want sha256, sha384 or sha512", fn, name, rec.alg)
			}
		}
		f := wa.files[name]
		limit := int64(f.UncompressedSize64)
		if rec.size >= 0 {
			limit = rec.size
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("%s: opening %s: %w", fn, name, err)
		}
		sum, n, err := s.put(ctx, rc, limit+1, extra)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: extracting %s: %w", fn, name, err)
		}
		if rec.size >= 0 && n != rec.size {
			return nil, fmt.Errorf("%s: %s has %d bytes, RECORD says %d (the wheel was altered after it was built)", fn, name, n, rec.size)
		}
		got := mustHex(sum)
		if extra != nil {
			got = string(extra.Sum(nil))
		}
		if rec.alg != "" && got != rec.digest {
			return nil, fmt.Errorf("%s: %s does not match its RECORD hash (the wheel was altered after it was built)", fn, name)
		}
		m.Members = append(m.Members, storeMember{Name: name, SHA256: sum, Size: n, Exec: f.Mode()&0o111 != 0})
	}
	return m, nil
}

// fileSHA256 is the hex sha256 of the file at p.
func fileSHA256(ctx context.Context, p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("reading wheel: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, ctxReader{ctx, f}); err != nil {
		return "", fmt.Errorf("reading wheel: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func mustHex(s string) string {
	b, _ := hex.DecodeString(s)
	return string(b)
}

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

var entryPointRE = regexp.MustCompile(`^([\p{L}\p{N}_.]+)\s*:\s*([\p{L}\p{N}_.]+)\s*(\[.*\])?\s*$`)

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
	name := m.Name
	headersRoot := path.Join(t.Prefix, "include", "python"+t.Python.String())
	var out []placed
	var entryPoints []byte
	for _, mem := range m.Members {
		if mem.Name == m.DistInfo+"/INSTALLER" {
			continue // replaced by gantry's
		}
		if mem.Name == m.DistInfo+"/entry_points.txt" {
			data, err := os.ReadFile(s.path(mem.SHA256))
			if err != nil {
				return nil, fmt.Errorf("%s: reading entry_points.txt from the store: %w", fn, err)
			}
			entryPoints = data
		}
		p := placed{from: fn + ": " + mem.Name, store: mem.SHA256, size: mem.Size, sum: mem.SHA256, exec: mem.Exec}
		rest, inData := strings.CutPrefix(mem.Name, m.DataDir+"/")
		if !inData {
			p.root, p.abs = t.SiteDir, path.Join(t.SiteDir, mem.Name)
		} else {
			scheme, sub, ok := strings.Cut(rest, "/")
			if !ok {
				return nil, fmt.Errorf("%s: %s is not inside a scheme directory of %s", fn, mem.Name, m.DataDir)
			}
			switch scheme {
			case "purelib", "platlib":
				p.root, p.abs = t.SiteDir, path.Join(t.SiteDir, sub)
			case "scripts":
				p.root, p.abs, p.exec = t.ScriptsDir, path.Join(t.ScriptsDir, sub), true
				if err := rewriteShebang(ctx, s, &p, t.Interpreter); err != nil {
					return nil, fmt.Errorf("%s: %s: %w", fn, mem.Name, err)
				}
			case "headers":
				p.root = headersRoot
				p.abs = path.Join(headersRoot, name, sub)
			case "data":
				p.root, p.abs = t.Prefix, path.Join(t.Prefix, sub)
				if top, _, nested := strings.Cut(sub, "/"); nested {
					// <prefix>/share, /etc, ... are the base's own
					p.root = path.Join(t.Prefix, top)
				}
			default:
				return nil, fmt.Errorf("%s: %s is in %s/%s, not one of purelib, platlib, scripts, headers, data", fn, mem.Name, m.DataDir, scheme)
			}
		}
		if !strings.HasPrefix(p.abs, p.root+"/") && p.root != "/" {
			return nil, fmt.Errorf("%s: %s would be installed at %s, outside %s", fn, mem.Name, p.abs, p.root)
		}
		out = append(out, p)
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

	// RECORD: every file written, relative to the site directory
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	rows := make([][]string, 0, len(out)+1)
	for _, p := range out {
		sum, _ := hex.DecodeString(p.sum)
		rows = append(rows, []string{relPath(t.SiteDir, p.abs), recordHash(sum), strconv.FormatInt(p.size, 10)})
	}
	recordPath := path.Join(distInfo, "RECORD")
	rows = append(rows, []string{relPath(t.SiteDir, recordPath), "", ""})
	sort.Slice(rows, func(i, j int) bool { return rows[i][0] < rows[j][0] })
	if err := cw.WriteAll(rows); err != nil {
		return nil, fmt.Errorf("%s: writing RECORD: %w", fn, err)
	}
	out = append(out, inline(recordPath, t.SiteDir, fn+": RECORD", buf.Bytes(), false))
	return out, nil
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

// shebang is the #! line pypa/installer writes for a launcher: a plain one
// when the interpreter has no spaces and fits in 127 bytes, else a /bin/sh
// line that execs it.
func shebang(interpreter string) string {
	if !strings.Contains(interpreter, " ") && len(interpreter)+3 <= 127 {
		return "#!" + interpreter + "\n"
	}
	quoted := "'" + strings.ReplaceAll(interpreter, "'", `'"'"'`) + "'"
	return "#!/bin/sh\n'''exec' " + quoted + " \"$0\" \"$@\"\n' '''\n"
}

// launcherScript is pypa/installer's script template.
const launcherScript = `# -*- coding: utf-8 -*-
import re
import sys
from %s import %s
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\.pyw|\.exe)?$", "", sys.argv[0])
    sys.exit(%s())
`

// launchers makes the scripts of entry_points.txt's [console_scripts] and
// [gui_scripts].
func launchers(fn string, text []byte, t Target) ([]placed, error) {
	var out []placed
	section := ""
	seen := map[string]bool{}
	for i, line := range strings.Split(string(text), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = strings.TrimSpace(line[1 : len(line)-1])
			continue
		}
		if section != "console_scripts" && section != "gui_scripts" {
			continue
		}
		where := fmt.Sprintf("%s: entry_points.txt line %d", fn, i+1)
		name, value, ok := strings.Cut(line, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" {
			return nil, fmt.Errorf("%s: %q is not NAME = MODULE:FUNCTION", where, line)
		}
		if name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
			return nil, fmt.Errorf("%s: script name %q is not a file name", where, name)
		}
		if seen[name] {
			return nil, fmt.Errorf("%s: script %s is defined twice", where, name)
		}
		seen[name] = true
		m := entryPointRE.FindStringSubmatch(value)
		if m == nil {
			return nil, fmt.Errorf("%s: %q is not MODULE:FUNCTION", where, value)
		}
		module, attr := m[1], m[2]
		importName, _, _ := strings.Cut(attr, ".")
		body := shebang(t.Interpreter) + fmt.Sprintf(launcherScript, module, importName, attr)
		out = append(out, inline(path.Join(t.ScriptsDir, name), t.ScriptsDir, fn+": "+section+" "+name, []byte(body), true))
	}
	return out, nil
}

// entries turns placed files into sorted layer entries with the
// directories they need, refusing two files at one path.
func entries(s store, all []placed, t Target, o InstallOptions) ([]layers.Entry, error) {
	var uid, gid int
	if o.Owner != nil {
		uid, gid = o.Owner.UID, o.Owner.GID
	}
	dirMode := int64(0o755)
	if o.DirMode != 0 {
		dirMode = int64(o.DirMode) & 0o7777
	}
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
		mode := int64(0o644)
		if p.exec {
			mode = 0o755
		}
		if o.FileMode != 0 {
			mode = int64(o.FileMode) & 0o7777
			if p.exec {
				mode |= (mode & 0o444) >> 2
			}
		}
		e := layers.Entry{Name: strings.TrimPrefix(p.abs, "/"), Type: tar.TypeReg, Mode: mode, UID: uid, GID: gid, Size: p.size}
		if p.store != "" {
			e.Source = s.path(p.store)
			fi, err := os.Stat(e.Source)
			if err != nil {
				return nil, fmt.Errorf("python file store: %w", err)
			}
			if fi.Size() != p.size {
				return nil, fmt.Errorf("python file store: %s has %d bytes, want %d (the cache was altered; delete %s)", e.Source, fi.Size(), p.size, s.files)
			}
			e.SourceMTime = fi.ModTime()
		} else {
			e.Data = p.data
		}
		out = append(out, e)
	}
	for d := range dirs {
		if from, ok := files[d]; ok {
			return nil, fmt.Errorf("%s: %s installs a file at %s, which other files need as a directory", t.Platform(), from, d)
		}
		out = append(out, layers.Entry{Name: strings.TrimPrefix(d, "/"), Type: tar.TypeDir, Mode: dirMode, UID: uid, GID: gid})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
