package python

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
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

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

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
