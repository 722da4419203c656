// Command gen writes the wheels, lock files and wheelhouse that the tests of
// package python use. Run it from layers/python:
//
//	go run ./testdata/wheels/gen
//
// It needs gcc and aarch64-linux-gnu-gcc (Debian: gcc, gcc-aarch64-linux-gnu)
// to compile tfnative's shared library for x86_64 and aarch64, and checks
// that each is an ELF shared object for the right machine that needs no
// library and no symbol from outside (so the same file serves manylinux and
// musllinux). Its output is byte-for-byte the same on every run with the
// same compilers and Go: zip members are sorted, deflated and dated
// 2024-01-01; the generated files are committed so that the tests need no
// compiler.
package main

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// mtime is every zip member's modification time.
var mtime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

const cSource = `/* tfnative: a tiny native library for gantry's wheel tests. */
int tf_add(int a, int b) { return a + b; }

const char *tf_arch(void) {
#if defined(__x86_64__)
	return "x86_64";
#elif defined(__aarch64__)
	return "aarch64";
#else
	return "unknown";
#endif
}
`

const header = `/* tfnative.h: the C interface of libtfnative.so. */
#ifndef TFNATIVE_H
#define TFNATIVE_H
int tf_add(int a, int b);
const char *tf_arch(void);
#endif
`

const nativeInit = `"""tfnative: loads libtfnative.so beside this file with ctypes."""

import ctypes
import os

__version__ = "1.0.0"
__all__ = ["add", "arch"]

_lib = ctypes.CDLL(os.path.join(os.path.dirname(os.path.abspath(__file__)), "libtfnative.so"))
_lib.tf_add.argtypes = (ctypes.c_int, ctypes.c_int)
_lib.tf_add.restype = ctypes.c_int
_lib.tf_arch.argtypes = ()
_lib.tf_arch.restype = ctypes.c_char_p


def add(a, b):
    """Return a + b, computed by the native library."""
    return _lib.tf_add(a, b)


def arch():
    """Return the machine the native library was compiled for."""
    return _lib.tf_arch().decode("ascii")
`

const adminInit = `"""taskflow_admin: administration commands for TaskFlow."""

__version__ = "0.3.0"
`

const adminCLI = `"""The taskflow-admin command."""

import sys

import taskflow_deps


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    print("taskflow-admin", " ".join(taskflow_deps.slugify(a) for a in argv))
    return 0
`

const adminLegacy = `#!python
"""taskflow-admin-legacy: the old entry point, kept for scripts that call it."""

import sys

from taskflow_admin.cli import main

sys.exit(main())
`

const adminReadme = "taskflow-admin keeps its shared data here.\n"

const depsInit = `"""taskflow_deps: small helpers shared by the TaskFlow services."""

import re
import unicodedata

__version__ = "1.0.0"
__all__ = ["__version__", "slugify"]

_NON_WORD = re.compile(r"[^a-z0-9]+")


def slugify(text, max_length=48):
    """Return a lowercase ASCII slug: "Ship v1.0 (beta)!" -> "ship-v1-0-beta"."""
    normalized = unicodedata.normalize("NFKD", str(text))
    ascii_text = normalized.encode("ascii", "ignore").decode("ascii").lower()
    slug = _NON_WORD.sub("-", ascii_text).strip("-")
    if max_length and len(slug) > max_length:
        slug = slug[:max_length].rstrip("-")
    return slug or "task"
`

// member is one file of a wheel.
type member struct {
	name string
	data []byte
	exec bool
}

// wheel is one wheel to write.
type wheel struct {
	dist, version, tag string
	purelib            bool
	metadata           string // extra METADATA fields
	members            []member
}

func (w wheel) filename() string { return w.dist + "-" + w.version + "-" + w.tag + ".whl" }

func (w wheel) distInfo() string { return w.dist + "-" + w.version + ".dist-info" }

// expandTags lists the tags of a compressed tag ("py3-none-a.b").
func expandTags(tag string) []string {
	parts := strings.Split(tag, "-")
	var out []string
	for _, py := range strings.Split(parts[0], ".") {
		for _, abi := range strings.Split(parts[1], ".") {
			for _, plat := range strings.Split(parts[2], ".") {
				out = append(out, py+"-"+abi+"-"+plat)
			}
		}
	}
	return out
}

