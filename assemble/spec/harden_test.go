package spec

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/layers"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
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

// aliasBomb is an image whose healthcheck test nests levels lists, each of
// width aliases of the one before: width^levels strings from a few hundred
// bytes. The line of level bad is marked "#!".
func aliasBomb(levels, width, bad int) string {
	var b strings.Builder
	b.WriteString("images:\n  - name: web\n    base: nginx\n    healthcheck:\n      test:\n        - CMD\n")
	for l := range levels {
		items := make([]string, width)
		for i := range items {
			items[i] = "x"
			if l > 0 {
				items[i] = fmt.Sprintf("*a%d", l-1)
			}
		}
		fmt.Fprintf(&b, "        - &a%d [%s]", l, strings.Join(items, ", "))
		if l == bad {
			b.WriteString(" #!")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// A few hundred bytes of aliases expanded into a config of hundreds of MB.
func TestLoadFileAliasExpansionBound(t *testing.T) {
	dir := cfgProject(t)
	// 10^6 strings; the aliases of a4 pass 100,000 nodes.
	content := aliasBomb(6, 10, 4)
	if len(content) > 600 {
		t.Fatalf("bomb of %d bytes", len(content))
	}
	name := cfgWrite(t, dir, content)
	_, _, err := LoadFile(name, cfgEnv(nil))
	wantConfigError(t, err, name, markedLine(content), "", "alias *a3", "100000 nodes")

	// A long string repeated by aliases is bounded by its size.
	var b strings.Builder
	b.WriteString("images:\n  - name: web\n    base: nginx\n    labels:\n      big: &big " + strings.Repeat("x", 100_000) + "\n")
	for i := range 100 {
		fmt.Fprintf(&b, "      l%d: *big", i)
		if i == 41 {
			b.WriteString(" #!") // 42 × 100 kB pass 4 MiB
		}
		b.WriteString("\n")
	}
	content = b.String()
	name = cfgWrite(t, dir, content)
	_, _, err = LoadFile(name, cfgEnv(nil))
	wantConfigError(t, err, name, markedLine(content), "", "alias *big", "bytes")

	// Merges that each merge the one before: 2,000 lines add 2 million
	// entries. The count is linear however deep they go.
	b.Reset()
	b.WriteString("images:\n  - name: web\n    base: nginx\n    labels: {z: &a0 {k0: 0}}\n    annotations:\n")
	for i := 1; i < 2000; i++ {
		fmt.Fprintf(&b, "      a%d: &a%d {<<: *a%d, k%d: %d}\n", i, i, i-1, i, i)
	}
	name = cfgWrite(t, dir, b.String())
	_, _, err = LoadFile(name, cfgEnv(nil))
	wantConfigError(t, err, name, 0, "", "alias *a", "nodes")
	// Merged mappings are followed, numbers and all.
	name = cfgWrite(t, dir, "mirrors: &c {z: 0x3}\nimages:\n  - name: web\n    base: nginx\n    annotations: &b {x: 1.0}\n    labels: {y: 2, <<: [*b, *c]}\n")
	if specs, err := Load(name, cfgEnv(nil), Options{}); err != nil || fmt.Sprint(specs[0].Labels) != "map[x:1.0 y:2 z:0x3]" {
		t.Errorf("merged labels: %v %+v", err, specs)
	}

	// Aliases within the bound are fine: a layer list shared by images, a
	// smaller bomb.
	content = cfgImage + "        owner: &owner \"1001:1001\"\n  - name: api\n    base: python\n    layers: &layers\n      - {from: site, to: /srv, owner: *owner}\n  - name: worker\n    base: python\n    layers: *layers\n"
	name = cfgWrite(t, dir, content)
	specs, err := Load(name, cfgEnv(nil), Options{})
	if err != nil || len(specs) != 3 || specs[2].Layers[0].Owner == nil || specs[2].Layers[0].Owner.UID != 1001 {
		t.Errorf("shared aliases: %v %+v", err, specs)
	}
	// 10^4 strings, in env: where the decoder takes lists (the validator
	// refuses them).
	content = strings.Replace(aliasBomb(4, 10, -1), "    healthcheck:\n      test:\n        - CMD\n", "    env:\n", 1)
	content = regexp.MustCompile(`- &a(\d)`).ReplaceAllString(content, "  A$1: &a$1")
	name = cfgWrite(t, dir, content)
	if f, _, err := LoadFile(name, cfgEnv(nil)); err != nil || len(f.Images[0].Env) != 4 {
		t.Errorf("10^4 strings: %v\n%s", err, content)
	}
}

// A list's items are strings (or numbers): a list or mapping in one was
// taken as text, or failed in the decoder with an error naming no field.
func TestLoadNestedListItems(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string // yaml goes under the image; "#!" marks the line
		path, msg  string
	}{
		{"list in healthcheck test", "    healthcheck:\n      test: [CMD, [curl, -f]] #!\n", "healthcheck.test[1]", "a list"},
		{"mapping in healthcheck test", "    healthcheck:\n      test:\n        - CMD\n        - curl\n        - a: b #!\n", "healthcheck.test[2]", "a mapping"},
		{"list in cmd", "    cmd: [[a, b]] #!\n", "cmd[0]", "each item of cmd: is one string, not a list"},
		{"mapping in entrypoint", "    entrypoint: [sh, -c, echo a: b] #!\n", "entrypoint[2]", "a mapping"},
		{"list in tags", "    tags:\n      - latest\n      - [v1] #!\n", "tags[1]", "a list"},
		{"list in volumes", "    volumes: [/a, [/b]] #!\n", "volumes[1]", "a list"},
		{"list in ports", "    ports: [[80]] #!\n", "ports[0]", "a list"},
		{"mapping in ports", "    ports:\n      - 80: 8080 #!\n", "ports[0]", "a mapping"},
		{"list in platforms", "    platforms: [[linux/amd64]] #!\n", "platforms[0]", "a list"},
		{"list in a layer's include", "    layers:\n      - from: site\n        to: /srv\n        include: [\"*.html\", [\"*.css\"]] #!\n", "layers[0].include[1]", "a list"},
		{"aliased list in cmd", "    entrypoint: &e [tini]\n    cmd: [*e] #!\n", "cmd[0]", "a list"},
		{"merged into an image", "    <<: {cmd: [[a]]} #!\n", "cmd[0]", "a list"},
		{"list as a label", "    labels:\n      a: b\n      c: [d] #!\n", "labels.c", "each value of labels: is one string, not a list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := cfgProject(t)
			content := "images:\n  - name: web\n    base: nginx\n" + tc.yaml
			name := cfgWrite(t, dir, content)
			_, err := Load(name, cfgEnv(nil), Options{})
			wantConfigError(t, err, name, markedLine(content), "images[0]."+tc.path, tc.msg)
		})
	}
	// Quoted, they are text.
	dir := cfgProject(t)
	name := cfgWrite(t, dir, "images:\n  - name: web\n    base: nginx\n    cmd: [\"[a, b]\", \"a: b\"]\n    healthcheck:\n      test: [CMD, \"[x]\"]\n")
	specs, err := Load(name, cfgEnv(nil), Options{})
	if err != nil || fmt.Sprint(specs[0].Cmd) != "[[a, b] a: b]" || fmt.Sprint(specs[0].Healthcheck.Test) != "[CMD [x]]" {
		t.Errorf("quoted: %v %+v", err, specs)
	}
}

// manyLabels is an image with n labels and n env entries, numbers all (so
// that their text is looked up), in flow style or block style.
func manyLabels(n int, flow bool) string {
	var b strings.Builder
	b.WriteString("images:\n  - name: web\n    base: nginx\n")
	for _, field := range []string{"labels", "env"} {
		if flow {
			b.WriteString("    " + field + ": {")
			for i := range n {
				fmt.Fprintf(&b, "k%d: %d.0,\n", i, i)
			}
			b.WriteString("}\n")
			continue
		}
		b.WriteString("    " + field + ":\n")
		for i := range n {
			fmt.Fprintf(&b, "      k%d: %d.0\n", i, i)
		}
	}
	return b.String()
}

// loadCounting is Load with the steps the walks and lookups of the
// syntax tree took.
func loadCounting(name string) ([]ImageSpec, int, error) {
	f, src, err := LoadFile(name, cfgEnv(nil))
	if err != nil {
		return nil, 0, err
	}
	specs, err := src.specs(f)
	return specs, src.steps, err
}

// Labels, annotations and env were looked up by scanning their mapping
// for each key: 20,000 labels took 9 s, 300,000 never finished. The work
// is now linear: a bounded number of steps per entry.
func TestLoadManyLabelsLinear(t *testing.T) {
	const n = 50_000
	dir := cfgProject(t)
	name := cfgWrite(t, dir, manyLabels(n, true))
	specs, steps, err := loadCounting(name)
	if err != nil {
		t.Fatal(err)
	}
	s := specs[0]
	if len(s.Labels) != n || s.Labels["k49999"] != "49999.0" || len(s.Env) != n || s.Env[n-1] != "k49999=49999.0" {
		t.Fatalf("%d labels (k49999=%q), %d env (%q)", len(s.Labels), s.Labels["k49999"], len(s.Env), s.Env[n-1])
	}
	if limit := 20 * 2 * n; steps > limit {
		t.Errorf("%d entries took %d steps, over %d: not linear", 2*n, steps, limit)
	}
	t.Logf("%d entries: %d steps", 2*n, steps)
}

// BenchmarkLoadManyLabels loads n labels and n env entries. In flow style
// the whole load is linear; in block style the YAML parser's own time is
// not (goccy/go-yaml parses a block mapping by recursing per key and
// copying the keys so far at each level: goccy/go-yaml#889).
func BenchmarkLoadManyLabels(b *testing.B) {
	for _, style := range []string{"flow", "block"} {
		for _, n := range []int{20_000, 40_000} {
			b.Run(fmt.Sprintf("%s/%d", style, n), func(b *testing.B) {
				name := cfgWrite(b, b.TempDir(), manyLabels(n, style == "flow"))
				steps := 0
				for b.Loop() {
					_, s, err := loadCounting(name)
					if err != nil {
						b.Fatal(err)
					}
					steps = s
				}
				b.ReportMetric(float64(steps), "steps/op")
			})
		}
	}
}

// countdownCtx is done after its Err has been asked left times; it counts
// the times it was asked.
type countdownCtx struct {
	context.Context
	left, asked int
}

func (c *countdownCtx) Err() error {
	c.asked++
	if c.left <= 0 {
		return context.Canceled
	}
	c.left--
	return nil
}

// Ctrl-C stops a load: between images and layers, in the walks of a big
// file, and in the YAML parser.
func TestLoadContextStops(t *testing.T) {
	dir := cfgProject(t)
	// An image with a layer, and one with 5,000 labels and env entries.
	name := cfgWrite(t, dir, strings.Replace(manyLabels(5_000, true), "  - name: web\n", cfgImage[len("images:\n"):]+"  - name: big\n", 1))

	// How often a whole load asks.
	full := &countdownCtx{Context: context.Background(), left: 1 << 30}
	if _, err := LoadContext(full, name, cfgEnv(nil), Options{}); err != nil {
		t.Fatal(err)
	}
	if full.asked < 50 {
		t.Fatalf("a load of 10,000 entries asked ctx %d times", full.asked)
	}
	t.Logf("a load of 10,000 entries asked ctx %d times", full.asked)
	for _, left := range []int{0, 1, full.asked / 2, full.asked - 1} {
		ctx := &countdownCtx{Context: context.Background(), left: left}
		_, err := LoadContext(ctx, name, cfgEnv(nil), Options{})
		var ce *ConfigError
		if !errors.Is(err, context.Canceled) || errors.As(err, &ce) || !strings.Contains(err.Error(), name) {
			t.Errorf("stopped after %d of %d: %v; want a cancellation naming the file", left, full.asked, err)
		}
	}

	// Cancelled while the YAML parser runs: it does not look at ctx, and
	// runs to its end in the load's own goroutine; the load then stops.
	ctx, cancel := context.WithCancel(context.Background())
	parseBytes = func(b []byte, m parser.Mode, opts ...parser.Option) (*ast.File, error) {
		cancel()
		return parser.ParseBytes(b, m, opts...)
	}
	_, err := LoadContext(ctx, name, cfgEnv(nil), Options{})
	parseBytes = parser.ParseBytes
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled in the parser: %v", err)
	}

	// Load is LoadContext that is never stopped.
	if _, err := Load(name, cfgEnv(nil), Options{}); err != nil {
		t.Error(err)
	}
}

