package python

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"
)

// Requirement is one pinned distribution of a lock file.
type Requirement struct {
	Name    string   // normalised as PEP 503 says ("taskflow-admin")
	Version string   // the == version
	Hashes  []string // "sha256:<hex>", at least one
	Markers string   // PEP 508 environment markers, "" for every platform
	// RequiresPython is a version specifier the target's Python must meet
	// (pylock.toml's requires-python), "" for none.
	RequiresPython string
	File           string // the lock file
	Line           int    // where the requirement starts in it
	// Files are the files a pylock.toml lists for the package (wheels and
	// sdist); none for a requirements file.
	Files []Candidate
}

func (r Requirement) String() string { return r.Name + "==" + r.Version }

// Applies evaluates r's markers for t.
func (r Requirement) Applies(t Target) (bool, error) {
	if r.Markers == "" {
		return true, nil
	}
	m, err := parseMarker(r.Markers)
	if err != nil {
		return false, fmt.Errorf("%s:%d: %s: %w", r.File, r.Line, r.Name, err)
	}
	ok, err := m.eval(t)
	if err != nil {
		return false, fmt.Errorf("%s:%d: %s: %s: %w", r.File, r.Line, r.Name, t.Platform(), err)
	}
	return ok, nil
}

const (
	lockTool = "pip-compile --generate-hashes (or uv pip compile --generate-hashes)"
	lockHint = "make the lock with " + lockTool
	// pylockHint is for pylock.toml files (uv writes them with hashes).
	pylockHint = "make the lock with uv export --format pylock.toml (or another tool that records sha256 hashes)"
)

var pylockNameRE = regexp.MustCompile(`^pylock\.([^.]+\.)?toml$`)

// ParseLock reads a lock file: a pylock.toml (PEP 751; any name ending in
// .toml) or a requirements file with hashes, as pip-compile
// --generate-hashes and uv export write it. Every requirement must be
// name==version with at least one sha256 hash. Options a requirements file
// may carry (--index-url, --find-links, ...) are ignored, with a note to
// log (which may be nil); -r, -c and -e are refused.
func ParseLock(file string, log *slog.Logger) ([]Requirement, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading lock file: %w", err)
	}
	base := filepath.Base(file)
	if pylockNameRE.MatchString(base) || strings.HasSuffix(base, ".toml") {
		return parsePylock(file, data)
	}
	return parseRequirements(file, data, log)
}

var (
	commentRE = regexp.MustCompile(`(^|\s+)#.*$`)
	reqNameRE = regexp.MustCompile(`^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[^\]]*\])?\s*(.*)$`)
	sha256RE  = regexp.MustCompile(`^[0-9a-f]{64}$`)
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
	// as pip does: options start at the first word beginning with "-"
	words := strings.Fields(line)
	split := len(words)
	for i, w := range words {
		if strings.HasPrefix(w, "-") {
			split = i
			break
		}
	}
	spec := strings.Join(words[:split], " ")
	opts := words[split:]

	spec, markers, _ := strings.Cut(spec, ";")
	markers = strings.TrimSpace(markers)
	m := reqNameRE.FindStringSubmatch(strings.TrimSpace(spec))
	if m == nil {
		return Requirement{}, fmt.Errorf("%s: %q is not a requirement (want name==version --hash=sha256:...)", where, strings.TrimSpace(spec))
	}
	r := Requirement{Name: normalizeName(m[1]), Markers: markers}
	where += ": " + r.Name
	version := strings.TrimSpace(m[3])
	version = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(version, "("), ")"))
	switch {
	case strings.HasPrefix(version, "@"):
		return Requirement{}, fmt.Errorf("%s: a direct URL reference is not supported: pin a version with == and let gantry find the wheel in its sources", where)
	case version == "":
		return Requirement{}, fmt.Errorf("%s: no version: pin it with ==; %s", where, lockHint)
	case !strings.HasPrefix(version, "==") || strings.HasPrefix(version, "===") ||
		strings.ContainsAny(version, ",*") || strings.ContainsAny(version[2:], "<>=!~"):
		return Requirement{}, fmt.Errorf("%s: not pinned to one version (%s): pin it with ==; %s", where, version, lockHint)
	}
	r.Version = strings.TrimSpace(version[2:])
	if _, err := parseVersion(r.Version); err != nil {
		return Requirement{}, fmt.Errorf("%s: %w", where, err)
	}
	if markers != "" {
		if _, err := parseMarker(markers); err != nil {
			return Requirement{}, fmt.Errorf("%s: %w", where, err)
		}
	}
	for i := 0; i < len(opts); i++ {
		opt, val, hasVal := strings.Cut(opts[i], "=")
		if opt != "--hash" {
			return Requirement{}, fmt.Errorf("%s: option %s is not supported on a requirement line", where, opt)
		}
		if !hasVal {
			if i+1 >= len(opts) {
				return Requirement{}, fmt.Errorf("%s: --hash without a value", where)
			}
			i++
			val = opts[i]
		}
		alg, hex, ok := strings.Cut(val, ":")
		switch {
		case !ok:
			return Requirement{}, fmt.Errorf("%s: --hash=%s is not ALGORITHM:HEX", where, val)
		case alg != "sha256":
			continue // pip also accepts sha384 and sha512; gantry checks sha256
		case !sha256RE.MatchString(hex):
			return Requirement{}, fmt.Errorf("%s: --hash=%s is not a sha256 (64 lowercase hex digits)", where, val)
		}
		r.Hashes = appendUnique(r.Hashes, "sha256:"+hex)
	}
	if len(r.Hashes) == 0 {
		return Requirement{}, fmt.Errorf("%s: no --hash=sha256:...; gantry installs only hash-pinned wheels: %s", where, lockHint)
	}
	return r, nil
}

