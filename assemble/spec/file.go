package spec

// gantry.yaml: its types, strict decoding with file:line errors, and ${VAR}
// expansion in the decoded values.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
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
	// SBOM and Provenance (default true) attach an SPDX SBOM and SLSA
	// provenance to every image, unless an image sets its own.
	SBOM       *bool `yaml:"sbom"`
	Provenance *bool `yaml:"provenance"`
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
	// Format is the image's manifest family: docker (v2 schema 2) or oci
	// (default: the base's).
	Format string `yaml:"format"`
	// RuntimeEnv declares settings (secrets above all) that deployers must
	// provide at run time; they are recorded as a label, never given values.
	RuntimeEnv []RuntimeEnvConfig `yaml:"runtimeEnv"`
	// Policy relaxations: each check is on unless relaxed here.
	AllowSecrets       []string `yaml:"allowSecrets"`
	AllowRoot          bool     `yaml:"allowRoot"`
	AllowWorldWritable bool     `yaml:"allowWorldWritable"`
	AllowSetuid        bool     `yaml:"allowSetuid"`
	AllowForeignArch   bool     `yaml:"allowForeignArch"`
	// AllowMissingPrograms: see Policy.
	AllowMissingPrograms bool `yaml:"allowMissingPrograms"`
	MaxLayers            int  `yaml:"maxLayers"`
	// SBOM and Provenance: false attaches no SBOM / no provenance.
	SBOM       *bool `yaml:"sbom"`
	Provenance *bool `yaml:"provenance"`
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
	// Split cuts a big layer into layers of about this size (e.g. 64MB),
	// by path, so that a change rebuilds and uploads only its part.
	Split string `yaml:"split"`
	// Platforms limits the layer to these platforms (default: every one).
	Platforms []string `yaml:"platforms"`
	// Python installs the wheels a hash-pinned lock lists, for each
	// platform, instead of copying from: or files:.
	Python *PythonConfig `yaml:"python"`
	// Debian installs Debian packages, for each platform, from apt sources.
	Debian *DebianConfig `yaml:"debian"`
	// FollowSymlinks copies what symlinks inside the source point to;
	// symlinks pointing outside it are kept as symlinks.
	FollowSymlinks bool `yaml:"followSymlinks"`
	// AllowSecretFiles lets files that look like secrets (.env, keys)
	// through when these patterns match them.
	AllowSecretFiles []string `yaml:"allowSecretFiles"`
}

// PythonConfig is a layer of Python packages.
type PythonConfig struct {
	// Requirements is the lock: requirements.txt with every requirement
	// pinned (==) and hashed (--hash=sha256:...), or a pylock.toml.
	Requirements string `yaml:"requirements"`
	// Wheels are find-links directories and PEP 503/691 index URLs, tried
	// in order.
	Wheels []string `yaml:"wheels"`
	// Target is the site directory to install into (default: the base's
	// own site-packages or dist-packages).
	Target string `yaml:"target"`
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
	Err  error // the cause, if any
}

func (e *ConfigError) Unwrap() error { return e.Err }

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
	// anchorOf is the anchor each alias means, as the file defines them
	// up to the alias.
	anchorOf map[*ast.AliasNode]*ast.AnchorNode
	ctx      context.Context
	steps    int // nodes visited by walks and lookups
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
	return loadFile(context.Background(), name, getenv)
}

// loadFile is LoadFile, stopped when ctx is done.
func loadFile(ctx context.Context, name string, getenv func(string) (string, bool)) (*File, *configSource, error) {
	raw, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) { // a usage error: the -f given
		return nil, nil, &ConfigError{File: name, Msg: "no such file; give the config file with -f (default ./gantry.yaml)", Err: err}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading config: %w", err)
	}
	src := &configSource{name: name, dir: filepath.Dir(name), ctx: ctx}
	var file File
	if err := src.decodeFile(raw, &file); err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			return nil, nil, err
		}
		if ctx.Err() != nil {
			return nil, nil, src.stopped()
		}
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
	if err := (expander{src: src, getenv: getenv}).value(reflect.ValueOf(&file).Elem(), ""); err != nil {
		if ctx.Err() != nil {
			return nil, nil, src.stopped()
		}
		return nil, nil, err
	}
	return &file, src, nil
}

