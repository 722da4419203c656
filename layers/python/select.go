package python

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Wheel is the file Select picked for a requirement on a target: verified
// against the lock and in the Finder's cache.
type Wheel struct {
	Requirement Requirement
	Filename    string // as published
	Path        string // the verified file in the cache
	SHA256      string // hex
	Tag         string // the supported tag it was picked for
}

// selection is what Select remembers of a pick, so that a rebuild with the
// same lock, target and sources asks no source anything.
type selection struct {
	Filename string `json:"filename"`
	SHA256   string `json:"sha256"`
	Tag      string `json:"tag"`
}

// Select picks for each requirement that applies to t (its markers hold)
// the best wheel for t: the one whose best tag comes first in t.Tags(),
// then the highest build tag, from the first source that has one. The
// requirement's own files (pylock.toml) come first, then f.Sources in
// order. A wheel whose sha256 is not in the lock is skipped, as pip
// --require-hashes does, as is one whose Requires-Python (the index's, else
// its METADATA's) t.Python does not meet.
func Select(ctx context.Context, f *Finder, reqs []Requirement, t Target) ([]Wheel, error) {
	tags, err := t.Tags()
	if err != nil {
		return nil, err
	}
	ranks := tagRanks(tags)
	seen := map[string]Requirement{}
	var out []Wheel
	skipped := 0
	for _, r := range reqs {
		ok, err := r.Applies(t)
		if err != nil {
			return nil, err
		}
		if !ok {
			skipped++
			continue
		}
		if prev, dup := seen[r.Name]; dup {
			return nil, fmt.Errorf("%s:%d: %s: on %s both this and line %d apply; make their markers exclusive", r.File, r.Line, r.Name, t.Platform(), prev.Line)
		}
		seen[r.Name] = r
		if r.RequiresPython != "" {
			set, err := parseSpecifierSet(r.RequiresPython)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %s: requires-python: %w", r.File, r.Line, r.Name, err)
			}
			if !specifiersContain(set, pythonVersion(t)) {
				return nil, fmt.Errorf("%s:%d: %s: the lock requires Python %s; %s has %s", r.File, r.Line, r.Name, r.RequiresPython, t.Platform(), t.Python.Full())
			}
		}
		w, err := f.selectOne(ctx, r, t, tags, ranks)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	if len(reqs) > 0 && skipped == len(reqs) {
		return nil, fmt.Errorf("%s: the markers of every requirement exclude %s", reqs[0].File, t.Platform())
	}
	return out, nil
}

func pythonVersion(t Target) pep440 {
	return pep440{release: []int{t.Python.Major, t.Python.Minor, t.Python.Micro}, post: -1, dev: -1}
}

// selectionKey names a pick: the requirement as locked, the target's tags
// and Python, and the sources.
func (f *Finder) selectionKey(r Requirement, t Target, tags []string) string {
	h := sha256.New()
	fmt.Fprintf(h, "gantry-python-select-v1\n%s\n%s\n%s\n%s\n", r.Name, r.Version, strings.Join(sortedCopy(r.Hashes), ","), r.RequiresPython)
	fmt.Fprintf(h, "%s\n%s\n", t.Python.Full(), strings.Join(tags, ","))
	for _, c := range r.Files {
		fmt.Fprintf(h, "file %s %s %s %s\n", c.Filename, c.SHA256, c.URL, c.Path)
	}
	for _, s := range f.Sources {
		fmt.Fprintf(h, "source %s\n", s)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (f *Finder) selectionPath(key string) string {
	return filepath.Join(f.Cache, "python", "select", key+".json")
}

// remembered returns the cached pick for key, if its wheel is still cached.
func (f *Finder) remembered(key string) (selection, string, bool) {
	data, err := os.ReadFile(f.selectionPath(key))
	if err != nil {
		return selection{}, "", false
	}
	var s selection
	if json.Unmarshal(data, &s) != nil || !sha256RE.MatchString(s.SHA256) {
		return selection{}, "", false
	}
	p := filepath.Join(f.Cache, "python", "wheels", s.SHA256)
	if _, err := os.Stat(p); err != nil {
		return selection{}, "", false
	}
	return s, p, true
}

func (f *Finder) remember(key string, s selection) error {
	dir := filepath.Dir(f.selectionPath(key))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating wheel selection cache: %w", err)
	}
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("creating wheel selection record: %w", err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing wheel selection record: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.selectionPath(key)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("storing wheel selection record: %w", err)
	}
	return nil
}

// ranked is a candidate wheel for the target, with its priority.
type ranked struct {
	c    Candidate
	name wheelName
	rank int
	tag  string
}

// rejection says why a candidate was not taken.
type rejection struct {
	file, why string
	hash      bool // a hash mismatch
}

// wheelSearch is one selectOne: the requirement, its target, and what
// was seen on the way, for the error when no wheel is picked.
type wheelSearch struct {
	f     *Finder
	r     Requirement
	t     Target
	ranks map[string]int
	key   string // the selection cache key
	where string // "lock:line: name==version", for messages
	want  map[string]bool

	rejected    []rejection
	otherTags   []string // wheels of this version for other platforms
	sdists      []string
	sourcesSeen int
}

// selectOne picks r's wheel for t: the remembered pick, else the best
// acceptable wheel of the lock's own files, then of each source in turn.
func (f *Finder) selectOne(ctx context.Context, r Requirement, t Target, tags []string, ranks map[string]int) (Wheel, error) {
	if f.Cache == "" {
		return Wheel{}, errors.New("python finder: no cache directory")
	}
	key := f.selectionKey(r, t, tags)
	if s, p, ok := f.remembered(key); ok {
		return Wheel{Requirement: r, Filename: s.Filename, Path: p, SHA256: s.SHA256, Tag: s.Tag}, nil
	}
	ws := &wheelSearch{f: f, r: r, t: t, ranks: ranks, key: key, where: fmt.Sprintf("%s:%d: %s", r.File, r.Line, r), want: allowed(r.Hashes)}
	for gi := 0; gi <= len(f.Sources); gi++ {
		cands, err := ws.group(ctx, gi)
		if err != nil {
			return Wheel{}, err
		}
		for _, w := range ws.rank(cands) {
			picked, ok, err := ws.try(ctx, w)
			if err != nil || ok {
				return picked, err
			}
		}
	}
	return Wheel{}, noWheelError(ws.where, r, t, ws.rejected, ws.otherTags, ws.sdists, ws.sourcesSeen, f.Sources)
}

// group lists the candidates of group gi: 0 is the requirement's own
// files, gi > 0 source gi-1.
func (ws *wheelSearch) group(ctx context.Context, gi int) ([]Candidate, error) {
	if gi == 0 {
		return ws.r.Files, nil
	}
	cands, err := ws.f.sourceCandidates(ctx, ws.f.Sources[gi-1], ws.r.Name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ws.where, err)
	}
	ws.sourcesSeen++
	return cands, nil
}

