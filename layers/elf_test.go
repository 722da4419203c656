package layers

import (
	"archive/tar"
	"debug/elf"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
)

// elfBytes is a 64-byte ELF header (all the builder looks at is in it).
func elfBytes(class elf.Class, data elf.Data, typ elf.Type, m elf.Machine) string {
	b := make([]byte, 64)
	copy(b, elf.ELFMAG)
	b[elf.EI_CLASS], b[elf.EI_DATA], b[elf.EI_VERSION] = byte(class), byte(data), byte(elf.EV_CURRENT)
	var bo binary.ByteOrder = binary.LittleEndian
	if data == elf.ELFDATA2MSB {
		bo = binary.BigEndian
	}
	bo.PutUint16(b[16:], uint16(typ))
	bo.PutUint16(b[18:], uint16(m))
	bo.PutUint32(b[20:], uint32(elf.EV_CURRENT))
	return string(b)
}

var (
	elfX86    = elfBytes(elf.ELFCLASS64, elf.ELFDATA2LSB, elf.ET_DYN, elf.EM_X86_64)
	elfArm64  = elfBytes(elf.ELFCLASS64, elf.ELFDATA2LSB, elf.ET_EXEC, elf.EM_AARCH64)
	elfArm32  = elfBytes(elf.ELFCLASS32, elf.ELFDATA2LSB, elf.ET_EXEC, elf.EM_ARM)
	elfS390x  = elfBytes(elf.ELFCLASS64, elf.ELFDATA2MSB, elf.ET_EXEC, elf.EM_S390)
	elfBPF    = elfBytes(elf.ELFCLASS64, elf.ELFDATA2LSB, elf.ET_REL, elf.EM_BPF)
	elfObject = elfBytes(elf.ELFCLASS64, elf.ELFDATA2LSB, elf.ET_REL, elf.EM_X86_64)
)

// TestELFFiles: the builder records the ELF files it writes (no second
// read) and the cache record keeps them, so a hit has them too.
func TestELFFiles(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]file{
		"bin/server":       {data: elfArm64 + "rest of the program", mode: 0o755},
		"vendor/libz.so.1": {data: elfX86},
		"lib/arm32":        {data: elfArm32, mode: 0o755},
		"lib/s390x":        {data: elfS390x, mode: 0o755},
		"bpf/probe.o":      {data: elfBPF},
		"main.py":          {data: "print('not ELF')"},
		"short":            {data: "\x7fELF\x02\x01"}, // too short to tell
		"libz-link.so":     {link: "vendor/libz.so.1"},
		"certs/x.pem":      {data: elfX86}, // read whole for the secret scan
		"web/app.js":       {data: elfX86}, // Precompress: the .gz is not ELF
	})
	spec := Spec{Sources: []Source{{From: src, To: "/app"}}, Precompress: true}
	cache := newCache(t)
	b := &Builder{Cache: cache, MTime: testMTime}
	l := mustBuild(t, b, mustWalk(t, spec))
	want := []ELFFile{
		{Name: "app/bin/server", Type: elf.ET_EXEC, Machine: elf.EM_AARCH64, Class: elf.ELFCLASS64, Data: elf.ELFDATA2LSB},
		{Name: "app/bpf/probe.o", Type: elf.ET_REL, Machine: elf.EM_BPF, Class: elf.ELFCLASS64, Data: elf.ELFDATA2LSB},
		{Name: "app/certs/x.pem", Type: elf.ET_DYN, Machine: elf.EM_X86_64, Class: elf.ELFCLASS64, Data: elf.ELFDATA2LSB},
		{Name: "app/lib/arm32", Type: elf.ET_EXEC, Machine: elf.EM_ARM, Class: elf.ELFCLASS32, Data: elf.ELFDATA2LSB},
		{Name: "app/lib/s390x", Type: elf.ET_EXEC, Machine: elf.EM_S390, Class: elf.ELFCLASS64, Data: elf.ELFDATA2MSB},
		{Name: "app/vendor/libz.so.1", Type: elf.ET_DYN, Machine: elf.EM_X86_64, Class: elf.ELFCLASS64, Data: elf.ELFDATA2LSB},
		{Name: "app/web/app.js", Type: elf.ET_DYN, Machine: elf.EM_X86_64, Class: elf.ELFCLASS64, Data: elf.ELFDATA2LSB},
	}
	if got := l.ELFFiles(); !reflect.DeepEqual(got, want) {
		t.Errorf("ELFFiles:\n got %+v\nwant %+v", got, want)
	}
	layerTar(t, l, testMTime) // the peeked bytes are in the layer
	for _, m := range layerTar(t, l, testMTime) {
		if m.hdr.Name == "app/bin/server" && string(m.data) != elfArm64+"rest of the program" {
			t.Errorf("app/bin/server content %q", m.data)
		}
	}

	// A hit (another Builder, same cache) has the same list, with no read.
	b2 := &Builder{Cache: cache, MTime: testMTime}
	l2 := mustBuild(t, b2, mustWalk(t, spec))
	if !l2.Cached() || b2.Stats().FilesRead != 0 {
		t.Fatalf("second build: cached %v, stats %+v", l2.Cached(), b2.Stats())
	}
	if got := l2.ELFFiles(); !reflect.DeepEqual(got, want) {
		t.Errorf("ELFFiles on a hit:\n got %+v\nwant %+v", got, want)
	}
	if err := CheckArch(l2.ELFFiles(), "linux", "arm64", "v8"); err == nil || !strings.HasPrefix(err.Error(), "app/certs/x.pem is x86-64, but linux/arm64/v8 needs aarch64") {
		t.Errorf("CheckArch on the hit: %v", err)
	}

	// Generated content is looked at too.
	gen := []Entry{{Name: "usr/bin/tool", Type: tar.TypeReg, Mode: 0o755, Data: []byte(elfX86)}}
	if got := mustBuild(t, &Builder{Cache: newCache(t), MTime: testMTime}, gen).ELFFiles(); len(got) != 1 || got[0].Name != "usr/bin/tool" {
		t.Errorf("inline ELF: %+v", got)
	}
}

