package python

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// legacyManylinux are the PEP 513/571/599 names of manylinux_2_5, _2_12 and
// _2_17.
var legacyManylinux = map[[2]int]string{{2, 17}: "manylinux2014", {2, 12}: "manylinux2010", {2, 5}: "manylinux1"}

// lastGlibcMinor is packaging's guess at the last minor version of a glibc
// major version older than the target's (there is none yet: glibc is 2.x).
const lastGlibcMinor = 50

// PlatformTags lists the wheel platform tags t can load, best first, as
// packaging.tags (vendored by pip) computes them on that platform:
// manylinux_<glibc>_<arch> down to 2_5 on x86_64/i686 and 2_17 elsewhere
// (each legacy alias right after its manylinux_2_N tag), or musllinux_1_N
// down to 1_0, then linux_<arch>.
func (t Target) PlatformTags() ([]string, error) {
	arch, err := t.Machine()
	if err != nil {
		return nil, err
	}
	var out []string
	switch t.Libc.Kind {
	case Glibc:
		// packaging checks the ABI of the running interpreter: armv7l must
		// be hard-float (what Debian's armhf and the official images are),
		// other 32-bit arm variants have no manylinux at all.
		manylinux := map[string]bool{"x86_64": true, "i686": true, "aarch64": true, "armv7l": true,
			"ppc64": true, "ppc64le": true, "s390x": true, "riscv64": true, "loongarch64": true}
		if !manylinux[arch] {
			break
		}
		tooOld := [2]int{2, 16}
		if arch == "x86_64" || arch == "i686" {
			tooOld = [2]int{2, 4}
		}
		maxes := [][2]int{{t.Libc.Major, t.Libc.Minor}}
		for major := t.Libc.Major - 1; major > 1; major-- {
			maxes = append(maxes, [2]int{major, lastGlibcMinor})
		}
		for _, m := range maxes {
			minMinor := -1
			if m[0] == tooOld[0] {
				minMinor = tooOld[1]
			}
			for minor := m[1]; minor > minMinor; minor-- {
				out = append(out, fmt.Sprintf("manylinux_%d_%d_%s", m[0], minor, arch))
				if legacy, ok := legacyManylinux[[2]int{m[0], minor}]; ok {
					out = append(out, legacy+"_"+arch)
				}
			}
		}
	case Musl:
		for minor := t.Libc.Minor; minor >= 0; minor-- {
			out = append(out, fmt.Sprintf("musllinux_%d_%d_%s", t.Libc.Major, minor, arch))
		}
	default:
		return nil, fmt.Errorf("%s: unknown C library %q (want %s or %s)", t.Platform(), t.Libc.Kind, Glibc, Musl)
	}
	return append(out, "linux_"+arch), nil
}

// Tags lists the PEP 425 tags CPython t.Python supports on t, best first,
// in the order of packaging.tags.sys_tags():
//
//	cpXY-cpXY-<platform>...   (cpXYm below 3.8)
//	cpXY-abi3-<platform>...
//	cpXY-none-<platform>...
//	cpXW-abi3-<platform>...   for W from Y-1 down to 2
//	pyXY-none-<platform>..., py3-none-<platform>..., pyXW-none-<platform>... down to py30
//	cpXY-none-any
//	pyXY-none-any, py3-none-any, pyXW-none-any... down to py30-none-any
//
// Debug and free-threaded (3.13t) builds are not supported.
func (t Target) Tags() ([]string, error) {
	if t.Python.Major != 3 {
		return nil, fmt.Errorf("%s: Python %s is not supported (Python 3 only)", t.Platform(), t.Python)
	}
	platforms, err := t.PlatformTags()
	if err != nil {
		return nil, err
	}
	xy := fmt.Sprintf("%d%d", t.Python.Major, t.Python.Minor)
	interp := "cp" + xy
	abi := interp
	if t.Python.Minor < 8 {
		abi += "m"
	}
	var out []string
	add := func(interp, abi string, plats []string) {
		for _, p := range plats {
			out = append(out, interp+"-"+abi+"-"+p)
		}
	}
	add(interp, abi, platforms)
	useABI3 := t.Python.Minor >= 2
	if useABI3 {
		add(interp, "abi3", platforms)
	}
	add(interp, "none", platforms)
	if useABI3 {
		for minor := t.Python.Minor - 1; minor > 1; minor-- {
			add(fmt.Sprintf("cp%d%d", t.Python.Major, minor), "abi3", platforms)
		}
	}
	pys := []string{"py" + xy, fmt.Sprintf("py%d", t.Python.Major)}
	for minor := t.Python.Minor - 1; minor >= 0; minor-- {
		pys = append(pys, fmt.Sprintf("py%d%d", t.Python.Major, minor))
	}
	for _, py := range pys {
		add(py, "none", platforms)
	}
	out = append(out, interp+"-none-any")
	for _, py := range pys {
		out = append(out, py+"-none-any")
	}
	return out, nil
}