// rank returns the wheels among cands of r's name and version that t
// supports, best first, noting sdists and wheels for other platforms.
func (ws *wheelSearch) rank(cands []Candidate) []ranked {
	var wheels []ranked
	for _, c := range cands {
		if !strings.HasSuffix(c.Filename, ".whl") {
			if base, ok := sdistBase(c.Filename); ok && versionOfFile(base, ws.r) {
				ws.sdists = appendUnique(ws.sdists, c.Filename)
			}
			continue
		}
		wn, err := parseWheelName(c.Filename)
		if err != nil || normalizeName(wn.Dist) != ws.r.Name || !sameVersion(wn.Version, ws.r.Version) {
			continue
		}
		rank, tag := wn.rank(ws.ranks)
		if rank < 0 {
			ws.otherTags = appendUnique(ws.otherTags, wn.Tag)
			continue
		}
		wheels = append(wheels, ranked{c: c, name: wn, rank: rank, tag: tag})
	}
	sort.SliceStable(wheels, func(i, j int) bool { return preferred(wheels[i], wheels[j]) })
	return wheels
}

// preferred orders wheels by tag rank, then highest build tag, then name.
func preferred(a, b ranked) bool {
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	if a.name.Build != b.name.Build {
		return a.name.Build > b.name.Build
	}
	if a.name.BuildSuffix != b.name.BuildSuffix {
		return a.name.BuildSuffix > b.name.BuildSuffix
	}
	return a.c.Filename < b.c.Filename
}

// try fetches and checks one ranked wheel, remembering it when it is
// taken; a wheel that is not taken is noted as rejected.
func (ws *wheelSearch) try(ctx context.Context, w ranked) (Wheel, bool, error) {
	c := w.c
	if !ws.prescreen(c) {
		return Wheel{}, false, nil
	}
	p, err := ws.f.Fetch(ctx, c, ws.r.Hashes)
	var mm *mismatchError
	if errors.As(err, &mm) {
		ws.rejected = append(ws.rejected, rejection{file: c.Filename, why: mismatchReason(c, mm), hash: true})
		return Wheel{}, false, nil
	}
	if err != nil {
		return Wheel{}, false, fmt.Errorf("%s: %w", ws.where, err)
	}
	sum := filepath.Base(p)
	if c.RequiresPython == "" {
		ok, why, err := wheelRequiresPython(p, c.Filename, ws.t)
		if err != nil {
			return Wheel{}, false, fmt.Errorf("%s: %w", ws.where, err)
		}
		if !ok {
			ws.rejected = append(ws.rejected, rejection{file: c.Filename, why: why})
			return Wheel{}, false, nil
		}
	}
	if err := ws.f.remember(ws.key, selection{Filename: c.Filename, SHA256: sum, Tag: w.tag}); err != nil {
		return Wheel{}, false, err
	}
	return Wheel{Requirement: ws.r, Filename: c.Filename, Path: p, SHA256: sum, Tag: w.tag}, true, nil
}

