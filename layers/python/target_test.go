package python

import (
	"context"
	"reflect"
	"testing"
)

func TestDetectTarget(t *testing.T) {
	debianPython := merge(bookworm(), fakeFS{
		"usr/bin/python3":                 symlink("python3.11"),
		"usr/bin/python3.11":              reg("\x7fELF"),
		"usr/lib/python3.11/os.py":        reg(""),
		"usr/lib/python3/dist-packages":   dir(),
		"var/lib/dpkg/status":             reg(dpkgStatus + "\nPackage: python3.11-minimal\nStatus: install ok installed\nVersion: 3.11.2-6+deb12u6\n"),
		"usr/lib/aarch64-linux-gnu/x.txt": reg(""),
	})
	alpine := fakeFS{
		"lib/ld-musl-aarch64.so.1":                  reg("\x7fELF"),
		"lib/libc.musl-aarch64.so.1":                symlink("ld-musl-aarch64.so.1"),
		"lib/apk/db/installed":                      reg("C:Q1abc=\nP:musl\nV:1.2.5-r0\nA:aarch64\n\nC:Q1def=\nP:busybox\nV:1.36.1-r29\n"),
		"usr/local/bin/python3":                     symlink("python3.12"),
		"usr/local/bin/python3.12":                  reg("\x7fELF"),
		"usr/local/lib/python3.12/site-packages/x":  reg(""),
		"usr/local/lib/python3.12/lib-dynload/x.so": reg(""),
	}
	alpineSystem := fakeFS{
		"lib/ld-musl-x86_64.so.1":                 reg("\x7fELF"),
		"lib/apk/db/installed":                    reg("P:musl\nV:1.2.4_git20230717-r4\n\nP:python3\nV:3.11.9-r0\n"),
		"usr/bin/python3":                         symlink("python3.11"),
		"usr/bin/python3.11":                      reg("\x7fELF"),
		"usr/lib/python3.11/site-packages/README": reg(""),
	}
	oldGlibc := merge(fakeFS{
		"lib/x86_64-linux-gnu/libc.so.6":          symlink("libc-2.31.so"),
		"lib/x86_64-linux-gnu/libc-2.31.so":       reg("\x7fELF"),
		"usr/local/bin/python3":                   reg("\x7fELF"),
		"usr/local/lib/python3.9/site-packages/x": reg(""),
	})
	venv := merge(pythonSlim(), fakeFS{
		"opt/venv/bin/python3":                    symlink("/usr/local/bin/python3"),
		"opt/venv/lib/python3.13/site-packages/x": reg(""),
	})
	for _, tc := range []struct {
		name           string
		fs             fakeFS
		env            []string
		arch, override string
		want           Target
		err            []string
	}{
		{name: "python:3.13-slim", fs: pythonSlim(), env: slimEnv, arch: "amd64", want: slimTarget("amd64")},
		{
			name: "python:3.13-slim without PYTHON_VERSION", fs: pythonSlim(), arch: "amd64",
			want: func() Target { t := slimTarget("amd64"); t.Python.Micro = 0; return t }(),
		},
		{
			name: "python3.13 only as pythonX.Y", arch: "amd64", env: slimEnv,
			fs:   func() fakeFS { f := pythonSlim(); delete(f, "usr/local/bin/python3"); return f }(),
			want: func() Target { t := slimTarget("amd64"); t.Interpreter = "/usr/local/bin/python3.13"; return t }(),
		},
		{
			name: "Debian python3", fs: debianPython, arch: "arm64",
			want: Target{
				OS: "linux", Arch: "arm64", Python: Version{3, 11, 2}, Libc: Libc{Glibc, 2, 36},
				SiteDir: "/usr/local/lib/python3.11/dist-packages", ScriptsDir: "/usr/local/bin",
				Interpreter: "/usr/bin/python3", Prefix: "/usr/local",
				NewDirs: []string{"/usr/local/lib/python3.11", "/usr/local/lib/python3.11/dist-packages"},
			},
		},
		{
			name: "python:3.12-alpine", fs: alpine, arch: "arm64", env: []string{"PYTHON_VERSION=3.12.8"},
			want: Target{
				OS: "linux", Arch: "arm64", Python: Version{3, 12, 8}, Libc: Libc{Musl, 1, 2},
				SiteDir: "/usr/local/lib/python3.12/site-packages", ScriptsDir: "/usr/local/bin",
				Interpreter: "/usr/local/bin/python3", Prefix: "/usr/local",
			},
		},
		{
			name: "Alpine python3 package", fs: alpineSystem, arch: "amd64",
			want: Target{
				OS: "linux", Arch: "amd64", Python: Version{3, 11, 9}, Libc: Libc{Musl, 1, 2},
				SiteDir: "/usr/lib/python3.11/site-packages", ScriptsDir: "/usr/bin",
				Interpreter: "/usr/bin/python3", Prefix: "/usr",
			},
		},
		{
			name: "glibc from the libc.so.6 symlink", fs: oldGlibc, arch: "amd64",
			want: Target{
				OS: "linux", Arch: "amd64", Python: Version{3, 9, 0}, Libc: Libc{Glibc, 2, 31},
				SiteDir: "/usr/local/lib/python3.9/site-packages", ScriptsDir: "/usr/local/bin",
				Interpreter: "/usr/local/bin/python3", Prefix: "/usr/local",
			},
		},
		{
			name: "override: a venv", fs: venv, env: slimEnv, arch: "amd64", override: "/opt/venv/lib/python3.13/site-packages/",
			want: Target{
				OS: "linux", Arch: "amd64", Python: Version{3, 13, 1}, Libc: Libc{Glibc, 2, 36},
				SiteDir: "/opt/venv/lib/python3.13/site-packages", ScriptsDir: "/opt/venv/bin",
				Interpreter: "/opt/venv/bin/python3", Prefix: "/opt/venv",
			},
		},
		{
			name: "override: a plain directory", fs: pythonSlim(), env: slimEnv, arch: "amd64", override: "/app/deps",
			want: Target{
				OS: "linux", Arch: "amd64", Python: Version{3, 13, 1}, Libc: Libc{Glibc, 2, 36},
				SiteDir: "/app/deps", ScriptsDir: "/app/deps/bin", Interpreter: "/usr/local/bin/python3", Prefix: "/app/deps",
				NewDirs: []string{"/app", "/app/deps", "/app/deps/bin"},
			},
		},
		{
			name: "no Python", fs: bookworm(), arch: "arm64",
			err: []string{"linux/arm64: no Python in the base image", "/usr/local/lib/pythonX.Y/site-packages", "/usr/bin/python3", "set target:"},
		},
		{
			name: "override without a version", fs: pythonSlim(), arch: "amd64", override: "/app/deps",
			err: []string{"linux/amd64: target: /app/deps does not name a pythonX.Y", "PYTHON_VERSION"},
		},
		{
			name: "PYTHON_VERSION names another Python", fs: pythonSlim(), arch: "amd64", env: []string{"PYTHON_VERSION=3.12.0"},
			err: []string{"PYTHON_VERSION=3.12.0", "/usr/local/lib has only 3.13", "set target:"},
		},
		{
			name: "two Pythons, no PYTHON_VERSION", arch: "amd64",
			fs:  merge(pythonSlim(), fakeFS{"usr/local/lib/python3.12/site-packages/x": reg("")}),
			err: []string{"several Pythons (3.12, 3.13)", "set target:"},
		},
		{
			name: "no C library", arch: "amd64",
			fs:  fakeFS{"usr/local/bin/python3": reg(""), "usr/local/lib/python3.13/site-packages/x": reg("")},
			err: []string{"linux/amd64: cannot tell the base image's C library", "ld-musl", "libc6 in /var/lib/dpkg/status", "libc.so.6"},
		},
		{name: "windows", fs: pythonSlim(), arch: "amd64", err: []string{"only be installed for linux"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			goos := "linux"
			if tc.name == "windows" {
				goos = "windows"
			}
			got, err := DetectTarget(context.Background(), tc.fs, tc.env, goos, tc.arch, "", tc.override)
			if tc.err != nil {
				errContains(t, err, tc.err...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestResolveSymlinks(t *testing.T) {
	fs := fakeFS{
		"lib":            symlink("usr/lib"),
		"usr/lib/a":      symlink("../share/b"),
		"usr/share/b/c":  reg("x"),
		"loop":           symlink("loop2"),
		"loop2":          symlink("/loop"),
		"usr/lib/file/x": reg(""),
	}
	r := resolver{ctx: context.Background(), fs: fs}
	real, typ, ok, err := r.resolve("lib/a/c")
	if err != nil || !ok || real != "usr/share/b/c" || typ != '0' {
		t.Errorf("lib/a/c: %q %c %v %v", real, typ, ok, err)
	}
	if _, _, _, err := r.resolve("loop/x"); err == nil {
		t.Error("a symlink loop resolved")
	}
	if _, _, ok, _ := r.resolve("lib/missing/x"); ok {
		t.Error("a missing path exists")
	}
}
