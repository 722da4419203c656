// Package buildenv reads what the build's surroundings say about it: the
// CI system running it (GitHub Actions, GitLab CI) and the git repository
// of its sources — the source URL, the revision, a release tag — for the
// image's OCI annotations.
package buildenv

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Info is what is known of the build's source.
type Info struct {
	Source   string // repository URL, e.g. https://github.com/acme/app
	Revision string // commit
	Version  string // the release tag being built, if any
	CI       string // "github-actions", "gitlab-ci" or ""
}

// Annotations are the OCI annotations Info fills.
func (i Info) Annotations() map[string]string {
	a := map[string]string{}
	for k, v := range map[string]string{
		"org.opencontainers.image.source":   i.Source,
		"org.opencontainers.image.revision": i.Revision,
		"org.opencontainers.image.version":  i.Version,
	} {
		if v != "" {
			a[k] = v
		}
	}
	return a
}

// Read reads the CI environment (getenv) and, for what it does not say,
// the git repository holding dir. Nothing found is no error: the fields
// stay empty.
func Read(ctx context.Context, dir string, getenv func(string) string) Info {
	i := fromCI(getenv)
	if i.Source == "" || i.Revision == "" || i.Version == "" {
		g := fromGit(dir)
		i.Source = first(i.Source, g.Source)
		i.Revision = first(i.Revision, g.Revision)
		i.Version = first(i.Version, g.Version)
	}
	return i
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// fromCI reads GitHub Actions' and GitLab CI's documented variables.
func fromCI(getenv func(string) string) Info {
	switch {
	case getenv("GITHUB_ACTIONS") == "true":
		i := Info{CI: "github-actions", Revision: getenv("GITHUB_SHA")}
		if repo := getenv("GITHUB_REPOSITORY"); repo != "" {
			i.Source = strings.TrimSuffix(first(getenv("GITHUB_SERVER_URL"), "https://github.com"), "/") + "/" + repo
		}
		if getenv("GITHUB_REF_TYPE") == "tag" {
			i.Version = getenv("GITHUB_REF_NAME")
		}
		return i
	case getenv("GITLAB_CI") == "true":
		return Info{CI: "gitlab-ci", Source: getenv("CI_PROJECT_URL"), Revision: getenv("CI_COMMIT_SHA"), Version: getenv("CI_COMMIT_TAG")}
	}
	return Info{}
}

// fromGit reads the git repository holding dir from its files (no git
// process: a build must not pay for one): HEAD's commit, origin's URL, and
// a tag naming HEAD. Without a repository it finds nothing.
func fromGit(dir string) Info {
	gitDir, common, ok := findGitDir(dir)
	if !ok {
		return Info{}
	}
	rev := resolveRef(gitDir, common, "HEAD")
	if rev == "" {
		return Info{}
	}
	return Info{Revision: rev, Source: webURL(originURL(common)), Version: tagOf(common, rev)}
}

// findGitDir finds the .git directory above dir (a worktree's .git file
// names its own), and the common directory holding refs and config.
func findGitDir(dir string) (gitDir, common string, ok bool) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", "", false
	}
	for {
		p := filepath.Join(d, ".git")
		if fi, err := os.Stat(p); err == nil {
			gitDir = p
			if !fi.IsDir() { // "gitdir: PATH" (a worktree or submodule)
				b, err := os.ReadFile(p)
				target, found := strings.CutPrefix(strings.TrimSpace(string(b)), "gitdir: ")
				if err != nil || !found {
					return "", "", false
				}
				if !filepath.IsAbs(target) {
					target = filepath.Join(d, target)
				}
				gitDir = target
			}
			common = gitDir
			if b, err := os.ReadFile(filepath.Join(gitDir, "commondir")); err == nil {
				c := strings.TrimSpace(string(b))
				if !filepath.IsAbs(c) {
					c = filepath.Join(gitDir, c)
				}
				common = c
			}
			return gitDir, common, true
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", "", false
		}
		d = parent
	}
}

var hexCommit = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// resolveRef follows name (HEAD, refs/heads/x) to a commit, through
// symbolic refs, loose refs and packed-refs.
func resolveRef(gitDir, common, name string) string {
	for range 10 {
		b, err := os.ReadFile(filepath.Join(gitDir, name))
		if err != nil {
			b, err = os.ReadFile(filepath.Join(common, name))
		}
		v := strings.TrimSpace(string(b))
		if err != nil {
			v = packedRef(common, name)
		}
		if target, ok := strings.CutPrefix(v, "ref: "); ok {
			name = target
			continue
		}
		if hexCommit.MatchString(v) {
			return v
		}
		return ""
	}
	return ""
}

// packedRef is name's commit in packed-refs.
func packedRef(common, name string) string {
	b, _ := os.ReadFile(filepath.Join(common, "packed-refs"))
	for _, line := range strings.Split(string(b), "\n") {
		if h, ref, ok := strings.Cut(line, " "); ok && ref == name {
			return h
		}
	}
	return ""
}

// originURL is remote.origin.url from the repository's config.
func originURL(common string) string {
	b, _ := os.ReadFile(filepath.Join(common, "config"))
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			in = strings.ReplaceAll(line, " ", "") == `[remote"origin"]`
			continue
		}
		if k, v, ok := strings.Cut(line, "="); in && ok && strings.TrimSpace(k) == "url" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// tagOf is a tag naming commit rev (lightweight, or annotated and peeled
// in packed-refs), the first by name.
func tagOf(common, rev string) string {
	var tags []string
	dir := filepath.Join(common, "refs", "tags")
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == rev {
				rel, _ := filepath.Rel(dir, p)
				tags = append(tags, filepath.ToSlash(rel))
			}
		}
		return nil
	})
	b, _ := os.ReadFile(filepath.Join(common, "packed-refs"))
	last := ""
	for _, line := range strings.Split(string(b), "\n") {
		if peeled, ok := strings.CutPrefix(line, "^"); ok { // the commit of the tag on the line before
			if peeled == rev && last != "" {
				tags = append(tags, last)
			}
			continue
		}
		last = ""
		if h, ref, ok := strings.Cut(line, " "); ok {
			if t, ok := strings.CutPrefix(ref, "refs/tags/"); ok {
				last = t
				if h == rev {
					tags = append(tags, t)
				}
			}
		}
	}
	if len(tags) == 0 {
		return ""
	}
	slices.Sort(tags)
	return tags[0]
}

var scpLike = regexp.MustCompile(`^(?:[\w.-]+@)?([\w.-]+):([^/].*)$`)

// webURL turns a git remote into the repository's web URL, without
// credentials: git@github.com:acme/app.git → https://github.com/acme/app.
func webURL(remote string) string {
	if remote == "" || strings.HasPrefix(remote, "/") || strings.HasPrefix(remote, "file:") {
		return ""
	}
	u := remote
	if m := scpLike.FindStringSubmatch(remote); m != nil && !strings.Contains(remote, "://") {
		u = "https://" + m[1] + "/" + m[2]
	}
	for _, p := range []string{"ssh://", "git://", "http://", "https://"} {
		if rest, ok := strings.CutPrefix(u, p); ok {
			if at := strings.Index(rest, "@"); at >= 0 && at < strings.Index(rest+"/", "/") {
				rest = rest[at+1:] // no user or token
			}
			if p == "http://" {
				return "http://" + strings.TrimSuffix(rest, ".git")
			}
			return "https://" + strings.TrimSuffix(rest, ".git")
		}
	}
	return ""
}
