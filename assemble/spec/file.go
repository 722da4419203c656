package spec

// gantry.yaml: its types, strict decoding with file:line errors, and ${VAR}
// expansion in the decoded values.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// File is gantry.yaml.
type File struct {
	// Compression applies to every image unless an image sets its own.
	Compression      string `yaml:"compression"`
	CompressionLevel int    `yaml:"compressionLevel"`
	// Mirrors pulls bases of a registry through a mirror, e.g.
	// docker.io: mirror.local:5000/dockerhub.
	Mirrors map[string]string `yaml:"mirrors"`
	Images  []ImageConfig     `yaml:"images"`
}

// ImageConfig is one image in gantry.yaml.
type ImageConfig struct {
	Name             string             `yaml:"name"`
	Base             string             `yaml:"base"`
	Platforms        []string           `yaml:"platforms"`
	Layers           []LayerConfig      `yaml:"layers"`
	User             *UserConfig        `yaml:"user"`
	Env              yaml.MapSlice      `yaml:"env"`
	Entrypoint       []string           `yaml:"entrypoint"`
	Cmd              []string           `yaml:"cmd"`
	Workdir          string             `yaml:"workdir"`
	Labels           map[string]string  `yaml:"labels"`
	Annotations      map[string]string  `yaml:"annotations"`
	Ports            []any              `yaml:"ports"`
	Volumes          []string           `yaml:"volumes"`
	StopSignal       string             `yaml:"stopSignal"`
	Healthcheck      *HealthcheckConfig `yaml:"healthcheck"`
	Tags             []string           `yaml:"tags"`
	MaxSize          string             `yaml:"maxSize"`
	Compression      string             `yaml:"compression"`
	CompressionLevel int                `yaml:"compressionLevel"`
	// RuntimeEnv declares settings (secrets above all) that deployers must
	// provide at run time; they are recorded as a label, never given values.
	RuntimeEnv []RuntimeEnvConfig `yaml:"runtimeEnv"`
	// Policy relaxations: each check is on unless relaxed here.
	AllowSecrets       []string `yaml:"allowSecrets"`
	AllowRoot          bool     `yaml:"allowRoot"`
	AllowWorldWritable bool     `yaml:"allowWorldWritable"`
	AllowSetuid        bool     `yaml:"allowSetuid"`
	MaxLayers          int      `yaml:"maxLayers"`
}

// RuntimeEnvConfig is one setting a container needs at run time.
type RuntimeEnvConfig struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Required    *bool  `yaml:"required"`
}

// LayerConfig is one new layer: a directory or files, where they go, and
// who owns them.
type LayerConfig struct {
	Name        string       `yaml:"name"`
	From        string       `yaml:"from"`
	To          string       `yaml:"to"`
	Files       []FileConfig `yaml:"files"`
	Owner       string       `yaml:"owner"`
	FileMode    string       `yaml:"fileMode"`
	DirMode     string       `yaml:"dirMode"`
	Include     []string     `yaml:"include"`
	Exclude     []string     `yaml:"exclude"`
	Precompress bool         `yaml:"precompress"`
	// FollowSymlinks copies what symlinks inside the source point to;
	// symlinks pointing outside it are kept as symlinks.
	FollowSymlinks bool `yaml:"followSymlinks"`
	// AllowSecretFiles lets files that look like secrets (.env, keys)
	// through when these patterns match them.
	AllowSecretFiles []string `yaml:"allowSecretFiles"`
}

