package layers

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
)

// elfHeadSize is how much of a file the builder looks at to tell an ELF
// object's type, machine, class and byte order (e_ident, e_type, e_machine).
const elfHeadSize = 20

// ELFFile is a regular file of a layer that starts with the ELF magic, as
// its first bytes describe it. The builder records them while it writes the
// layer (no second read), and the cache record keeps them for hits.
type ELFFile struct {
	Name    string      `json:"name"` // the path in the image, without the leading "/"
	Type    elf.Type    `json:"type"` // ET_EXEC, ET_DYN, ...
	Machine elf.Machine `json:"machine"`
	Class   elf.Class   `json:"class"` // ELFCLASS32 or ELFCLASS64
	Data    elf.Data    `json:"data"`  // ELFDATA2LSB (little-endian) or ELFDATA2MSB
}

// elfHeader reads an ELF file's description from its first bytes.
func elfHeader(name string, head []byte) (ELFFile, bool) {
	if len(head) < elfHeadSize || string(head[:4]) != elf.ELFMAG {
		return ELFFile{}, false
	}
	f := ELFFile{Name: name, Class: elf.Class(head[elf.EI_CLASS]), Data: elf.Data(head[elf.EI_DATA])}
	var bo binary.ByteOrder
	switch f.Data {
	case elf.ELFDATA2LSB:
		bo = binary.LittleEndian
	case elf.ELFDATA2MSB:
		bo = binary.BigEndian
	default:
		return f, true // no byte order: type and machine unknown
	}
	f.Type = elf.Type(bo.Uint16(head[16:18]))
	f.Machine = elf.Machine(bo.Uint16(head[18:20]))
	return f, true
}

// ELFFiles lists the layer's ELF files, sorted by name (built or cached).
func (l *Layer) ELFFiles() []ELFFile { return append([]ELFFile(nil), l.elf...) }

type elfTarget struct {
	machine elf.Machine
	class   elf.Class
	data    elf.Data
}

// elfTargetOf is what an OCI architecture runs; ok is false for an
// architecture gantry has no table entry for.
func elfTargetOf(arch string) (elfTarget, bool) {
	switch arch {
	case "amd64":
		return elfTarget{elf.EM_X86_64, elf.ELFCLASS64, elf.ELFDATA2LSB}, true
	case "arm64":
		return elfTarget{elf.EM_AARCH64, elf.ELFCLASS64, elf.ELFDATA2LSB}, true
	case "arm":
		return elfTarget{elf.EM_ARM, elf.ELFCLASS32, elf.ELFDATA2LSB}, true
	case "386":
		return elfTarget{elf.EM_386, elf.ELFCLASS32, elf.ELFDATA2LSB}, true
	case "ppc64le":
		return elfTarget{elf.EM_PPC64, elf.ELFCLASS64, elf.ELFDATA2LSB}, true
	case "s390x":
		return elfTarget{elf.EM_S390, elf.ELFCLASS64, elf.ELFDATA2MSB}, true
	case "riscv64":
		return elfTarget{elf.EM_RISCV, elf.ELFCLASS64, elf.ELFDATA2LSB}, true
	}
	return elfTarget{}, false
}

func machineName(m elf.Machine) string {
	switch m {
	case elf.EM_X86_64:
		return "x86-64"
	case elf.EM_AARCH64:
		return "aarch64"
	case elf.EM_ARM:
		return "ARM"
	case elf.EM_386:
		return "i386"
	case elf.EM_PPC64:
		return "PPC64"
	case elf.EM_S390:
		return "S390"
	case elf.EM_RISCV:
		return "RISC-V"
	}
	return m.String()
}

func className(c elf.Class) string {
	switch c {
	case elf.ELFCLASS32:
		return "32-bit"
	case elf.ELFCLASS64:
		return "64-bit"
	}
	return c.String()
}

func dataName(d elf.Data) string {
	switch d {
	case elf.ELFDATA2LSB:
		return "little-endian"
	case elf.ELFDATA2MSB:
		return "big-endian"
	}
	return d.String()
}

// CheckArch checks that every executable and shared library among files
// (from ELFFiles) is built for the platform os/arch/variant: machine, class
// (32/64-bit) and byte order, for amd64, arm64, arm, 386, ppc64le, s390x and
// riscv64. The error names the first file that is not, and both sides:
//
//	app/vendor/libz.so.1 is x86-64, but linux/arm64/v8 needs aarch64 (use ${TARGETARCH} in from:, or platforms:)
//
// Not checked: other architectures and windows images (nil), relocatable
// objects, core files and eBPF programs (which are not run by the CPU), and
// what the first bytes do not tell (the ARM variant, float ABI, libc).
func CheckArch(files []ELFFile, os, arch, variant string) error {
	want, ok := elfTargetOf(arch)
	if !ok || os == "windows" {
		return nil
	}
	plat := os + "/" + arch
	if variant != "" {
		plat += "/" + variant
	}
	var first error
	more := 0
	for _, f := range files {
		if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN || f.Machine == elf.EM_BPF || f.Machine == elf.EM_NONE {
			continue
		}
		var err error
		switch {
		case f.Machine != want.machine:
			err = fmt.Errorf("%s is %s, but %s needs %s", f.Name, machineName(f.Machine), plat, machineName(want.machine))
		case f.Class != want.class:
			err = fmt.Errorf("%s is %s %s, but %s needs %s %s", f.Name, className(f.Class), machineName(f.Machine), plat, className(want.class), machineName(want.machine))
		case f.Data != want.data:
			err = fmt.Errorf("%s is %s %s, but %s needs %s %s", f.Name, dataName(f.Data), machineName(f.Machine), plat, dataName(want.data), machineName(want.machine))
		default:
			continue
		}
		if first == nil {
			first = err
		} else {
			more++
		}
	}
	if first == nil {
		return nil
	}
	if more > 0 {
		return fmt.Errorf("%w (use ${TARGETARCH} in from:, or platforms:); %d more ELF files do not match %s either", first, more, plat)
	}
	return fmt.Errorf("%w (use ${TARGETARCH} in from:, or platforms:)", first)
}
