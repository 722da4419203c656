package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// cfgEnv is a getenv backed by a map.
func cfgEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// cfgProject makes a project directory with the sources the test configs
// name (site/, files/a.conf, files/b.conf) and returns it.
func cfgProject(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"site", "files", "bases/layout"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"site/index.html", "files/a.conf", "files/b.conf"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// cfgWrite writes gantry.yaml into dir and returns its path.
func cfgWrite(t testing.TB, dir, content string) string {
	t.Helper()
	name := filepath.Join(dir, "gantry.yaml")
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// markedLine is the 1-based line of content marked with "#!" (0 if none).
func markedLine(content string) int {
	for i, l := range strings.Split(content, "\n") {
		if strings.Contains(l, "#!") {
			return i + 1
		}
	}
	return 0
}

// wantConfigError checks that err is (or wraps) a *ConfigError for file at
// line (0: any) and path, whose single-line message contains every of msgs.
func wantConfigError(t *testing.T, err error, file string, line int, path string, msgs ...string) *ConfigError {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %s:%d: %s", file, line, path)
	}
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("error %q is a %T, not a *ConfigError", err, err)
	}
	s := err.Error()
	if ce.File != file {
		t.Errorf("File = %q, want %q", ce.File, file)
	}
	if line > 0 && ce.Line != line {
		t.Errorf("Line = %d, want %d (%s)", ce.Line, line, s)
	}
	if ce.Path != path {
		t.Errorf("Path = %q, want %q (%s)", ce.Path, path, s)
	}
	prefix := file + ": "
	if ce.Line > 0 {
		prefix = fmt.Sprintf("%s:%d: ", file, ce.Line)
	}
	if path != "" {
		prefix += path + ": "
	}
	if !strings.HasPrefix(s, prefix) {
		t.Errorf("error %q does not start with %q", s, prefix)
	}
	if strings.Contains(s, "\n") {
		t.Errorf("error is not one line: %q", s)
	}
	for _, m := range msgs {
		if !strings.Contains(s, m) {
			t.Errorf("error %q does not contain %q", s, m)
		}
	}
	return ce
}

func TestLoadFileDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string // "#!" marks the line the error must point at
		msgs []string
	}{
		{"unknown image field", `images:
  - name: web
    base: nginx
    entrypont: [/x] #!
`, []string{`unknown field "entrypont"`, "README"}},
		{"unknown layer field", `images:
  - name: web
    base: nginx
    layers:
      - form: site #!
        to: /srv
`, []string{`"form"`}},
		{"unknown top-level field", `compression: gzip
imagez: [] #!
`, []string{`"imagez"`}},
		{"unknown field is case-sensitive", `images:
  - Name: web #!
`, []string{`"Name"`}},
		{"layers is a string", `images:
  - name: web
    base: nginx
    layers: "x" #!
`, []string{"sequence"}},
		{"uid is a string", `images:
  - name: web
    base: nginx
    user:
      name: app
      uid: abc #!
`, nil},
		{"images is a mapping", `images: {name: web} #!
`, []string{"sequence"}},
		{"document is a list", `- name: web #!
`, nil},
		{"unclosed flow sequence", `images:
  - name: web
    base: nginx
    ports: [8080 #!
`, nil},
		{"tab indentation", "images:\n  - name: web\n\tbase: nginx #!\n", nil},
		// The YAML decoder panics on this (goccy/go-yaml#735).
		{"tag on a scalar where a list belongs", "images:\n  !000 0000000\n", []string{"not a valid gantry.yaml"}},
		{"duplicate key", `images:
  - name: web
    base: nginx
    env:
      A: "1"
      A: "2" #!
`, []string{`"A"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := cfgWrite(t, t.TempDir(), tc.yaml)
			_, _, err := LoadFile(name, cfgEnv(nil))
			ce := wantConfigError(t, err, name, markedLine(tc.yaml), "", tc.msgs...)
			if markedLine(tc.yaml) > 0 && !strings.Contains(err.Error(), fmt.Sprintf("gantry.yaml:%d:", ce.Line)) {
				t.Errorf("error %q does not name gantry.yaml:%d", err, ce.Line)
			}
			// Load reports the same error.
			_, err2 := Load(name, cfgEnv(nil), Options{})
			if err2 == nil || err2.Error() != err.Error() {
				t.Errorf("Load: %v, want %v", err2, err)
			}
		})
	}
}

func TestLoadFileMissing(t *testing.T) {
	_, _, err := LoadFile(filepath.Join(t.TempDir(), "gantry.yaml"), cfgEnv(nil))
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadFile(missing) = %v, want a not-exist error", err)
	}
}

func TestExpandEnv(t *testing.T) {
	env := cfgEnv(map[string]string{"SET": "value", "EMPTY": "", "WITH_SPACE": "a b", "DOLLAR": "$HOME"})
	for _, tc := range []struct {
		in, want string
		errLine  int // > 0: want an error on this line
		errMsg   string
	}{
		{in: "a: ${SET}", want: "a: value"},
		{in: "a: ${SET:-default}", want: "a: value"},
		{in: "a: ${UNSET:-default}", want: "a: default"},
		{in: "a: ${EMPTY:-default}", want: "a: default"}, // as in sh: empty takes the default
		{in: "a: ${EMPTY}", want: "a: "},                 // set but empty is not an error
		{in: "a: ${UNSET:-}", want: "a: "},
		{in: "a: ${UNSET:-with spaces: and colon}", want: "a: with spaces: and colon"},
		{in: "a: ${UNSET:-${}", want: "a: ${"}, // the default runs to the first }
		{in: "a: x${SET}y${WITH_SPACE}z", want: "a: xvalueya bz"},
		{in: "a: ${DOLLAR}", want: "a: $HOME"}, // values are not expanded again
		{in: "a: $$", want: "a: $"},
		{in: "a: $${SET}", want: "a: ${SET}"},
		{in: "a: $$$${SET}", want: "a: $${SET}"},
		{in: "a: $$${SET}", want: "a: $value"},
		{in: "test: curl $HOST:$PORT/x", want: "test: curl $HOST:$PORT/x"}, // bare $VAR kept
		{in: "a: $", want: "a: $"},
		{in: "a: $ {SET}", want: "a: $ {SET}"},
		{in: "a: 100$", want: "a: 100$"},
		{in: "", want: ""},
		{in: "l1\nl2\na: ${UNSET}\n", errLine: 3, errMsg: "${UNSET} is not set"},
		{in: "a: ${UNSET}", errLine: 1, errMsg: "${UNSET:-default}"},
		{in: "\n\n\n\na: ${SET} ${1BAD}", errLine: 5, errMsg: "not a variable name"},
		{in: "a: ${}", errLine: 1, errMsg: "not a variable name"},
		{in: "a: ${SET", errLine: 1, errMsg: "unterminated"},
		{in: "a: ${SET\n}", errLine: 1, errMsg: "unterminated"},
		{in: "a: ${A-B}", errLine: 1, errMsg: "not a variable name"},
		{in: "a: ${ SET }", errLine: 1, errMsg: "not a variable name"},
	} {
		got, err := expandEnv([]byte(tc.in), env)
		if tc.errLine > 0 {
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Line != tc.errLine || !strings.Contains(ce.Msg, tc.errMsg) {
				t.Errorf("expandEnv(%q) = %q, %v; want an error on line %d containing %q", tc.in, got, err, tc.errLine, tc.errMsg)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("expandEnv(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestLoadExpandsEnv(t *testing.T) {
	dir := cfgProject(t)
	content := `images:
  - name: web
    base: ${BASE:-nginx:alpine}
    layers:
      - from: ${SRC}
        to: /srv
    env:
      URL: ${URL:-/api}
      SHELL_VAR: $HOME
      LITERAL: $${NOT_EXPANDED}
    healthcheck:
      test: curl -f http://localhost:$PORT/ || exit 1
`
	name := cfgWrite(t, dir, content)
	specs, err := Load(name, cfgEnv(map[string]string{"SRC": "site", "URL": "https://example.com"}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := specs[0]
	if s.Base != "nginx:alpine" || s.Layers[0].Sources[0].From != filepath.Join(dir, "site") {
		t.Errorf("base %q from %q", s.Base, s.Layers[0].Sources[0].From)
	}
	if want := []string{"URL=https://example.com", "SHELL_VAR=$HOME", "LITERAL=${NOT_EXPANDED}"}; !slices.Equal(s.Env, want) {
		t.Errorf("env = %q, want %q", s.Env, want)
	}
	if want := []string{"CMD-SHELL", "curl -f http://localhost:$PORT/ || exit 1"}; !slices.Equal(s.Healthcheck.Test, want) {
		t.Errorf("healthcheck test = %q, want %q", s.Healthcheck.Test, want)
	}

	// An unset variable without a default names the file, line and field.
	_, err = Load(name, cfgEnv(nil), Options{})
	wantConfigError(t, err, name, 5, "images[0].layers[0].from", "${SRC} is not set")

	// Comments are not expanded, and a value cannot change the structure.
	name = cfgWrite(t, dir, `# build with ${WHATEVER} set   
images:
  - name: web   # ${ALSO_UNSET}
    base: nginx:alpine
    env:
      TRICKY: ${TRICKY}
`)
	specs, err = Load(name, cfgEnv(map[string]string{"TRICKY": "a: b\n  evil: [1]"}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"TRICKY=a: b\n  evil: [1]"}; !slices.Equal(specs[0].Env, want) {
		t.Errorf("env = %q, want %q", specs[0].Env, want)
	}
}

func TestConfigErrorString(t *testing.T) {
	for _, tc := range []struct {
		e    ConfigError
		want string
	}{
		{ConfigError{File: "g.yaml", Line: 3, Path: "images[0].name", Msg: "bad"}, "g.yaml:3: images[0].name: bad"},
		{ConfigError{File: "g.yaml", Path: "images", Msg: "none"}, "g.yaml: images: none"},
		{ConfigError{File: "g.yaml", Line: 1, Msg: "syntax"}, "g.yaml:1: syntax"},
		{ConfigError{File: "g.yaml", Line: 2, Path: "images[0].env.a\nb", Msg: "/x/a\r\nb does not exist"}, `g.yaml:2: images[0].env.a\nb: /x/a\r\nb does not exist`},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%+v.Error() = %q, want %q", tc.e, got, tc.want)
		}
	}
}
