package python

import (
	"fmt"
	"log/slog"
	"regexp"
	"strings"
)

var (
	commentRE = regexp.MustCompile(`(^|\s+)#.*$`)
	reqNameRE = regexp.MustCompile(`^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[^\]]*\])?\s*(.*)$`)
)

type logicalLine struct {
	n    int
	text string
}

// joinLines joins backslash continuations and drops comments and blank
// lines, as pip's requirement file parser does.
func joinLines(data []byte) []logicalLine {
	var out []logicalLine
	var cur []string
	first := 0
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		isComment := strings.HasPrefix(strings.TrimSpace(line), "#")
		if !strings.HasSuffix(line, "\\") || isComment {
			if isComment {
				line = " " + line
			}
			if cur != nil {
				cur = append(cur, line)
				out = append(out, logicalLine{first, strings.Join(cur, "")})
				cur = nil
			} else {
				out = append(out, logicalLine{i + 1, line})
			}
			continue
		}
		if cur == nil {
			first = i + 1
		}
		cur = append(cur, strings.TrimSuffix(line, "\\"))
	}
	if cur != nil {
		out = append(out, logicalLine{first, strings.Join(cur, "")})
	}
	kept := out[:0]
	for _, l := range out {
		l.text = strings.TrimSpace(commentRE.ReplaceAllString(l.text, ""))
		if l.text != "" {
			kept = append(kept, l)
		}
	}
	return kept
}

// ignoredOptions are requirements-file options that only say where pip
// finds files; gantry takes them from its own sources.
var ignoredOptions = map[string]bool{
	"-i": true, "--index-url": true, "--extra-index-url": true, "--no-index": true,
	"-f": true, "--find-links": true, "--trusted-host": true, "--pre": true,
	"--prefer-binary": true, "--only-binary": true, "--no-binary": true, "--use-feature": true,
}

func parseRequirements(file string, data []byte, log *slog.Logger) ([]Requirement, error) {
	var reqs []Requirement
	for _, l := range joinLines(data) {
		where := fmt.Sprintf("%s:%d", file, l.n)
		if strings.HasPrefix(l.text, "-") {
			opt, _, _ := strings.Cut(strings.Fields(l.text)[0], "=")
			switch {
			case opt == "--require-hashes":
			case ignoredOptions[opt]:
				log.Info("lock file option ignored: gantry takes indexes and find-links from its own sources", "where", where, "option", opt)
			case opt == "-r" || opt == "--requirement" || opt == "-c" || opt == "--constraint":
				return nil, fmt.Errorf("%s: %s (including another file) is not supported: a lock lists every requirement itself; %s", where, opt, lockHint)
			case opt == "-e" || opt == "--editable":
				return nil, fmt.Errorf("%s: %s (an editable install) is not supported: gantry installs pinned wheels only", where, opt)
			default:
				return nil, fmt.Errorf("%s: unknown option %s", where, opt)
			}
			continue
		}
		r, err := parseRequirementLine(where, l.text)
		if err != nil {
			return nil, err
		}
		r.File, r.Line = file, l.n
		reqs = append(reqs, r)
	}
	if err := checkDuplicates(reqs); err != nil {
		return nil, err
	}
	return reqs, nil
}

// parseRequirementLine parses "name[extras]==1.0 ; markers --hash=sha256:...".
func parseRequirementLine(where, line string) (Requirement, error) {
	spec, opts := splitOptions(line)
	spec, markers, _ := strings.Cut(spec, ";")
	markers = strings.TrimSpace(markers)
	m := reqNameRE.FindStringSubmatch(strings.TrimSpace(spec))
	if m == nil {
		return Requirement{}, fmt.Errorf("%s: %q is not a requirement (want name==version --hash=sha256:...)", where, strings.TrimSpace(spec))
	}
	r := Requirement{Name: normalizeName(m[1]), Markers: markers}
	where += ": " + r.Name
	version, err := pinnedVersion(where, m[3])
	if err != nil {
		return Requirement{}, err
	}
	r.Version = version
	if markers != "" {
		if _, err := parseMarker(markers); err != nil {
			return Requirement{}, fmt.Errorf("%s: %w", where, err)
		}
	}
	if r.Hashes, err = hashOptions(where, opts); err != nil {
		return Requirement{}, err
	}
	if len(r.Hashes) == 0 {
		return Requirement{}, fmt.Errorf("%s: no --hash=sha256:...; gantry installs only hash-pinned wheels: %s", where, lockHint)
	}
	return r, nil
}

// splitOptions splits a requirement line, as pip does, into the
// requirement and its options, which start at the first word beginning
// with "-".
func splitOptions(line string) (string, []string) {
	words := strings.Fields(line)
	split := len(words)
	for i, w := range words {
		if strings.HasPrefix(w, "-") {
			split = i
			break
		}
	}
	return strings.Join(words[:split], " "), words[split:]
}

// pinnedVersion returns the version of a "==version" (or "(==version)")
// specifier, refusing a URL, no version, or anything but one version.
func pinnedVersion(where, spec string) (string, error) {
	version := strings.TrimSpace(spec)
	version = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(version, "("), ")"))
	switch {
	case strings.HasPrefix(version, "@"):
		return "", fmt.Errorf("%s: a direct URL reference is not supported: pin a version with == and let gantry find the wheel in its sources", where)
	case version == "":
		return "", fmt.Errorf("%s: no version: pin it with ==; %s", where, lockHint)
	case !strings.HasPrefix(version, "==") || strings.HasPrefix(version, "===") ||
		strings.ContainsAny(version, ",*") || strings.ContainsAny(version[2:], "<>=!~"):
		return "", fmt.Errorf("%s: not pinned to one version (%s): pin it with ==; %s", where, version, lockHint)
	}
	v := strings.TrimSpace(version[2:])
	if _, err := parseVersion(v); err != nil {
		return "", fmt.Errorf("%s: %w", where, err)
	}
	return v, nil
}

// hashOptions reads the --hash options of a requirement line, returning
// the sha256 ones as "sha256:<hex>" (other algorithms are skipped).
func hashOptions(where string, opts []string) ([]string, error) {
	var hashes []string
	for i := 0; i < len(opts); i++ {
		opt, val, hasVal := strings.Cut(opts[i], "=")
		if opt != "--hash" {
			return nil, fmt.Errorf("%s: option %s is not supported on a requirement line", where, opt)
		}
		if !hasVal {
			if i+1 >= len(opts) {
				return nil, fmt.Errorf("%s: --hash without a value", where)
			}
			i++
			val = opts[i]
		}
		alg, hex, ok := strings.Cut(val, ":")
		switch {
		case !ok:
			return nil, fmt.Errorf("%s: --hash=%s is not ALGORITHM:HEX", where, val)
		case alg != "sha256":
			continue // pip also accepts sha384 and sha512; gantry checks sha256
		case !sha256RE.MatchString(hex):
			return nil, fmt.Errorf("%s: --hash=%s is not a sha256 (64 lowercase hex digits)", where, val)
		}
		hashes = appendUnique(hashes, "sha256:"+hex)
	}
	return hashes, nil
}