// wheelName is a parsed wheel file name (PEP 427):
// {distribution}-{version}(-{build tag})?-{python}-{abi}-{platform}.whl.
type wheelName struct {
	Dist, Version string
	Build         int    // build tag number, -1 if none
	BuildSuffix   string // the rest of the build tag ("1abc" → "abc")
	Tag           string // as in the name: "py2.py3-none-any"
	Tags          []string
}

var (
	distNameRE = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9._]*[A-Za-z0-9])?$`)
	buildTagRE = regexp.MustCompile(`^(\d+)(.*)$`)
)

func parseWheelName(filename string) (wheelName, error) {
	base, ok := strings.CutSuffix(filename, ".whl")
	if !ok {
		return wheelName{}, fmt.Errorf("%s: not a wheel (no .whl suffix)", filename)
	}
	parts := strings.Split(base, "-")
	if len(parts) != 5 && len(parts) != 6 {
		return wheelName{}, fmt.Errorf("%s: not a valid wheel file name (want NAME-VERSION[-BUILD]-PY-ABI-PLATFORM.whl)", filename)
	}
	w := wheelName{Dist: parts[0], Version: parts[1], Build: -1}
	if !distNameRE.MatchString(w.Dist) {
		return wheelName{}, fmt.Errorf("%s: invalid project name %q in wheel file name", filename, w.Dist)
	}
	if _, err := parseVersion(w.Version); err != nil {
		return wheelName{}, fmt.Errorf("%s: invalid version in wheel file name: %w", filename, err)
	}
	if len(parts) == 6 {
		m := buildTagRE.FindStringSubmatch(parts[2])
		if m == nil {
			return wheelName{}, fmt.Errorf("%s: build tag %q does not start with a digit", filename, parts[2])
		}
		w.Build, _ = strconv.Atoi(m[1])
		w.BuildSuffix = m[2]
	}
	n := len(parts)
	w.Tag = strings.ToLower(strings.Join(parts[n-3:], "-"))
	for _, py := range strings.Split(strings.ToLower(parts[n-3]), ".") {
		for _, abi := range strings.Split(strings.ToLower(parts[n-2]), ".") {
			for _, plat := range strings.Split(strings.ToLower(parts[n-1]), ".") {
				if py == "" || abi == "" || plat == "" {
					return wheelName{}, fmt.Errorf("%s: empty component in compatibility tag %q", filename, w.Tag)
				}
				w.Tags = append(w.Tags, py+"-"+abi+"-"+plat)
			}
		}
	}
	return w, nil
}

// tagRanks maps each supported tag to its priority (0 is best).
func tagRanks(tags []string) map[string]int {
	ranks := make(map[string]int, len(tags))
	for i, tag := range tags {
		if _, ok := ranks[tag]; !ok {
			ranks[tag] = i
		}
	}
	return ranks
}

// rank is the best priority of any of w's tags, or -1 if none is supported.
func (w wheelName) rank(ranks map[string]int) (int, string) {
	best, bestTag := -1, ""
	for _, tag := range w.Tags {
		if r, ok := ranks[tag]; ok && (best < 0 || r < best) {
			best, bestTag = r, tag
		}
	}
	return best, bestTag
}

// normalizeName is a project name normalised as PEP 503 says: lowercase,
// runs of "-", "_" and "." replaced by one "-".
func normalizeName(name string) string {
	var b strings.Builder
	sep := false
	for _, c := range strings.ToLower(name) {
		if c == '-' || c == '_' || c == '.' {
			sep = true
			continue
		}
		if sep && b.Len() > 0 {
			b.WriteByte('-')
		}
		sep = false
		b.WriteRune(c)
	}
	return b.String()
}
