package python

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gantry-dev/gantry/layers"
	"golang.org/x/net/html"
)

// ErrHashMismatch is wrapped by errors for a file whose sha256 is not one
// the lock allows.
var ErrHashMismatch = errors.New("hash mismatch")

// mismatchError is a file whose sha256 the lock does not allow.
type mismatchError struct {
	file, location string
	got, claimed   string // the file's sha256 and the source's, hex; either may be ""
	want           []string
}

func (e *mismatchError) Error() string {
	switch {
	case e.claimed != "" && e.got != "" && e.claimed != e.got:
		return fmt.Sprintf("%s from %s: %v: the source says sha256:%s but the file has sha256:%s", e.file, e.location, ErrHashMismatch, e.claimed, e.got)
	case e.got != "":
		return fmt.Sprintf("%s from %s: %v: the file has sha256:%s, the lock allows %s", e.file, e.location, ErrHashMismatch, e.got, strings.Join(e.want, ", "))
	}
	return fmt.Sprintf("%s from %s: %v: the source says sha256:%s, the lock allows %s", e.file, e.location, ErrHashMismatch, e.claimed, strings.Join(e.want, ", "))
}

func (e *mismatchError) Unwrap() error { return ErrHashMismatch }

// Candidate is a distribution file a source offers for a project.
type Candidate struct {
	Filename string // "tfnative-1.0.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
	URL      string // where to download it; "" for a local file
	Path     string // the local file (find-links directory, pylock.toml path)
	SHA256   string // hex, when the source tells it
	// RequiresPython is the index's data-requires-python, "" if not given.
	RequiresPython string
	Source         string // the source it came from, for messages
}

func (c Candidate) location() string {
	if c.URL != "" {
		return redact(c.URL)
	}
	return c.Path
}

// Finder finds wheel files in find-links directories and PEP 503 (HTML) /
// PEP 691 (JSON) simple indexes, and downloads them into a cache by sha256.
type Finder struct {
	// Sources are tried in order: a local directory of wheels (find-links)
	// or the http(s) URL of a simple index ("https://pypi.org/simple/").
	Sources []string
	// Cache is the directory files are kept in: <Cache>/python/wheels/<sha256>.
	Cache string
	// Client makes the HTTP requests; nil means http.DefaultClient.
	Client *http.Client
}

func (f *Finder) client() *http.Client {
	if f.Client != nil {
		return f.Client
	}
	return http.DefaultClient
}

func (f *Finder) wheelDir() (string, error) {
	if f.Cache == "" {
		return "", errors.New("python finder: no cache directory")
	}
	d := filepath.Join(f.Cache, "python", "wheels")
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("creating wheel cache: %w", err)
	}
	return d, nil
}

// Candidates lists the files every source offers for the project name,
// in source order.
func (f *Finder) Candidates(ctx context.Context, name string) ([]Candidate, error) {
	var out []Candidate
	for _, src := range f.Sources {
		cs, err := f.sourceCandidates(ctx, src, name)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

func isURL(src string) bool {
	return strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://")
}

func (f *Finder) sourceCandidates(ctx context.Context, src, name string) ([]Candidate, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if isURL(src) {
		return f.indexCandidates(ctx, src, name)
	}
	return dirCandidates(src, name)
}

// fileProject is the normalised project name of a wheel or sdist file
// name, "" if it is neither.
func fileProject(filename string) string {
	if strings.HasSuffix(filename, ".whl") {
		if w, err := parseWheelName(filename); err == nil {
			return normalizeName(w.Dist)
		}
		return ""
	}
	if base, ok := sdistBase(filename); ok {
		if i := strings.LastIndexByte(base, '-'); i > 0 {
			return normalizeName(base[:i])
		}
	}
	return ""
}

func sdistBase(filename string) (string, bool) {
	for _, ext := range []string{".tar.gz", ".zip", ".tar.bz2", ".tar.xz", ".tgz", ".tar"} {
		if base, ok := strings.CutSuffix(filename, ext); ok {
			return base, true
		}
	}
	return "", false
}

func dirCandidates(dir, name string) ([]Candidate, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading find-links directory: %w", err)
	}
	want := normalizeName(name)
	var out []Candidate
	for _, e := range ents {
		if !e.Type().IsRegular() && e.Type()&os.ModeSymlink == 0 {
			continue
		}
		if fileProject(e.Name()) == want {
			out = append(out, Candidate{Filename: e.Name(), Path: filepath.Join(dir, e.Name()), Source: dir})
		}
	}
	return out, nil
}

const (
	simpleJSONType = "application/vnd.pypi.simple.v1+json"
	simpleHTMLType = "application/vnd.pypi.simple.v1+html"
	// indexPageLimit bounds an index page (numpy's is a few MB).
	indexPageLimit = 64 << 20
)

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Redacted()
}