// FileConfig is a single file of a layer.
type FileConfig struct {
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

// UserConfig is the account to create and run as.
type UserConfig struct {
	Name  string   `yaml:"name"`
	UID   *int     `yaml:"uid"`
	Group string   `yaml:"group"`
	GID   *int     `yaml:"gid"`
	Home  string   `yaml:"home"`
	Shell string   `yaml:"shell"`
	Owns  []string `yaml:"owns"`
}

// HealthcheckConfig is Docker's HEALTHCHECK. Test is a string (shell form)
// or a list (exec form, or starting with CMD / CMD-SHELL / NONE).
type HealthcheckConfig struct {
	Test        any    `yaml:"test"`
	Interval    string `yaml:"interval"`
	Timeout     string `yaml:"timeout"`
	StartPeriod string `yaml:"startPeriod"`
	Retries     *int   `yaml:"retries"`
}

// ConfigError is a problem in the config file, with where it is.
type ConfigError struct {
	File string
	Line int
	Path string // e.g. images[0].layers[1].from
	Msg  string
}

func (e *ConfigError) Error() string {
	if e.File == "" && e.Path != "" { // a field set on the command line
		return oneLine.Replace(fmt.Sprintf("%s: %s", e.Path, e.Msg))
	}
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Path != "" {
		return oneLine.Replace(fmt.Sprintf("%s: %s: %s", loc, e.Path, e.Msg))
	}
	return oneLine.Replace(fmt.Sprintf("%s: %s", loc, e.Msg))
}

// oneLine escapes line breaks, which a path or value in the file may hold,
// so that an error is always one line.
var oneLine = strings.NewReplacer("\n", `\n`, "\r", `\r`)

// configSource is a decoded config file and what is needed to point at its
// lines.
type configSource struct {
	name string
	dir  string
	ast  *ast.File
}

func (s *configSource) errorf(p, format string, args ...any) *ConfigError {
	return &ConfigError{File: s.name, Line: s.line(p), Path: p, Msg: fmt.Sprintf(format, args...)}
}

// line finds the line of a path such as images[0].layers[1].from, or of its
// nearest ancestor present in the file.
func (s *configSource) line(p string) int {
	if s.ast == nil {
		return 0
	}
	for p != "" {
		yp, err := yaml.PathString("$." + p)
		if err == nil {
			if n, err := yp.FilterFile(s.ast); err == nil && n != nil {
				return n.GetToken().Position.Line
			}
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

// LoadFile reads, expands and strictly decodes a config file.
func LoadFile(name string, getenv func(string) (string, bool)) (*File, *configSource, error) {
	raw, err := os.ReadFile(name)
	if err != nil {
		return nil, nil, fmt.Errorf("reading config: %w", err)
	}
	src := &configSource{name: name, dir: filepath.Dir(name)}
	src.ast = parseAST(raw)
	var file File
	if err := decodeStrict(raw, &file); err != nil && !errors.Is(err, io.EOF) { // EOF: an empty file, reported as having no images
		var ye yaml.Error
		if errors.As(err, &ye) && ye.GetToken() != nil {
			msg := strings.TrimSpace(ye.GetMessage())
			return nil, nil, &ConfigError{File: name, Line: ye.GetToken().Position.Line, Msg: msg + hint(msg)}
		}
		return nil, nil, &ConfigError{File: name, Msg: strings.ReplaceAll(err.Error(), "\n", " ")}
	}
	// Variables are expanded in the decoded string values, never in the
	// text: comments are left alone, and a value holding ": " or a quote
	// cannot change the file's structure.
	if err := src.expand(reflect.ValueOf(&file).Elem(), "", getenv); err != nil {
		return nil, nil, err
	}
	return &file, src, nil
}

// expand replaces ${VAR} in every string held by v (at YAML path p).
func (src *configSource) expand(v reflect.Value, p string, getenv func(string) (string, bool)) error {
	str := func(s string) (string, error) {
		out, err := expandEnv([]byte(s), getenv)
		if err != nil {
			var ce *ConfigError
			if errors.As(err, &ce) {
				return "", src.errorf(p, "%s", ce.Msg)
			}
			return "", err
		}
		return string(out), nil
	}
	switch v.Kind() {
	case reflect.String:
		out, err := str(v.String())
		if err != nil {
			return err
		}
		v.SetString(out)
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		if v.Kind() == reflect.Interface && v.Elem().Kind() == reflect.String {
			out, err := str(v.Elem().String())
			if err != nil {
				return err
			}
			v.Set(reflect.ValueOf(out))
			return nil
		}
		if v.Kind() == reflect.Interface {
			// a list or map inside an interface: expand a settable copy
			c := reflect.New(v.Elem().Type()).Elem()
			c.Set(v.Elem())
			if err := src.expand(c, p, getenv); err != nil {
				return err
			}
			v.Set(c)
			return nil
		}
		return src.expand(v.Elem(), p, getenv)
	case reflect.Struct:
		if item, ok := v.Addr().Interface().(*yaml.MapItem); ok {
			return src.expand(reflect.ValueOf(&item.Value).Elem(), joinPath(p, fmt.Sprint(item.Key)), getenv)
		}
		t := v.Type()
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			if name == "" || !t.Field(i).IsExported() {
				continue
			}
			if err := src.expand(v.Field(i), joinPath(p, name), getenv); err != nil {
				return err
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			if err := src.expand(v.Index(i), fmt.Sprintf("%s[%d]", p, i), getenv); err != nil {
				return err
			}
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			if err := src.expand(e, joinPath(p, fmt.Sprint(k.Interface())), getenv); err != nil {
				return err
			}
			v.SetMapIndex(k, e)
		}
	}
	return nil
}

func joinPath(p, k string) string {
	if p == "" {
		return k
	}
	return p + "." + k
}

// parseAST parses b for line lookups (nil if it does not parse).
func parseAST(b []byte) (f *ast.File) {
	defer func() {
		if recover() != nil {
			f = nil
		}
	}()
	f, err := parser.ParseBytes(b, 0)
	if err != nil {
		return nil
	}
	return f
}

// decodeStrict decodes YAML into f, rejecting unknown fields. The decoder
// panics on some malformed input, such as a tag on a scalar where a list
// belongs (goccy/go-yaml#735): that is an error in the file, not a crash.
func decodeStrict(b []byte, f *File) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("not a valid gantry.yaml (the YAML decoder failed: %v)", r)
		}
	}()
	return yaml.NewDecoder(bytes.NewReader(b), yaml.DisallowUnknownField(), yaml.UseOrderedMap()).Decode(f)
}

func hint(msg string) string {
	if strings.Contains(msg, "unknown field") {
		return " (see the config reference in README.md)"
	}
	return ""
}

// expandEnv replaces ${VAR} and ${VAR:-default} with the environment's
// values; $$ is a literal $. A bare $VAR is left alone (shell commands in
// healthchecks use it). An unset ${VAR} without a default is an error.
func expandEnv(in []byte, getenv func(string) (string, bool)) ([]byte, error) {
	var out bytes.Buffer
	line := 1
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c == '\n' {
			line++
		}
		if c != '$' || i+1 >= len(in) {
			out.WriteByte(c)
			continue
		}
		switch in[i+1] {
		case '$':
			out.WriteByte('$')
			i++
			continue
		case '{':
		default:
			out.WriteByte(c)
			continue
		}
		end := bytes.IndexByte(in[i:], '}')
		if end < 0 || bytes.IndexByte(in[i:i+end], '\n') >= 0 {
			return nil, &ConfigError{Line: line, Msg: "unterminated ${ in variable reference"}
		}
		expr := string(in[i+2 : i+end])
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validVarName(name) {
			return nil, &ConfigError{Line: line, Msg: fmt.Sprintf("${%s}: not a variable name (write $${ for a literal ${)", expr)}
		}
		v, ok := getenv(name)
		switch {
		case ok && (v != "" || !hasDef):
			out.WriteString(v)
		case hasDef:
			out.WriteString(def)
		default:
			return nil, &ConfigError{Line: line, Msg: fmt.Sprintf("${%s} is not set; set it in the environment or write ${%s:-default}", name, name)}
		}
		i += end
	}
	return out.Bytes(), nil
}

