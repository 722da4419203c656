package debian

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
)

// Field is one field of a control paragraph. Value is what follows the
// colon with surrounding blanks removed; a multi-line value keeps its
// continuation lines as written (each after a "\n", with its leading blank).
type Field struct {
	Name, Value string
}

// Paragraph is one stanza of a deb822 file (Packages, status, a .deb's
// control, Release, .sources), its fields in their order.
type Paragraph struct {
	Fields []Field
	Line   int // where it starts in its file (1-based)
}

// Get is the value of the field name (case-insensitive), or "".
func (p *Paragraph) Get(name string) string {
	v, _ := p.Lookup(name)
	return v
}

// Lookup is Get that also says whether the field is there.
func (p *Paragraph) Lookup(name string) (string, bool) {
	for _, f := range p.Fields {
		if strings.EqualFold(f.Name, name) {
			return f.Value, true
		}
	}
	return "", false
}

// Set replaces the field name's value, or adds the field after the field
// named after (at the end when after is "" or absent).
func (p *Paragraph) Set(name, value, after string) {
	for i, f := range p.Fields {
		if strings.EqualFold(f.Name, name) {
			p.Fields[i].Value = value
			return
		}
	}
	at := len(p.Fields)
	for i, f := range p.Fields {
		if after != "" && strings.EqualFold(f.Name, after) {
			at = i + 1
		}
	}
	p.Fields = append(p.Fields[:at], append([]Field{{name, value}}, p.Fields[at:]...)...)
}

// Insert adds the field name before the field named before (at the end
// when that is absent), replacing a field of that name.
func (p *Paragraph) Insert(name, value, before string) {
	p.Delete(name)
	for i, f := range p.Fields {
		if strings.EqualFold(f.Name, before) {
			p.Fields = append(p.Fields[:i], append([]Field{{name, value}}, p.Fields[i:]...)...)
			return
		}
	}
	p.Fields = append(p.Fields, Field{name, value})
}

// Delete removes the field name.
func (p *Paragraph) Delete(name string) {
	out := p.Fields[:0]
	for _, f := range p.Fields {
		if !strings.EqualFold(f.Name, name) {
			out = append(out, f)
		}
	}
	p.Fields = out
}

// WriteTo writes the paragraph as dpkg does, without the blank line that
// ends it.
func (p *Paragraph) WriteTo(w io.Writer) (int64, error) {
	var b bytes.Buffer
	for _, f := range p.Fields {
		b.WriteString(f.Name)
		b.WriteByte(':')
		if f.Value != "" && f.Value[0] != '\n' {
			b.WriteByte(' ')
		}
		b.WriteString(f.Value)
		b.WriteByte('\n')
	}
	n, err := w.Write(b.Bytes())
	return int64(n), err
}

// ParseControl reads the paragraphs of a deb822 file strictly: every line
// is a field ("Name: value"), a continuation (starting with a space or
// tab) or blank; a field twice in one paragraph is an error. comments
// allows lines starting with '#' (sources files have them; archive indexes
// and dpkg's database do not). name is used in errors.
func ParseControl(r io.Reader, name string, comments bool) ([]Paragraph, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var (
		out  []Paragraph
		cur  *Paragraph
		line int
	)
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.TrimSpace(text) == "":
			cur = nil
		case comments && text[0] == '#':
		case text[0] == ' ' || text[0] == '\t':
			if cur == nil || len(cur.Fields) == 0 {
				return nil, fmt.Errorf("%s:%d: a continuation line with no field before it", name, line)
			}
			f := &cur.Fields[len(cur.Fields)-1]
			f.Value += "\n" + text
		default:
			f, err := parseField(text)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", name, line, err)
			}
			if cur == nil {
				out = append(out, Paragraph{Line: line})
				cur = &out[len(out)-1]
			}
			if _, dup := cur.Lookup(f.Name); dup {
				return nil, fmt.Errorf("%s:%d: field %s appears twice in one paragraph", name, line, f.Name)
			}
			cur.Fields = append(cur.Fields, f)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return out, nil
}

func parseField(text string) (Field, error) {
	i := strings.IndexByte(text, ':')
	if i <= 0 {
		return Field{}, fmt.Errorf("%q is not a field (Name: value)", clip(text))
	}
	name := text[:i]
	if name[0] == '-' || name[0] == '#' || strings.ContainsAny(name, " \t") {
		return Field{}, fmt.Errorf("%q is not a field name", clip(name))
	}
	return Field{Name: name, Value: strings.TrimSpace(text[i+1:])}, nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// Lines is a multi-line value's lines after the first, with their leading
// blank removed ("." lines are empty lines).
func Lines(value string) []string {
	parts := strings.Split(value, "\n")
	var out []string
	for _, l := range parts[1:] {
		l = strings.TrimSpace(l)
		if l == "." {
			l = ""
		}
		out = append(out, l)
	}
	return out
}