func (f *Finder) indexCandidates(ctx context.Context, index, name string) ([]Candidate, error) {
	page, err := url.Parse(strings.TrimSuffix(index, "/") + "/" + normalizeName(name) + "/")
	if err != nil {
		return nil, fmt.Errorf("index URL %s: %w", redact(index), err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, page.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("index URL %s: %w", page.Redacted(), err)
	}
	req.Header.Set("Accept", simpleJSONType+", "+simpleHTMLType+";q=0.2, text/html;q=0.01")
	resp, err := f.client().Do(req)
	if err != nil {
		return nil, transferError(ctx, fmt.Sprintf("listing %s on index %s", name, redact(index)), err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, nil
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("listing %s on index %s: GET %s: %s", name, redact(index), page.Redacted(), resp.Status)
	}
	base := resp.Request.URL // after redirects
	body := io.LimitReader(resp.Body, indexPageLimit)
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var cands []Candidate
	switch ct {
	case simpleJSONType:
		cands, err = parseSimpleJSON(body, base)
	case simpleHTMLType, "text/html", "":
		cands, err = parseSimpleHTML(body, base)
	default:
		return nil, fmt.Errorf("listing %s on index %s: unexpected content type %q", name, redact(index), ct)
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s on index %s: %w", name, redact(index), err)
	}
	want := normalizeName(name)
	out := cands[:0]
	for _, c := range cands {
		if fileProject(c.Filename) == want {
			c.Source = redact(index)
			out = append(out, c)
		}
	}
	return out, nil
}

// parseSimpleJSON reads a PEP 691 project page.
func parseSimpleJSON(r io.Reader, base *url.URL) ([]Candidate, error) {
	var page struct {
		Meta struct {
			APIVersion string `json:"api-version"`
		} `json:"meta"`
		Files []struct {
			Filename       string            `json:"filename"`
			URL            string            `json:"url"`
			Hashes         map[string]string `json:"hashes"`
			RequiresPython string            `json:"requires-python"`
		} `json:"files"`
	}
	if err := json.NewDecoder(r).Decode(&page); err != nil {
		return nil, fmt.Errorf("decoding PEP 691 JSON page: %w", err)
	}
	if major, _, _ := strings.Cut(page.Meta.APIVersion, "."); major != "1" {
		return nil, fmt.Errorf("PEP 691 api-version %q is not supported (want 1.x)", page.Meta.APIVersion)
	}
	// Yanked files (PEP 592) stay: every requirement is pinned with ==,
	// and pip installs a yanked file that is pinned so.
	var out []Candidate
	for _, f := range page.Files {
		u, err := base.Parse(f.URL)
		if err != nil {
			return nil, fmt.Errorf("file %s: url: %w", f.Filename, err)
		}
		u.Fragment = ""
		out = append(out, Candidate{Filename: f.Filename, URL: u.String(), SHA256: strings.ToLower(f.Hashes["sha256"]), RequiresPython: f.RequiresPython})
	}
	return out, nil
}

// parseSimpleHTML reads a PEP 503 project page: one <a> per file, its hash
// in the URL fragment (#sha256=...), data-requires-python on the anchor.
func parseSimpleHTML(r io.Reader, base *url.URL) ([]Candidate, error) {
	z := html.NewTokenizer(r)
	var out []Candidate
	for {
		switch z.Next() {
		case html.ErrorToken:
			if err := z.Err(); err != io.EOF {
				return nil, fmt.Errorf("reading PEP 503 HTML page: %w", err)
			}
			return out, nil
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			attrs := map[string]string{}
			for _, a := range tok.Attr {
				attrs[a.Key] = a.Val
			}
			switch tok.Data {
			case "base":
				if href, ok := attrs["href"]; ok {
					if u, err := base.Parse(href); err == nil {
						base = u
					}
				}
			case "a":
				href, ok := attrs["href"]
				if !ok {
					continue
				}
				u, err := base.Parse(href)
				if err != nil {
					return nil, fmt.Errorf("link %q: %w", href, err)
				}
				c := Candidate{RequiresPython: attrs["data-requires-python"]}
				if alg, val, ok := strings.Cut(u.Fragment, "="); ok && alg == "sha256" {
					c.SHA256 = strings.ToLower(val)
				}
				u.Fragment = ""
				c.URL = u.String()
				c.Filename, _ = url.PathUnescape(path.Base(u.EscapedPath()))
				out = append(out, c)
			}
		}
	}
}

// allowed is the set of hex sha256s in hashes ("sha256:hex").
func allowed(hashes []string) map[string]bool {
	m := map[string]bool{}
	for _, h := range hashes {
		if hex, ok := strings.CutPrefix(h, "sha256:"); ok {
			m[hex] = true
		}
	}
	return m
}

// Fetch returns the path of c's file in the cache, downloading (or, for a
// local file, copying) it first unless the cache has it. The content must
// have one of the sha256s in want ("sha256:hex"); a file that does not is
// never stored. Files appear in the cache by rename, never partly written.
func (f *Finder) Fetch(ctx context.Context, c Candidate, want []string) (string, error) {
	dir, err := f.wheelDir()
	if err != nil {
		return "", err
	}
	ok := allowed(want)
	if c.SHA256 != "" {
		if !ok[c.SHA256] {
			return "", &mismatchError{file: c.Filename, location: c.location(), claimed: c.SHA256, want: want}
		}
		p := filepath.Join(dir, c.SHA256)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	src, err := f.open(ctx, c)
	if err != nil {
		return "", err
	}
	defer src.Close()
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return "", fmt.Errorf("creating file in wheel cache: %w", err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), layers.ContextReader(ctx, src)); err != nil {
		return "", fmt.Errorf("reading %s from %s: %w", c.Filename, c.location(), err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("writing %s to wheel cache: %w", c.Filename, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if c.SHA256 != "" && got != c.SHA256 {
		return "", &mismatchError{file: c.Filename, location: c.location(), claimed: c.SHA256, got: got, want: want}
	}
	if !ok[got] {
		return "", &mismatchError{file: c.Filename, location: c.location(), got: got, want: want}
	}
	p := filepath.Join(dir, got)
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", fmt.Errorf("storing %s in wheel cache: %w", c.Filename, err)
	}
	tmp = nil
	return p, nil
}

func (f *Finder) open(ctx context.Context, c Candidate) (io.ReadCloser, error) {
	if c.URL == "" {
		r, err := os.Open(c.Path)
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", c.Filename, err)
		}
		return r, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("downloading %s: %w", c.Filename, err)
	}
	resp, err := f.client().Do(req)
	if err != nil {
		return nil, transferError(ctx, "downloading "+c.Filename, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("downloading %s: GET %s: %s", c.Filename, redact(c.URL), resp.Status)
	}
	return resp.Body, nil
}

// transferError is a failed request to a package index: the index's
// failure, not the base's registry's.
func transferError(ctx context.Context, what string, err error) error {
	return layers.SourceFailure(ctx, what, "is the index reachable?", err)
}

// sortedCopy returns a sorted copy of s.
func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