func appendUnique(list []string, s string) []string {
	if contains(list, s) {
		return list
	}
	return append(list, s)
}

// checkDuplicates refuses a name listed twice for the same markers (a lock
// may list one name several times for different markers).
func checkDuplicates(reqs []Requirement) error {
	seen := map[[2]string]int{}
	for _, r := range reqs {
		k := [2]string{r.Name, r.Markers}
		if line, ok := seen[k]; ok {
			return fmt.Errorf("%s:%d: %s: listed again (first at line %d)", r.File, r.Line, r.Name, line)
		}
		seen[k] = r.Line
	}
	return nil
}

// pylock is the part of a PEP 751 pylock.toml that installing wheels needs.
type pylock struct {
	LockVersion    string          `toml:"lock-version"`
	Environments   []string        `toml:"environments"`
	RequiresPython string          `toml:"requires-python"`
	Packages       []pylockPackage `toml:"packages"`
}

type pylockPackage struct {
	Name           string         `toml:"name"`
	Version        string         `toml:"version"`
	Marker         string         `toml:"marker"`
	RequiresPython string         `toml:"requires-python"`
	Wheels         []pylockFile   `toml:"wheels"`
	Sdist          *pylockFile    `toml:"sdist"`
	VCS            map[string]any `toml:"vcs"`
	Directory      map[string]any `toml:"directory"`
	Archive        map[string]any `toml:"archive"`
}

type pylockFile struct {
	Name   string            `toml:"name"`
	URL    string            `toml:"url"`
	Path   string            `toml:"path"`
	Size   int64             `toml:"size"`
	Hashes map[string]string `toml:"hashes"`
}

var packagesHeaderRE = regexp.MustCompile(`^\s*\[\[\s*packages\s*\]\]\s*(#.*)?$`)

// packageLines finds the line where each [[packages]] table starts.
func packageLines(data []byte, pkgs []pylockPackage) []int {
	lines := strings.Split(string(data), "\n")
	var headers []int
	for i, l := range lines {
		if packagesHeaderRE.MatchString(l) {
			headers = append(headers, i+1)
		}
	}
	if len(headers) == len(pkgs) {
		return headers
	}
	// packages = [ {...}, ... ]: find each name in turn
	out := make([]int, len(pkgs))
	from := 0
	for i, p := range pkgs {
		re := regexp.MustCompile(`name\s*=\s*["']` + regexp.QuoteMeta(p.Name) + `["']`)
		for j := from; j < len(lines); j++ {
			if re.MatchString(lines[j]) {
				out[i], from = j+1, j+1
				break
			}
		}
	}
	return out
}

