package spec

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/layers"
)

// testLocator names the field at fault as gantry append's flags would.
type testLocator struct{}

func (testLocator) Errorf(p, format string, args ...any) error {
	return &ConfigError{Path: p, Msg: fmt.Sprintf(format, args...)}
}

// user.home and user.shell become fields of an /etc/passwd line: a newline
// in one adds a line (a uid-0 account), a colon shifts the fields.
func TestLoadUserHomeShellInjection(t *testing.T) {
	for _, tc := range []struct{ name, field, value string }{
		{"newline in home adds a passwd line", "home", "/home/app\nbackdoor:x:0:0::/:/bin/sh"},
		{"colon in shell shifts the fields", "shell", "/bin/sh:0:0"},
		{"colon in home", "home", "/home/a:b"},
		{"relative home", "home", "home/app"},
		{"relative shell", "shell", "sh"},
		{"carriage return in shell", "shell", "/bin/sh\r"},
		{"NUL in home", "home", "/home/app\x00"},
		{"tab in shell", "shell", "/bin/\tsh"},
		{"DEL in home", "home", "/home/\x7fapp"},
		{"C1 control in home", "home", "/home/\u0085app"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := cfgProject(t)
			content := "images:\n  - name: web\n    base: nginx\n    user:\n      name: app\n      uid: 1001\n      gid: 1001\n      " + tc.field + ": ${VALUE} #!\n"
			name := cfgWrite(t, dir, content)
			specs, err := Load(name, cfgEnv(map[string]string{"VALUE": tc.value}), Options{})
			if err == nil {
				t.Fatalf("Load succeeded: user %+v", *specs[0].User)
			}
			wantConfigError(t, err, name, markedLine(content), "images[0].user."+tc.field, tc.field, "absolute path")

			// gantry append's flags go through the same rule.
			u := layers.User{Name: "app", UID: 1001, Group: "app", GID: 1001}
			if tc.field == "home" {
				u.Home = tc.value
			} else {
				u.Shell = tc.value
			}
			if err := ValidateUser(u); err == nil {
				t.Errorf("ValidateUser(%+v) = nil", u)
			}
			ic := ImageConfig{Name: "web", Base: "nginx", User: &UserConfig{Name: "app", UID: &u.UID, Home: u.Home, Shell: u.Shell}}
			_, err = FromConfig(testLocator{}, "", ic, Options{})
			if err == nil || !strings.HasPrefix(err.Error(), "user."+tc.field+": ") || strings.ContainsAny(err.Error(), "\n\r") {
				t.Errorf("FromConfig: %q, want a one-line error on user.%s", err, tc.field)
			}
		})
	}

	// Ordinary values still pass, and the defaults stay empty.
	dir := cfgProject(t)
	name := cfgWrite(t, dir, "images:\n  - name: web\n    base: nginx\n    user: {name: app, uid: 1001, home: /home/app, shell: /bin/ash}\n  - name: api\n    base: nginx\n    user: {name: app, uid: 1001}\n")
	specs, err := Load(name, cfgEnv(nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if u := specs[0].User; u.Home != "/home/app" || u.Shell != "/bin/ash" {
		t.Errorf("user = %+v", *u)
	}
	if u := specs[1].User; u.Home != "" || u.Shell != "" {
		t.Errorf("user = %+v", *u)
	}
}

// A default may hold references of its own; they are expanded only when
// the default is used.
func TestExpandEnvNestedDefault(t *testing.T) {
	env := cfgEnv(map[string]string{"SET": "value", "OTHER": "other", "EMPTY": ""})
	for _, tc := range []struct {
		in, want string
		errLine  int // > 0: want an error on this line
		errMsg   string
	}{
		{in: "${UNSET:-${OTHER}}", want: "other"},
		{in: "${SET:-${OTHER}}", want: "value"},
		{in: "${SET:-${UNSET}}", want: "value"}, // an unused default is not looked at
		{in: "${EMPTY:-${OTHER}}", want: "other"},
		{in: "${UNSET:-${UNSET2:-x}}", want: "x"},
		{in: "${UNSET:-${OTHER:-x}}", want: "other"},
		{in: "${SET:-${OTHER:-x}}", want: "value"},
		{in: "${UNSET:-${UNSET2:-${OTHER}}}", want: "other"},
		{in: "a ${UNSET:-pre-${OTHER}-post} b", want: "a pre-other-post b"},
		{in: "${UNSET:-${OTHER}${SET}}", want: "othervalue"},
		{in: "${UNSET:-$${OTHER}}", want: "${OTHER}"}, // the default is text like any other: $$ is a $
		{in: "${UNSET:-$HOME}", want: "$HOME"},
		{in: "${UNSET:-${TARGETARCH}}", want: "${TARGETARCH}"},
		{in: "${UNSET:-${}", want: "${"}, // unbalanced: the default runs to the first } as before
		{in: "${UNSET:-{x}}", want: "{x}"},
		{in: "${UNSET:-${UNSET2}}", errLine: 1, errMsg: "${UNSET2} is not set"},
		{in: "l1\nl2 ${UNSET:-${UNSET2:-${UNSET3}}}", errLine: 2, errMsg: "${UNSET3} is not set"},
		{in: "${UNSET:-${1BAD}}", errLine: 1, errMsg: "not a variable name"},
		{in: "${UNSET:-${TARGETARCH:-amd64}}", errLine: 1, errMsg: "takes no default"},
		{in: "${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-x}}}}}}}}}", errLine: 1, errMsg: "nest"},
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

	// In gantry.yaml, with the field named on an error.
	dir := cfgProject(t)
	name := cfgWrite(t, dir, "images:\n  - name: web\n    base: ${BASE:-${REGISTRY:-docker.io}/nginx}\n    env:\n      A: ${A:-${B}} #!\n")
	specs, err := Load(name, cfgEnv(map[string]string{"B": "b"}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s := specs[0]; s.Base != "docker.io/nginx" || s.Env[0] != "A=b" {
		t.Errorf("base %q env %q", s.Base, s.Env)
	}
	_, err = Load(name, cfgEnv(nil), Options{})
	wantConfigError(t, err, name, 5, "images[0].env.A", "${B} is not set")
}

// The decoder reads the first document; a second was silently ignored.
func TestLoadFileOneDocument(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string // "#!" marks the line the error must point at
		msg        string
	}{
		{"second document", cfgImage + "--- #!\n" + cfgImage, "remove the --- at line %d"},
		{"empty second document", cfgImage + "--- #!\n", "remove the --- at line %d"},
		{"second document after a comment", cfgImage + "# the api\n--- #!\n# nothing\n", "remove the --- at line %d"},
		{"both start with ---", "---\n" + cfgImage + "--- #!\n" + cfgImage, "remove the --- at line %d"},
		{"document after the end marker", cfgImage + "...\nimages: [] #!\n", "remove the document at line %d"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := cfgProject(t)
			name := cfgWrite(t, dir, tc.yaml)
			_, err := Load(name, cfgEnv(nil), Options{})
			wantConfigError(t, err, name, markedLine(tc.yaml), "", "holds one document", fmt.Sprintf(tc.msg, markedLine(tc.yaml)), "split the file")
		})
	}
	for _, ok := range []string{"---\n" + cfgImage, cfgImage + "...\n", "---\n" + cfgImage + "...\n# done\n"} {
		dir := cfgProject(t)
		if _, err := Load(cfgWrite(t, dir, ok), cfgEnv(nil), Options{}); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}