func recordHash(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256=" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// bytes returns the wheel file: its members plus METADATA, WHEEL,
// top_level.txt and RECORD, sorted, deflated, at mtime.
func (w wheel) bytes() ([]byte, error) {
	di := w.distInfo()
	name := strings.ReplaceAll(w.dist, "_", "-")
	meta := fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\n%s", name, w.version, w.metadata)
	purelib := "false"
	if w.purelib {
		purelib = "true"
	}
	wheelFile := "Wheel-Version: 1.0\nGenerator: gantry-testdata-gen\nRoot-Is-Purelib: " + purelib + "\n"
	for _, t := range expandTags(w.tag) {
		wheelFile += "Tag: " + t + "\n"
	}
	members := append([]member(nil), w.members...)
	members = append(members,
		member{name: di + "/METADATA", data: []byte(meta)},
		member{name: di + "/WHEEL", data: []byte(wheelFile)},
		member{name: di + "/top_level.txt", data: []byte(w.dist + "\n")},
	)
	var record strings.Builder
	sort.Slice(members, func(i, j int) bool { return members[i].name < members[j].name })
	for _, m := range members {
		fmt.Fprintf(&record, "%s,%s,%d\n", m.name, recordHash(m.data), len(m.data))
	}
	fmt.Fprintf(&record, "%s/RECORD,,\n", di)
	members = append(members, member{name: di + "/RECORD", data: []byte(record.String())})

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		h := &zip.FileHeader{Name: m.name, Method: zip.Deflate, Modified: mtime}
		mode := os.FileMode(0o644)
		if m.exec {
			mode = 0o755
		}
		h.SetMode(mode)
		f, err := zw.CreateHeader(h)
		if err != nil {
			return nil, err
		}
		if _, err := f.Write(m.data); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// compile builds libtfnative.so with cc and checks that it is a
// self-contained ELF shared object for machine.
func compile(tmp, cc string, machine elf.Machine) ([]byte, error) {
	src := filepath.Join(tmp, "tf.c")
	if err := os.WriteFile(src, []byte(cSource), 0o644); err != nil {
		return nil, err
	}
	out := filepath.Join(tmp, "libtfnative-"+machine.String()+".so")
	cmd := exec.Command(cc, "-shared", "-fPIC", "-O2", "-nostdlib", "-fno-stack-protector",
		"-fno-asynchronous-unwind-tables", "-Wl,--build-id=none", "-Wl,-soname,libtfnative.so", "-s",
		"-o", out, src)
	cmd.Dir = tmp
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w (install it: apt-get install gcc gcc-aarch64-linux-gnu)", cc, err)
	}
	f, err := elf.Open(out)
	if err != nil {
		return nil, fmt.Errorf("%s output: %w", cc, err)
	}
	defer f.Close()
	switch {
	case f.Machine != machine:
		return nil, fmt.Errorf("%s built a %s library, want %s", cc, f.Machine, machine)
	case f.Class != elf.ELFCLASS64 || f.Type != elf.ET_DYN:
		return nil, fmt.Errorf("%s built a %s %s, want a 64-bit shared object", cc, f.Class, f.Type)
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		return nil, fmt.Errorf("%s: the library needs %v (%v); it must need none", cc, libs, err)
	}
	if syms, err := f.ImportedSymbols(); err != nil || len(syms) > 0 {
		return nil, fmt.Errorf("%s: the library imports %v (%v); it must import none", cc, syms, err)
	}
	syms, err := f.DynamicSymbols()
	if err != nil {
		return nil, fmt.Errorf("%s: reading dynamic symbols: %w", cc, err)
	}
	exported := map[string]bool{}
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Section != elf.SHN_UNDEF {
			exported[s.Name] = true
		}
	}
	if !exported["tf_add"] || !exported["tf_arch"] {
		return nil, fmt.Errorf("%s: the library does not export tf_add and tf_arch", cc)
	}
	return os.ReadFile(out)
}

func main() {
	out := flag.String("out", "testdata/wheels", "directory to write into")
	flag.Parse()
	if err := run(*out); err != nil {
		log.Fatal(err)
	}
}