func parsePylock(file string, data []byte) ([]Requirement, error) {
	var lock pylock
	if _, err := toml.Decode(string(data), &lock); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d: %s", file, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if major, _, _ := strings.Cut(lock.LockVersion, "."); major != "1" {
		return nil, fmt.Errorf("%s: lock-version %q is not supported (want 1.x)", file, lock.LockVersion)
	}
	lines := packageLines(data, lock.Packages)
	var env string
	if len(lock.Environments) > 0 {
		var parts []string
		for _, e := range lock.Environments {
			parts = append(parts, "("+e+")")
		}
		env = strings.Join(parts, " or ")
	}
	var reqs []Requirement
	for i, p := range lock.Packages {
		where := fmt.Sprintf("%s:%d: %s", file, lines[i], normalizeName(p.Name))
		if p.Name == "" {
			return nil, fmt.Errorf("%s:%d: a package has no name", file, lines[i])
		}
		switch {
		case p.VCS != nil || p.Directory != nil || p.Archive != nil:
			return nil, fmt.Errorf("%s: a vcs, directory or archive package cannot be installed from a wheel; lock it from an index", where)
		case p.Version == "":
			return nil, fmt.Errorf("%s: no version; %s", where, pylockHint)
		}
		if _, err := parseVersion(p.Version); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		r := Requirement{Name: normalizeName(p.Name), Version: p.Version, File: file, Line: lines[i]}
		switch {
		case p.Marker != "" && env != "":
			r.Markers = "(" + p.Marker + ") and (" + env + ")"
		case p.Marker != "":
			r.Markers = p.Marker
		default:
			r.Markers = env
		}
		if r.Markers != "" {
			if _, err := parseMarker(r.Markers); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
		}
		var rp []string
		for _, s := range []string{lock.RequiresPython, p.RequiresPython} {
			if s != "" {
				if _, err := parseSpecifierSet(s); err != nil {
					return nil, fmt.Errorf("%s: requires-python: %w", where, err)
				}
				rp = append(rp, s)
			}
		}
		r.RequiresPython = strings.Join(rp, ", ")
		files := p.Wheels
		if p.Sdist != nil {
			files = append(files[:len(files):len(files)], *p.Sdist)
		}
		for _, f := range files {
			c, err := lockedFile(file, f)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			r.Hashes = appendUnique(r.Hashes, "sha256:"+c.SHA256)
			r.Files = append(r.Files, c)
		}
		if len(r.Hashes) == 0 {
			return nil, fmt.Errorf("%s: lists no wheels with hashes; %s", where, pylockHint)
		}
		reqs = append(reqs, r)
	}
	if err := checkDuplicates(reqs); err != nil {
		return nil, err
	}
	return reqs, nil
}

// lockedFile turns a pylock.toml wheel or sdist into a Candidate.
func lockedFile(lockFile string, f pylockFile) (Candidate, error) {
	c := Candidate{Filename: f.Name, Source: lockFile}
	switch {
	case f.Path != "":
		p := filepath.FromSlash(f.Path)
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(lockFile), p)
		}
		c.Path = p
		if c.Filename == "" {
			c.Filename = filepath.Base(p)
		}
	case f.URL != "":
		u, err := url.Parse(f.URL)
		if err != nil {
			return Candidate{}, fmt.Errorf("file url: %w", err)
		}
		switch u.Scheme {
		case "http", "https":
			c.URL = f.URL
		case "file":
			c.Path = filepath.FromSlash(u.Path)
		default:
			return Candidate{}, fmt.Errorf("file url %s: only http, https and file URLs are supported", u.Redacted())
		}
		if c.Filename == "" {
			c.Filename = path.Base(u.Path)
		}
	default:
		return Candidate{}, fmt.Errorf("file %q has neither path nor url", f.Name)
	}
	h := strings.ToLower(f.Hashes["sha256"])
	if !sha256RE.MatchString(h) {
		return Candidate{}, fmt.Errorf("%s has no sha256 hash (64 hex digits); %s", c.Filename, pylockHint)
	}
	c.SHA256 = h
	return c, nil
}
