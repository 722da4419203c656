package spec

import (
	"bytes"
	"errors"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzEnv is the environment the fuzz targets expand against.
var fuzzEnv = cfgEnv(map[string]string{"API_URL": "/x", "EMPTY": "", "SRC": "frontend/out", "WEIRD": "a: [b"})

// fuzzSeeds are gantry.yaml variants: valid ones and ones broken in ways
// people break them.
var fuzzSeeds = []string{
	"",
	"images: []\n",
	"images:\n",
	cfgImage,
	"images:\n  - name: web\n    base: nginx\n    bogus: 1\n",
	"images:\n  - name: web\n    base: nginx\n    layers: \"x\"\n",
	"images:\n  - name: web\n    base: nginx\n    ports: [8080\n",
	"images:\n  - name: web\n\tbase: nginx\n",
	"images:\n  - name: web\n    base: ${UNSET}\n",
	"images:\n  - name: web\n    base: ${API_URL:-nginx}\n    env: {A: ${WEIRD}}\n",
	"images:\n  - name: web\n    base: ${1\n",
	"images:\n  - name: web\n    base: nginx\n    env: {\"a\\nb\": 1, B: [1], C: 1.10, D: 0755}\n",
	"images:\n  - name: web\n    base: nginx\n    user: {name: App User, uid: 70000}\n",
	"images:\n  - name: web\n    base: nginx\n    healthcheck: {test: [CMD], interval: 5 seconds}\n",
	"images:\n  - name: web\n    base: nginx\n    layers:\n      - from: \"a\\nb\"\n        to: /x\n",
	"images:\n  - name: web\n    base: nginx\n    layers:\n      - from: frontend/out\n        to: \"/a\\nb\"\n        owner: \"1:\\n\"\n",
	"images:\n  - &a {name: web, base: nginx}\n  - *a\n",
	"images:\n  - name: web\n    base: nginx\n    labels: {<<: {a: 1}}\n",
	"images:\n  - name: web\n    base: nginx\n    tags: [\"a\\nb\"]\n    platforms: [\"linux/\\n\"]\n",
	"images: [{name: web, base: nginx, maxSize: NaNMB, ports: [\"80/\\n\"], volumes: [\"x\\ny\"]}]\n",
	"---\nimages: []\n---\nimages: [{name: b}]\n",
	"images:\n  - name: web\n    base: oci:rel/layout:tag\n    compression: zstd\n    compressionLevel: 9\n",
}

// fuzzProject is a directory with the TaskFlow example's sources, so that
// valid configs get past source checks.
func fuzzProject(t testing.TB) string {
	dir := t.TempDir()
	for _, d := range []string{"frontend/out", "frontend/nginx", "backend/wheels", "backend/src"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"frontend/nginx/nginx.conf", "frontend/nginx/default.conf"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lock, err := os.ReadFile("../../testdata/taskflow/backend/requirements.lock")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "backend/requirements.lock"), lock, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func FuzzLoadConfig(f *testing.F) {
	example, err := os.ReadFile("../../testdata/taskflow/gantry.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	// The example with a line cut short, a field renamed, a type broken.
	lines := strings.Split(string(example), "\n")
	f.Add([]byte(strings.Join(lines[:len(lines)/2], "\n")))
	f.Add(bytes.Replace(example, []byte("layers:"), []byte("layer:"), 1))
	f.Add(bytes.Replace(example, []byte("uid: 1001"), []byte("uid: x"), 1))
	f.Add(bytes.Replace(example, []byte("${API_URL:-/api}"), []byte("${API_URL"), 1))
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	dir := fuzzProject(f)
	name := filepath.Join(dir, "gantry.yaml")

	f.Fuzz(func(t *testing.T, data []byte) {
		// One process runs one input at a time, so the file can be reused.
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
		specs, err := Load(name, fuzzEnv, Options{})
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %q is a %T, not a *ConfigError", err, err)
			}
			msg := err.Error()
			if strings.ContainsAny(msg, "\n\r") {
				t.Fatalf("error is not one line: %q", msg)
			}
			if ce.File != name || !strings.HasPrefix(msg, name) {
				t.Fatalf("error does not name the file first: %q", msg)
			}
			// YAML breaks lines at \n, \r\n and a lone \r.
			n := bytes.Count(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")), []byte("\n")) + bytes.Count(data, []byte("\r")) - bytes.Count(data, []byte("\r\n")) + 1
			if ce.Line < 0 || ce.Line > n {
				t.Fatalf("line %d outside the file's %d lines: %q", ce.Line, n, msg)
			}
			return
		}
		if len(specs) == 0 {
			t.Fatal("no error and no images")
		}
		seen := map[string]bool{}
		for _, s := range specs {
			if !imageNameRE.MatchString(s.Name) || seen[s.Name] {
				t.Fatalf("image name %q accepted", s.Name)
			}
			seen[s.Name] = true
			if s.Base == "" {
				t.Fatalf("%s: no base", s.Name)
			}
			if _, err := s.Compression.Normalize(); err != nil || s.Compression.Algorithm == "" {
				t.Fatalf("%s: compression %+v: %v", s.Name, s.Compression, err)
			}
			if s.MaxSize < 0 {
				t.Fatalf("%s: maxSize %d", s.Name, s.MaxSize)
			}
			for _, l := range s.Layers {
				if (len(l.Sources) == 0) == (l.Python == nil) || l.Name == "" {
					t.Fatalf("%s: layer %+v", s.Name, l)
				}
				for _, src := range l.Sources {
					if !path.IsAbs(src.To) {
						t.Fatalf("%s: destination %q", s.Name, src.To)
					}
					if _, err := os.Lstat(src.From); err != nil {
						t.Fatalf("%s: source %q: %v", s.Name, src.From, err)
					}
				}
			}
			for _, p := range s.Ports {
				if _, err := ParsePort(p); err != nil {
					t.Fatalf("%s: port %q", s.Name, p)
				}
			}
			for _, kv := range s.Env {
				if k, _, _ := strings.Cut(kv, "="); !envKeyRE.MatchString(k) {
					t.Fatalf("%s: env %q", s.Name, kv)
				}
			}
			if u := s.User; u != nil {
				if err := ValidateUser(*u); err != nil {
					t.Fatalf("%s: user %+v: %v", s.Name, u, err)
				}
			}
			if h := s.Healthcheck; h != nil && len(h.Test) == 0 {
				t.Fatalf("%s: empty healthcheck", s.Name)
			}
		}
	})
}

func FuzzExpandEnv(f *testing.F) {
	for _, s := range []string{
		"", "$", "$$", "$$$", "${", "${}", "${API_URL}", "${API_URL:-d}", "${UNSET:-d}", "${UNSET}", "${EMPTY:-x}",
		"a\nb\n${UNSET}", "$${API_URL}", "$API_URL", "${API_URL\n}", "${A:-${B}}", "${1}", "x${WEIRD}y", "€${API_URL}€",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := expandEnv([]byte(in), fuzzEnv)
		lines := strings.Count(in, "\n") + 1
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %q is a %T, not a *ConfigError", err, err)
			}
			if ce.Line < 1 || ce.Line > lines {
				t.Fatalf("line %d outside 1-%d: %v", ce.Line, lines, err)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error is not one line: %q", err)
			}
			if !strings.Contains(in, "${") {
				t.Fatalf("error without a ${: %v", err)
			}
			return
		}
		// Values and defaults never hold a newline: lines stay where they were.
		if n := bytes.Count(out, []byte("\n")); n != lines-1 {
			t.Fatalf("%d newlines in, %d out: %q → %q", lines-1, n, in, out)
		}
		if !strings.Contains(in, "$") && string(out) != in {
			t.Fatalf("text without $ changed: %q → %q", in, out)
		}
		if !strings.Contains(in, "${") && !strings.Contains(in, "$$") && string(out) != in {
			t.Fatalf("text without ${ or $$ changed: %q → %q", in, out)
		}
	})
}
