package assemble_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/assemble/spec"
)

// The program gate: a healthcheck or command the image cannot run fails
// the build on the bundled bases, naming the program, the platform and what
// the image has instead; one a layer adds, or the base has, passes.
func TestProgramGate(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "check"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "notexec"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	build := func(base, extra string, relax bool) error {
		cfg := filepath.Join(dir, "gantry.yaml")
		yaml := "images:\n  - name: app\n    base: oci:" + abs(base) + "\n    allowRoot: true\n    layers:\n      - {from: bin, to: /opt/app/bin}\n" + extra
		if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		specs, err := spec.Load(cfg, noEnv, spec.Options{Relax: spec.Relax{AllowMissingPrograms: relax}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = newTestEngine(t, "").Build(context.Background(), specs)
		return err
	}
	for _, tc := range []struct {
		name, base, extra, want string
	}{
		{"curl on python slim", pythonBase, "    healthcheck: {test: \"CMD curl -f http://127.0.0.1:8000/api/health\"}\n",
			"the healthcheck runs curl, which linux/amd64 does not have (PATH /usr/local/bin:"},
		{"exec form", pythonBase, "    healthcheck: {test: [CMD, gunicorn-check]}\n", "the healthcheck runs gunicorn-check"},
		{"a command the image lacks", pythonBase, "    cmd: [gunicorn, app:app]\n", "the entrypoint/cmd runs gunicorn"},
		{"not executable", pythonBase, "    cmd: [/opt/app/bin/notexec]\n", "runs /opt/app/bin/notexec"},
		{"wget on nginx alpine", nginxBase, "    healthcheck: {test: \"CMD wget -q -O /dev/null http://127.0.0.1:8080/health\"}\n", ""},
		{"python3 on python slim", pythonBase, "    healthcheck: {test: [CMD, python3, -c, \"print(1)\"]}\n", ""},
		{"a program a layer adds", pythonBase, "    cmd: [/opt/app/bin/check]\n", ""},
		{"through PATH set by env", pythonBase, "    env: {PATH: /opt/app/bin:/usr/bin}\n    healthcheck: {test: [CMD, check]}\n", ""},
		{"shell builtins only", nginxBase, "    healthcheck: {test: \"CMD test -f /tmp/ready\"}\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := build(tc.base, tc.extra, false)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			case tc.want != "" && strings.Contains(tc.want, "curl") && !strings.Contains(err.Error(), "it has /usr/local/bin/python3"):
				t.Errorf("error %v does not say what the image has", err)
			}
			if tc.want != "" {
				if err := build(tc.base, tc.extra, true); err != nil {
					t.Errorf("with allowMissingPrograms: %v", err)
				}
			}
		})
	}
}

// A command that is an ELF file of another architecture fails on the
// platform it cannot run on.
func TestProgramOfForeignArchitecture(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "server"), elfHeader(62), 0o755); err != nil { // x86-64
		t.Fatal(err)
	}
	base, err := filepath.Abs(nginxBase)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "gantry.yaml")
	yaml := "images:\n  - name: app\n    base: oci:" + base + "\n    allowRoot: true\n    layers:\n      - {from: bin, to: /opt/app/bin}\n    cmd: [/opt/app/bin/server]\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	specs, err := spec.Load(cfg, noEnv, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = newTestEngine(t, "").Build(context.Background(), specs)
	if err == nil || !strings.Contains(err.Error(), "platform linux/arm64/v8: layer /opt/app/bin: opt/app/bin/server is x86-64, but linux/arm64/v8 needs aarch64") {
		t.Errorf("an x86-64 command on arm64: %v", err)
	}
}