// prescreen rejects a candidate by what its source says of it: a sha256
// the lock does not allow, or a Requires-Python t does not meet.
func (ws *wheelSearch) prescreen(c Candidate) bool {
	if c.SHA256 != "" && !ws.want[c.SHA256] {
		ws.rejected = append(ws.rejected, rejection{file: c.Filename, why: "has sha256:" + c.SHA256, hash: true})
		return false
	}
	if c.RequiresPython != "" {
		if ok, why := meetsRequiresPython(c.RequiresPython, ws.t); !ok {
			ws.rejected = append(ws.rejected, rejection{file: c.Filename, why: why})
			return false
		}
	}
	return true
}

// mismatchReason says why a fetched file's hash was refused, without the
// file name mismatchError starts with.
func mismatchReason(c Candidate, mm *mismatchError) string {
	if mm.got == "" || (mm.claimed != "" && mm.claimed != mm.got) {
		return mm.Error()[len(c.Filename)+1:]
	}
	return "from " + mm.location + " has sha256:" + mm.got
}

// versionOfFile reports whether an sdist's base name is r's name and version.
func versionOfFile(base string, r Requirement) bool {
	i := strings.LastIndexByte(base, '-')
	return i > 0 && normalizeName(base[:i]) == r.Name && sameVersion(base[i+1:], r.Version)
}

func meetsRequiresPython(spec string, t Target) (bool, string) {
	set, err := parseSpecifierSet(spec)
	if err != nil {
		return false, fmt.Sprintf("has an invalid Requires-Python %q", spec)
	}
	if !specifiersContain(set, pythonVersion(t)) {
		return false, fmt.Sprintf("requires Python %s", spec)
	}
	return true, ""
}

// wheelRequiresPython checks the Requires-Python of a wheel's METADATA.
func wheelRequiresPython(p, filename string, t Target) (bool, string, error) {
	wa, err := openWheel(p, filename)
	if err != nil {
		return false, "", err
	}
	defer wa.Close()
	meta, err := wa.metadata()
	if err != nil {
		return false, "", err
	}
	if spec := first(meta, "Requires-Python"); spec != "" {
		ok, why := meetsRequiresPython(spec, t)
		return ok, why, nil
	}
	return true, "", nil
}

// noWheelError explains, in one line, why no wheel was picked.
func noWheelError(where string, r Requirement, t Target, rejected []rejection, otherTags, sdists []string, sourcesSeen int, sources []string) error {
	plat := t.Platform()
	if len(rejected) > 0 {
		var parts []string
		hashes := false
		for _, rj := range rejected {
			parts = append(parts, rj.file+" "+rj.why)
			hashes = hashes || rj.hash
		}
		if hashes {
			return fmt.Errorf("%s: %w: no wheel for %s has a sha256 the lock allows (%s): %s; if the files were rebuilt, re-lock with %s", where, ErrHashMismatch, plat, strings.Join(r.Hashes, ", "), strings.Join(parts, "; "), lockTool)
		}
		return fmt.Errorf("%s: no wheel for %s supports Python %s: %s", where, plat, t.Python.Full(), strings.Join(parts, "; "))
	}
	machine, _ := t.Machine()
	platform := fmt.Sprintf("manylinux_%d_%d_%s --platform manylinux2014_%s", t.Libc.Major, t.Libc.Minor, machine, machine)
	if t.Libc.Kind == Musl {
		platform = fmt.Sprintf("musllinux_%d_%d_%s", t.Libc.Major, t.Libc.Minor, machine)
	}
	hint := fmt.Sprintf("download one with pip download --only-binary=:all: --platform %s --python-version %s --implementation cp --abi cp%d%d %s -d WHEELDIR and add WHEELDIR to the sources",
		platform, t.Python, t.Python.Major, t.Python.Minor, r)
	desc := fmt.Sprintf("%s (CPython %s, %s)", plat, t.Python, t.Libc)
	switch {
	case len(otherTags) > 0:
		return fmt.Errorf("%s: no wheel for %s; there are wheels for %s; %s", where, desc, strings.Join(otherTags, ", "), hint)
	case len(sdists) > 0:
		return fmt.Errorf("%s: only a source distribution (%s), no wheel; gantry installs wheels only: %s", where, strings.Join(sdists, ", "), hint)
	case len(r.Files) == 0 && sourcesSeen == 0:
		return fmt.Errorf("%s: no sources to find wheels in; add a find-links directory or an index URL", where)
	}
	return fmt.Errorf("%s: no files for this version in %s; %s", where, strings.Join(append(fileSources(r), sources...), ", "), hint)
}

func fileSources(r Requirement) []string {
	if len(r.Files) > 0 {
		return []string{r.File}
	}
	return nil
}