// stopped is the error of a load that ctx stopped.
func (s *configSource) stopped() error {
	return fmt.Errorf("loading %s: %w", s.name, context.Cause(s.ctx))
}

// interruptible runs f unless s.ctx is done, and reports s.ctx's end
// after it. Parsing and decoding are the decoder's and do not look at ctx:
// they run to the end (bounded by the file's size and the alias bound), in
// this goroutine, so that nothing outlives the load.
func (s *configSource) interruptible(f func() error) error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	err := f()
	if cerr := s.ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

func joinPath(p, k string) string {
	if p == "" {
		return k
	}
	return p + "." + k
}

// oneDocument refuses a second YAML document, which the decoder would
// ignore.
func (s *configSource) oneDocument() error {
	if s.ast == nil || len(s.ast.Docs) < 2 {
		return nil
	}
	d := s.ast.Docs[1]
	if d.Start != nil {
		return &ConfigError{File: s.name, Line: d.Start.Position.Line, Msg: fmt.Sprintf("a gantry.yaml holds one document; remove the --- at line %d or split the file", d.Start.Position.Line)}
	}
	if d.Body == nil || d.Body.GetToken() == nil {
		return &ConfigError{File: s.name, Msg: "a gantry.yaml holds one document; remove the second or split the file"}
	}
	line := d.Body.GetToken().Position.Line
	return &ConfigError{File: s.name, Line: line, Msg: fmt.Sprintf("a gantry.yaml holds one document; remove the document at line %d (after the ... that ends the first) or split the file", line)}
}

// decodeFile parses raw once, checks its syntax tree (one document,
// aliases within bounds, strings where strings belong) and decodes it
// into f.
func (s *configSource) decodeFile(raw []byte, f *File) error {
	if err := s.interruptible(func() error { return s.parse(raw) }); err != nil {
		return err
	}
	if err := s.oneDocument(); err != nil {
		return err
	}
	if err := s.checkAliases(len(raw)); err != nil {
		return err
	}
	if err := s.checkShapes(); err != nil {
		return err
	}
	return s.interruptible(func() error { return s.decode(f) })
}

// parseBytes is the parser (a test holds it up).
var parseBytes = parser.ParseBytes

// parse parses the file once, for the decoder and for line lookups.
func (s *configSource) parse(b []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("not a valid gantry.yaml (the YAML parser failed: %v)", r)
		}
	}()
	s.ast, err = parseBytes(b, 0)
	return err
}

// decode decodes the file's document into f, rejecting unknown fields; an
// empty document leaves f empty. The decoder panics on some malformed
// input, such as a tag on a scalar where a list belongs
// (goccy/go-yaml#735): that is an error in the file, not a crash.
func (s *configSource) decode(f *File) (err error) {
	if len(s.ast.Docs) == 0 {
		return nil
	}
	body := s.ast.Docs[0].Body
	if _, comments := body.(*ast.CommentGroupNode); isNil(body) || comments {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("not a valid gantry.yaml (the YAML decoder failed: %v)", r)
		}
	}()
	return yaml.NewDecoder(bytes.NewReader(nil), yaml.DisallowUnknownField(), yaml.UseOrderedMap()).DecodeFromNode(body, f)
}

func hint(msg string) string {
	if strings.Contains(msg, "unknown field") {
		return " (see the config reference in README.md)"
	}
	return ""
}

// Errorf reports a problem with the field at path p, with its line.
func (s *configSource) Errorf(p, format string, args ...any) error {
	return s.errorf(p, format, args...)
}
