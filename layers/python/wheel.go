package python

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// wheelArchive is an open wheel file.
type wheelArchive struct {
	zr       *zip.ReadCloser
	filename string
	name     wheelName
	distInfo string // "tfnative-1.0.0.dist-info"
	dataDir  string // "tfnative-1.0.0.data"
	files    map[string]*zip.File
	names    []string // of files, sorted
}

// smallFileLimit bounds the wheel metadata files read into memory.
const smallFileLimit = 16 << 20

// openWheel opens the wheel at p, published as filename, and checks its
// member names and its .dist-info directory.
func openWheel(p, filename string) (*wheelArchive, error) {
	wn, err := parseWheelName(filename)
	if err != nil {
		return nil, err
	}
	zr, err := zip.OpenReader(p)
	if err != nil {
		return nil, fmt.Errorf("%s: not a readable wheel (zip): %w", filename, err)
	}
	w := &wheelArchive{zr: zr, filename: filename, name: wn, files: map[string]*zip.File{}}
	infoDirs := map[string]bool{}
	for _, f := range zr.File {
		if err := checkMemberName(f.Name); err != nil {
			zr.Close()
			return nil, fmt.Errorf("%s: %w", filename, err)
		}
		top, _, _ := strings.Cut(f.Name, "/")
		if strings.HasSuffix(top, ".dist-info") && top != f.Name {
			infoDirs[top] = true
		}
		if strings.HasSuffix(f.Name, "/") {
			continue // a directory
		}
		mode := f.Mode()
		if !mode.IsRegular() {
			zr.Close()
			return nil, fmt.Errorf("%s: member %s is a %s; wheels hold regular files only", filename, f.Name, fileKind(mode))
		}
		if _, dup := w.files[f.Name]; dup {
			zr.Close()
			return nil, fmt.Errorf("%s: member %s appears twice", filename, f.Name)
		}
		w.files[f.Name] = f
		w.names = append(w.names, f.Name)
	}
	sort.Strings(w.names)
	if len(infoDirs) != 1 {
		zr.Close()
		return nil, fmt.Errorf("%s: has %d .dist-info directories, want exactly one", filename, len(infoDirs))
	}
	for d := range infoDirs {
		w.distInfo = d
	}
	stem := strings.TrimSuffix(w.distInfo, ".dist-info")
	if i := strings.LastIndexByte(stem, '-'); i < 0 || normalizeName(stem[:i]) != normalizeName(wn.Dist) {
		zr.Close()
		return nil, fmt.Errorf("%s: its %s does not belong to project %s", filename, w.distInfo, wn.Dist)
	}
	w.dataDir = stem + ".data"
	return w, nil
}

func (w *wheelArchive) Close() error { return w.zr.Close() }

func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m.IsDir():
		return "directory"
	}
	return "special file"
}

// checkMemberName refuses names that are absolute, climb with "..", or are
// not clean slash-separated UTF-8.
func checkMemberName(name string) error {
	trimmed := strings.TrimSuffix(name, "/")
	switch {
	case name == "" || trimmed == "":
		return errors.New("a member has an empty name")
	case !utf8.ValidString(name) || strings.ContainsAny(name, "\x00\\"):
		return fmt.Errorf("member %q has an invalid name (not UTF-8, or a NUL or backslash)", name)
	case strings.HasPrefix(name, "/"):
		return fmt.Errorf("member %s has an absolute path", name)
	}
	for _, part := range strings.Split(trimmed, "/") {
		if part == ".." {
			return fmt.Errorf("member %s climbs out of the wheel with ..", name)
		}
		if part == "" || part == "." {
			return fmt.Errorf("member %s is not a clean path", name)
		}
	}
	return nil
}

// read returns the contents of a small member, or false if there is none.
func (w *wheelArchive) read(name string) ([]byte, bool, error) {
	f, ok := w.files[name]
	if !ok {
		return nil, false, nil
	}
	if f.UncompressedSize64 > smallFileLimit {
		return nil, false, fmt.Errorf("%s: %s is larger than %d bytes", w.filename, name, smallFileLimit)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, false, fmt.Errorf("%s: opening %s: %w", w.filename, name, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, smallFileLimit+1))
	if err != nil {
		return nil, false, fmt.Errorf("%s: reading %s: %w", w.filename, name, err)
	}
	return data, true, nil
}

// headers parses an RFC 822-style metadata file (METADATA, WHEEL) up to its
// body; repeated fields keep every value.
func headers(data []byte) map[string][]string {
	out := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), smallFileLimit)
	last := ""
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			break
		}
		if (line[0] == ' ' || line[0] == '\t') && last != "" {
			vs := out[last]
			vs[len(vs)-1] += "\n" + strings.TrimSpace(line)
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		last = strings.ToLower(strings.TrimSpace(k))
		out[last] = append(out[last], strings.TrimSpace(v))
	}
	return out
}

func first(h map[string][]string, key string) string {
	if vs := h[strings.ToLower(key)]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// metadata reads the wheel's METADATA fields.
func (w *wheelArchive) metadata() (map[string][]string, error) {
	data, ok, err := w.read(w.distInfo + "/METADATA")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s: no %s/METADATA", w.filename, w.distInfo)
	}
	return headers(data), nil
}

// recordEntry is one row of a RECORD file.
type recordEntry struct {
	alg, digest string // digest: the raw bytes
	size        int64  // -1 when not given
}

// parseRecord reads a RECORD (CSV: path, algorithm=urlsafe-b64 digest, size).
func parseRecord(filename string, data []byte) (map[string]recordEntry, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	out := map[string]recordEntry{}
	for line := 1; ; line++ {
		row, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: RECORD: %w", filename, err)
		}
		if len(row) == 1 && row[0] == "" {
			continue
		}
		if len(row) != 3 {
			return nil, fmt.Errorf("%s: RECORD line %d has %d fields, want 3", filename, line, len(row))
		}
		e := recordEntry{size: -1}
		if row[1] != "" {
			alg, enc, ok := strings.Cut(row[1], "=")
			if !ok {
				return nil, fmt.Errorf("%s: RECORD line %d: hash %q is not ALGORITHM=DIGEST", filename, line, row[1])
			}
			digest, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(enc, "="))
			if err != nil {
				return nil, fmt.Errorf("%s: RECORD line %d: hash of %s: %w", filename, line, row[0], err)
			}
			e.alg, e.digest = alg, string(digest)
		}
		if row[2] != "" {
			n, err := strconv.ParseInt(row[2], 10, 64)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("%s: RECORD line %d: size %q of %s is not a number", filename, line, row[2], row[0])
			}
			e.size = n
		}
		if _, dup := out[row[0]]; dup {
			return nil, fmt.Errorf("%s: RECORD lists %s twice", filename, row[0])
		}
		out[row[0]] = e
	}
}

// recordHash is a RECORD hash field: sha256=<urlsafe base64, no padding>.
func recordHash(sum []byte) string {
	return "sha256=" + base64.RawURLEncoding.EncodeToString(sum)
}

// relPath is target relative to the directory from (both absolute,
// slash-separated, clean): "../../../bin/x".
func relPath(from, target string) string {
	f := strings.Split(strings.Trim(from, "/"), "/")
	t := strings.Split(strings.Trim(target, "/"), "/")
	if from == "/" {
		f = nil
	}
	i := 0
	for i < len(f) && i < len(t) && f[i] == t[i] {
		i++
	}
	parts := make([]string, 0, len(f)-i+len(t)-i)
	for range f[i:] {
		parts = append(parts, "..")
	}
	parts = append(parts, t[i:]...)
	return path.Join(parts...)
}