func run(out string) error {
	tmp, err := os.MkdirTemp("", "gantry-wheels-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	libs := map[string][]byte{}
	for _, c := range []struct {
		arch, cc string
		machine  elf.Machine
	}{{"x86_64", "gcc", elf.EM_X86_64}, {"aarch64", "aarch64-linux-gnu-gcc", elf.EM_AARCH64}} {
		if libs[c.arch], err = compile(tmp, c.cc, c.machine); err != nil {
			return err
		}
	}

	var wheels []wheel
	for _, arch := range []string{"x86_64", "aarch64"} {
		for _, plat := range []string{"manylinux_2_17_" + arch + ".manylinux2014_" + arch, "musllinux_1_2_" + arch} {
			wheels = append(wheels, wheel{
				dist: "tfnative", version: "1.0.0", tag: "py3-none-" + plat,
				metadata: "Summary: A tiny native library (gantry test fixture).\nRequires-Python: >=3.8\n",
				members: []member{
					{name: "tfnative/__init__.py", data: []byte(nativeInit)},
					{name: "tfnative/libtfnative.so", data: libs[arch], exec: true},
					{name: "tfnative-1.0.0.data/headers/tfnative.h", data: []byte(header)},
				},
			})
		}
	}
	wheels = append(wheels,
		wheel{
			dist: "taskflow_admin", version: "0.3.0", tag: "py3-none-any", purelib: true,
			metadata: "Summary: TaskFlow administration commands (gantry test fixture).\nRequires-Python: >=3.9\nRequires-Dist: taskflow-deps==1.0.0\n",
			members: []member{
				{name: "taskflow_admin/__init__.py", data: []byte(adminInit)},
				{name: "taskflow_admin/cli.py", data: []byte(adminCLI)},
				{name: "taskflow_admin-0.3.0.data/scripts/taskflow-admin-legacy", data: []byte(adminLegacy), exec: true},
				{name: "taskflow_admin-0.3.0.data/data/share/taskflow-admin/README.txt", data: []byte(adminReadme)},
				{name: "taskflow_admin-0.3.0.dist-info/entry_points.txt", data: []byte("[console_scripts]\ntaskflow-admin = taskflow_admin.cli:main\n")},
			},
		},
		wheel{
			dist: "taskflow_deps", version: "1.0.0", tag: "py3-none-any", purelib: true,
			metadata: "Summary: Small helpers shared by the TaskFlow services (gantry test fixture).\nRequires-Python: >=3.9\n",
			members:  []member{{name: "taskflow_deps/__init__.py", data: []byte(depsInit)}},
		},
	)

	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	hashes := map[string][]string{} // project → sha256s
	type file struct{ name, sha string }
	files := map[string][]file{}
	var sizes = map[string]int{}
	for _, w := range wheels {
		data, err := w.bytes()
		if err != nil {
			return fmt.Errorf("%s: %w", w.filename(), err)
		}
		if err := os.WriteFile(filepath.Join(out, w.filename()), data, 0o644); err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		sha := hex.EncodeToString(sum[:])
		project := strings.ReplaceAll(w.dist, "_", "-")
		hashes[project] = append(hashes[project], sha)
		files[project] = append(files[project], file{w.filename(), sha})
		sizes[w.filename()] = len(data)
	}
	projects := []struct{ name, version, via string }{
		{"taskflow-admin", "0.3.0", "-r requirements.in"},
		{"taskflow-deps", "1.0.0", "taskflow-admin"},
		{"tfnative", "1.0.0", "-r requirements.in"},
	}

	var req strings.Builder
	req.WriteString("#\n# This file is autogenerated by pip-compile with Python 3.13\n# by the following command:\n#\n#    pip-compile --generate-hashes requirements.in\n#\n")
	for _, p := range projects {
		hs := append([]string(nil), hashes[p.name]...)
		sort.Strings(hs)
		fmt.Fprintf(&req, "%s==%s \\\n", p.name, p.version)
		for i, h := range hs {
			sep := " \\"
			if i == len(hs)-1 {
				sep = ""
			}
			fmt.Fprintf(&req, "    --hash=sha256:%s%s\n", h, sep)
		}
		fmt.Fprintf(&req, "    # via %s\n", p.via)
	}
	if err := os.WriteFile(filepath.Join(out, "requirements.lock"), []byte(req.String()), 0o644); err != nil {
		return err
	}

	var lock strings.Builder
	lock.WriteString("lock-version = \"1.0\"\ncreated-by = \"gantry-testdata-gen\"\nrequires-python = \">=3.9\"\n")
	for _, p := range projects {
		fmt.Fprintf(&lock, "\n[[packages]]\nname = %q\nversion = %q\n", p.name, p.version)
		fs := files[p.name]
		sort.Slice(fs, func(i, j int) bool { return fs[i].name < fs[j].name })
		lock.WriteString("wheels = [\n")
		for _, f := range fs {
			fmt.Fprintf(&lock, "  { name = %q, path = %q, size = %d, hashes = { sha256 = %q } },\n", f.name, f.name, sizes[f.name], f.sha)
		}
		lock.WriteString("]\n")
	}
	return os.WriteFile(filepath.Join(out, "pylock.toml"), []byte(lock.String()), 0o644)
}
