package python

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"
)

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
	lock, err := decodePylock(file, data)
	if err != nil {
		return nil, err
	}
	lines := packageLines(data, lock.Packages)
	env := environmentsMarker(lock.Environments)
	var reqs []Requirement
	for i, p := range lock.Packages {
		r, err := pylockRequirement(file, lines[i], p, lock.RequiresPython, env)
		if err != nil {
			return nil, err
		}
		reqs = append(reqs, r)
	}
	if err := checkDuplicates(reqs); err != nil {
		return nil, err
	}
	return reqs, nil
}

// decodePylock decodes a pylock.toml of lock-version 1.x.
func decodePylock(file string, data []byte) (pylock, error) {
	var lock pylock
	if _, err := toml.Decode(string(data), &lock); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return pylock{}, fmt.Errorf("%s:%d: %s", file, pe.Position.Line, pe.Message)
		}
		return pylock{}, fmt.Errorf("%s: %w", file, err)
	}
	if major, _, _ := strings.Cut(lock.LockVersion, "."); major != "1" {
		return pylock{}, fmt.Errorf("%s: lock-version %q is not supported (want 1.x)", file, lock.LockVersion)
	}
	return lock, nil
}

// environmentsMarker joins the lock's environments into one marker that
// holds when any of them does ("" for none).
func environmentsMarker(envs []string) string {
	if len(envs) == 0 {
		return ""
	}
	var parts []string
	for _, e := range envs {
		parts = append(parts, "("+e+")")
	}
	return strings.Join(parts, " or ")
}

// pylockRequirement turns the package p, at line of file, into a
// Requirement; lockRP is the lock's requires-python and env its
// environments marker.
func pylockRequirement(file string, line int, p pylockPackage, lockRP, env string) (Requirement, error) {
	where := fmt.Sprintf("%s:%d: %s", file, line, normalizeName(p.Name))
	if p.Name == "" {
		return Requirement{}, fmt.Errorf("%s:%d: a package has no name", file, line)
	}
	if err := checkPylockVersion(where, p); err != nil {
		return Requirement{}, err
	}
	r := Requirement{Name: normalizeName(p.Name), Version: p.Version, File: file, Line: line, Markers: packageMarker(p.Marker, env)}
	if r.Markers != "" {
		if _, err := parseMarker(r.Markers); err != nil {
			return Requirement{}, fmt.Errorf("%s: %w", where, err)
		}
	}
	rp, err := joinRequiresPython(where, lockRP, p.RequiresPython)
	if err != nil {
		return Requirement{}, err
	}
	r.RequiresPython = rp
	if err := addLockedFiles(&r, where, p); err != nil {
		return Requirement{}, err
	}
	if len(r.Hashes) == 0 {
		return Requirement{}, fmt.Errorf("%s: lists no wheels with hashes; %s", where, pylockHint)
	}
	return r, nil
}

// checkPylockVersion refuses a package installed from elsewhere than a
// wheel and one without a valid version.
func checkPylockVersion(where string, p pylockPackage) error {
	switch {
	case p.VCS != nil || p.Directory != nil || p.Archive != nil:
		return fmt.Errorf("%s: a vcs, directory or archive package cannot be installed from a wheel; lock it from an index", where)
	case p.Version == "":
		return fmt.Errorf("%s: no version; %s", where, pylockHint)
	}
	if _, err := parseVersion(p.Version); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	return nil
}

// packageMarker is a package's marker and the lock's environments marker
// combined.
func packageMarker(marker, env string) string {
	switch {
	case marker != "" && env != "":
		return "(" + marker + ") and (" + env + ")"
	case marker != "":
		return marker
	}
	return env
}

// joinRequiresPython checks the lock's and the package's requires-python
// and joins those given into one specifier set.
func joinRequiresPython(where string, specs ...string) (string, error) {
	var rp []string
	for _, s := range specs {
		if s != "" {
			if _, err := parseSpecifierSet(s); err != nil {
				return "", fmt.Errorf("%s: requires-python: %w", where, err)
			}
			rp = append(rp, s)
		}
	}
	return strings.Join(rp, ", "), nil
}

// addLockedFiles adds p's wheels and sdist to r's files and hashes.
func addLockedFiles(r *Requirement, where string, p pylockPackage) error {
	files := p.Wheels
	if p.Sdist != nil {
		files = append(files[:len(files):len(files)], *p.Sdist)
	}
	for _, f := range files {
		c, err := lockedFile(r.File, f)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		r.Hashes = appendUnique(r.Hashes, "sha256:"+c.SHA256)
		r.Files = append(r.Files, c)
	}
	return nil
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