func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9' {
			continue
		}
		return false
	}
	return true
}

// Errorf reports a problem with the field at path p, with its line.
func (s *configSource) Errorf(p, format string, args ...any) error {
	return s.errorf(p, format, args...)
}

// normalize puts back the file's own text for numbers and booleans the
// decoder typed before they reached string fields, so the validator sees
// what was written.
func (src *configSource) normalize(f *File) {
	for i := range f.Images {
		ic := &f.Images[i]
		p := fmt.Sprintf("images[%d]", i)
		ic.Entrypoint = src.seqText(p+".entrypoint", ic.Entrypoint)
		ic.Cmd = src.seqText(p+".cmd", ic.Cmd)
		ic.Tags = src.seqText(p+".tags", ic.Tags)
		ic.Labels = src.mapText(p+".labels", ic.Labels)
		ic.Annotations = src.mapText(p+".annotations", ic.Annotations)
		for j, kv := range ic.Env {
			switch kv.Value.(type) {
			case nil, string, []any, yaml.MapSlice, map[string]any:
			default:
				ic.Env[j].Value = src.scalarText(src.mapEntry(p+".env", fmt.Sprint(kv.Key)), fmt.Sprint(kv.Value))
			}
		}
		if hc := ic.Healthcheck; hc != nil {
			if args, ok := hc.Test.([]any); ok {
				out := make([]any, len(args))
				for j, a := range args {
					out[j] = src.scalarText(src.node(fmt.Sprintf("%s.healthcheck.test[%d]", p, j)), fmt.Sprint(a))
				}
				hc.Test = out
			}
		}
	}
}

// node returns the node at a path such as images[0].cmd[1], or nil.
func (src *configSource) node(p string) ast.Node {
	if src.ast == nil {
		return nil
	}
	yp, err := yaml.PathString("$." + p)
	if err != nil {
		return nil
	}
	n, err := yp.FilterFile(src.ast)
	if err != nil {
		return nil
	}
	return n
}

// mapEntry returns the value node of key in the mapping at p, or nil.
func (src *configSource) mapEntry(p, key string) ast.Node {
	m, ok := src.node(p).(*ast.MappingNode)
	if !ok {
		return nil
	}
	for _, kv := range m.Values {
		if kv.Key != nil && kv.Key.GetToken() != nil && kv.Key.GetToken().Value == key {
			return kv.Value
		}
	}
	return nil
}

// scalarText returns n's source text when it is a number or boolean and
// decoded (the decoder's string for it) otherwise.
func (src *configSource) scalarText(n ast.Node, decoded string) string {
	switch n.(type) {
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return n.GetToken().Value
	}
	return decoded
}

func (src *configSource) seqText(p string, vals []string) []string {
	if vals == nil {
		return nil
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = src.scalarText(src.node(fmt.Sprintf("%s[%d]", p, i)), v)
	}
	return out
}

func (src *configSource) mapText(p string, vals map[string]string) map[string]string {
	if vals == nil {
		return nil
	}
	out := make(map[string]string, len(vals))
	for k, v := range vals {
		out[k] = src.scalarText(src.mapEntry(p, k), v)
	}
	return out
}