// An alias inside its own anchor: the decoder decodes the anchor into
// itself again as deep as File's types go, so a mapping listing itself as
// each of its k layers, and each of those layers' k files, was k^2
// mappings to decode (2,000: 54 s).
func TestLoadFileAliasInItsOwnAnchor(t *testing.T) {
	const k = 2000
	self := strings.TrimSuffix(strings.Repeat("*a, ", k), ", ")
	raw := []byte("images:\n  - &a\n    name: web\n    base: nginx\n    layers: [" + self + "]\n    files: [" + self + "]\n")
	src := &configSource{name: "gantry.yaml", ctx: context.Background()}
	var f File
	err := src.decodeFile(raw, &f)
	wantConfigError(t, err, "gantry.yaml", 5, "", "alias *a is inside its own anchor &a (line 2)")
	if src.steps > 20*k {
		t.Errorf("%d self-aliases took %d steps", 2*k, src.steps)
	}

	for _, content := range []string{
		"images:\n  - name: web\n    base: nginx\n    healthcheck:\n      test: [CMD, &r [x, *r]] #!\n",
		"images:\n  - &a {name: web, base: nginx, <<: *a} #!\n",
		"images: &i\n  - name: web\n    base: nginx\n  - *i #!\n",
	} {
		name := cfgWrite(t, t.TempDir(), content)
		_, err := Load(name, cfgEnv(nil), Options{})
		wantConfigError(t, err, name, markedLine(content), "", "inside its own anchor")
	}
}