func TestCheckArch(t *testing.T) {
	x86 := ELFFile{Name: "app/vendor/libz.so.1", Type: elf.ET_DYN, Machine: elf.EM_X86_64, Class: elf.ELFCLASS64, Data: elf.ELFDATA2LSB}
	arm64 := ELFFile{Name: "app/bin/server", Type: elf.ET_EXEC, Machine: elf.EM_AARCH64, Class: elf.ELFCLASS64, Data: elf.ELFDATA2LSB}
	arm32 := ELFFile{Name: "app/lib/arm32", Type: elf.ET_EXEC, Machine: elf.EM_ARM, Class: elf.ELFCLASS32, Data: elf.ELFDATA2LSB}
	ilp32 := ELFFile{Name: "app/ilp32", Type: elf.ET_EXEC, Machine: elf.EM_AARCH64, Class: elf.ELFCLASS32, Data: elf.ELFDATA2LSB}
	ppcBE := ELFFile{Name: "app/ppc", Type: elf.ET_EXEC, Machine: elf.EM_PPC64, Class: elf.ELFCLASS64, Data: elf.ELFDATA2MSB}
	bpf := ELFFile{Name: "app/probe.o", Type: elf.ET_REL, Machine: elf.EM_BPF, Class: elf.ELFCLASS64, Data: elf.ELFDATA2LSB}
	obj := ELFFile{Name: "app/x.o", Type: elf.ET_REL, Machine: elf.EM_X86_64, Class: elf.ELFCLASS64, Data: elf.ELFDATA2LSB}
	tests := []struct {
		files             []ELFFile
		os, arch, variant string
		want              string // "" for no error
	}{
		{[]ELFFile{x86}, "linux", "arm64", "v8", "app/vendor/libz.so.1 is x86-64, but linux/arm64/v8 needs aarch64 (use ${TARGETARCH} in from:, or platforms:)"},
		{[]ELFFile{x86}, "linux", "amd64", "", ""},
		{[]ELFFile{arm64}, "linux", "arm64", "v8", ""},
		{[]ELFFile{arm64}, "linux", "amd64", "", "app/bin/server is aarch64, but linux/amd64 needs x86-64 (use ${TARGETARCH} in from:, or platforms:)"},
		{[]ELFFile{arm32}, "linux", "arm", "v7", ""},
		{[]ELFFile{arm32}, "linux", "arm64", "", "app/lib/arm32 is ARM, but linux/arm64 needs aarch64 (use ${TARGETARCH} in from:, or platforms:)"},
		{[]ELFFile{ilp32}, "linux", "arm64", "", "app/ilp32 is 32-bit aarch64, but linux/arm64 needs 64-bit aarch64 (use ${TARGETARCH} in from:, or platforms:)"},
		{[]ELFFile{ppcBE}, "linux", "ppc64le", "", "app/ppc is big-endian PPC64, but linux/ppc64le needs little-endian PPC64 (use ${TARGETARCH} in from:, or platforms:)"},
		{[]ELFFile{x86}, "linux", "386", "", "app/vendor/libz.so.1 is x86-64, but linux/386 needs i386 (use ${TARGETARCH} in from:, or platforms:)"},
		{[]ELFFile{x86}, "linux", "s390x", "", "app/vendor/libz.so.1 is x86-64, but linux/s390x needs S390 (use ${TARGETARCH} in from:, or platforms:)"},
		{[]ELFFile{x86}, "linux", "riscv64", "", "app/vendor/libz.so.1 is x86-64, but linux/riscv64 needs RISC-V (use ${TARGETARCH} in from:, or platforms:)"},
		{[]ELFFile{arm64, arm32, x86}, "linux", "amd64", "", "app/bin/server is aarch64, but linux/amd64 needs x86-64 (use ${TARGETARCH} in from:, or platforms:); 1 more ELF files do not match linux/amd64 either"},
		{[]ELFFile{bpf, obj}, "linux", "arm64", "", ""}, // not run by the CPU / not linked yet
		{[]ELFFile{x86}, "linux", "mips64le", "", ""},   // no table entry: not checked
		{[]ELFFile{x86}, "windows", "arm64", "", ""},    // not ELF land
		{nil, "linux", "arm64", "", ""},
	}
	for _, tt := range tests {
		err := CheckArch(tt.files, tt.os, tt.arch, tt.variant)
		if got := ""; err != nil {
			got = err.Error()
			if got != tt.want {
				t.Errorf("CheckArch(%s/%s/%s) = %q\nwant %q", tt.os, tt.arch, tt.variant, got, tt.want)
			}
		} else if tt.want != "" {
			t.Errorf("CheckArch(%s/%s/%s) = nil, want %q", tt.os, tt.arch, tt.variant, tt.want)
		}
	}
}
