// Package buildenv reads what the build's surroundings say about it: the
// CI system running it (GitHub Actions, GitLab CI) and the git repository
// of its sources — the source URL, the revision, a release tag — for the
// image's OCI annotations.
package buildenv

import (
	"context"
	"os/exec"
	"regexp"
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
		g := fromGit(ctx, dir)
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

// fromGit asks git about the repository holding dir; without git or a
// repository it finds nothing.
func fromGit(ctx context.Context, dir string) Info {
	run := func(args ...string) string {
		out, err := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...).Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	rev := run("rev-parse", "--verify", "-q", "HEAD")
	if rev == "" {
		return Info{}
	}
	i := Info{Revision: rev, Source: webURL(run("config", "--get", "remote.origin.url"))}
	// a tag names a clean tree only (status, the costly one, only if tagged)
	if tag := run("describe", "--tags", "--exact-match", "HEAD"); tag != "" && run("status", "--porcelain", "--untracked-files=no") == "" {
		i.Version = tag
	}
	return i
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
