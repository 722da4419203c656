package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Scheme starts a reference to an image of gantry.yaml in a manifest, as
// ko:// does for ko: image: gantry://NAME.
const Scheme = "gantry://"

// Manifest is one YAML file (any number of documents) and the gantry://
// references in it: string scalars that are not mapping keys.
type Manifest struct {
	Path string
	Data []byte
	Refs []Ref
}

// Ref is one gantry://NAME scalar: where it is and its raw text's bytes.
type Ref struct {
	Line       int
	Name       string
	start, end int // Data[start:end] is the scalar as written, quotes and all
	quote      byte
}

// Replacement is one reference replaced, as --json lists it.
type Replacement struct {
	File  string `json:"file"`
	Line  int    `json:"line"`
	Name  string `json:"name"`
	Image string `json:"image"`
}

// ReadManifests reads files and directories (every *.yaml and *.yml under
// them, in lexical order) as manifests.
func ReadManifests(paths []string) ([]*Manifest, error) {
	var out []*Manifest
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("manifests %s: %w", p, err)
		}
		files := []string{p}
		if fi.IsDir() {
			files = nil
			err := filepath.WalkDir(p, func(f string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if ext := filepath.Ext(f); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
					files = append(files, f)
				}
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("manifests %s: %w", p, err)
			}
			if len(files) == 0 {
				return nil, fmt.Errorf("manifests %s: no *.yaml or *.yml files in the directory", p)
			}
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("manifests: %w", err)
			}
			m, err := ParseManifest(f, data)
			if err != nil {
				return nil, err
			}
			out = append(out, m)
		}
	}
	return out, nil
}

// ParseManifest finds the gantry:// references in data, a YAML stream
// read from name.
func ParseManifest(name string, data []byte) (*Manifest, error) {
	f, err := parser.ParseBytes(data, parser.ParseComments)
	if err != nil {
		var ye yaml.Error
		if errors.As(err, &ye) && ye.GetToken() != nil {
			return nil, fmt.Errorf("%s:%d: %s", name, ye.GetToken().Position.Line, oneLine.Replace(strings.TrimSpace(ye.GetMessage())))
		}
		return nil, fmt.Errorf("%s: %s", name, oneLine.Replace(err.Error()))
	}
	m := &Manifest{Path: name, Data: data}
	v := &refFinder{m: m, keys: map[ast.Node]bool{}, lines: lineStarts(data)}
	for _, d := range f.Docs {
		ast.Walk(v, d)
	}
	if v.err != nil {
		return nil, v.err
	}
	slices.SortFunc(m.Refs, func(a, b Ref) int { return a.start - b.start })
	return m, nil
}

// refFinder walks a document for gantry:// scalars.
type refFinder struct {
	m     *Manifest
	keys  map[ast.Node]bool
	lines []int
	err   error
}

func (v *refFinder) Visit(n ast.Node) ast.Visitor {
	if v.err != nil {
		return nil
	}
	switch x := n.(type) {
	case *ast.MappingValueNode:
		v.keys[x.Key] = true
	case *ast.StringNode:
		if !v.keys[n] && strings.HasPrefix(x.Value, Scheme) {
			v.err = v.add(x)
		}
	}
	return v
}

// add records s, finding its raw text at its line and (rune) column.
func (v *refFinder) add(s *ast.StringNode) error {
	pos := s.GetToken().Position
	name := strings.TrimPrefix(s.Value, Scheme)
	if name == "" {
		return fmt.Errorf("%s:%d: %q names no image; write gantry://NAME with a NAME of gantry.yaml", v.m.Path, pos.Line, s.Value)
	}
	start := -1
	if pos.Line >= 1 && pos.Line <= len(v.lines) {
		start = runeOffset(v.m.Data, v.lines[pos.Line-1], pos.Column-1)
	}
	if start < 0 || start >= len(v.m.Data) {
		return fmt.Errorf("%s:%d: cannot find %s in the line", v.m.Path, pos.Line, s.Value)
	}
	r := Ref{Line: pos.Line, Name: name, start: start}
	if q := v.m.Data[start]; q == '"' || q == '\'' {
		r.quote = q
	}
	raw := s.Value
	if r.quote != 0 {
		raw = string(r.quote) + raw + string(r.quote)
	}
	if !bytes.HasPrefix(v.m.Data[start:], []byte(raw)) {
		return fmt.Errorf("%s:%d: write %s on one line, without escapes, so that gantry can replace it", v.m.Path, pos.Line, s.Value)
	}
	r.end = start + len(raw)
	v.m.Refs = append(v.m.Refs, r)
	return nil
}

// lineStarts are the byte offsets where data's lines start.
func lineStarts(data []byte) []int {
	starts := []int{0}
	for i, b := range data {
		if b == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}

// runeOffset is the byte offset of the n-th rune from from.
func runeOffset(data []byte, from, n int) int {
	i := from
	for ; n > 0 && i < len(data); n-- {
		_, size := utf8.DecodeRune(data[i:])
		i += size
	}
	return i
}

// Names are the image names the manifests refer to, each once, in order.
func Names(ms []*Manifest) []string {
	var names []string
	for _, m := range ms {
		for _, r := range m.Refs {
			if !slices.Contains(names, r.Name) {
				names = append(names, r.Name)
			}
		}
	}
	return names
}

// CheckNames fails on the first reference to a name known does not hold,
// naming its file and line; config names the file the names come from.
func CheckNames(ms []*Manifest, known []string, config string) error {
	for _, m := range ms {
		for _, r := range m.Refs {
			if !slices.Contains(known, r.Name) {
				return fmt.Errorf("%s:%d: %s%s: %s has no image %q (it has %s)", m.Path, r.Line, Scheme, r.Name, config, r.Name, strings.Join(known, ", "))
			}
		}
	}
	return nil
}

// Resolve is the manifest with every reference replaced by images[name],
// every other byte as it was, and what it replaced.
func (m *Manifest) Resolve(images map[string]string) ([]byte, []Replacement, error) {
	var out bytes.Buffer
	var reps []Replacement
	last := 0
	for _, r := range m.Refs {
		ref, ok := images[r.Name]
		if !ok {
			return nil, nil, fmt.Errorf("%s:%d: %s%s was not built in this run", m.Path, r.Line, Scheme, r.Name)
		}
		out.Write(m.Data[last:r.start])
		if r.quote != 0 {
			out.WriteString(string(r.quote) + ref + string(r.quote))
		} else {
			out.WriteString(ref)
		}
		last = r.end
		reps = append(reps, Replacement{File: m.Path, Line: r.Line, Name: r.Name, Image: ref})
	}
	out.Write(m.Data[last:])
	return out.Bytes(), reps, nil
}

// WriteFile replaces the file at name with data atomically: a temporary
// file beside it, with its mode, renamed over it.
func WriteFile(name string, data []byte) error {
	if err := writeFile(name, data); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

func writeFile(name string, data []byte) (err error) {
	fi, err := os.Stat(name)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".gantry-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Chmod(fi.Mode().Perm()); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}
