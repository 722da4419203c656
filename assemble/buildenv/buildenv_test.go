package buildenv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromCI(t *testing.T) {
	gh := Read(context.Background(), t.TempDir(), env(map[string]string{
		"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/app",
		"GITHUB_SHA": "abc123", "GITHUB_REF_TYPE": "tag", "GITHUB_REF_NAME": "v1.2.0",
	}))
	if gh != (Info{CI: "github-actions", Source: "https://github.com/acme/app", Revision: "abc123", Version: "v1.2.0"}) {
		t.Errorf("GitHub Actions: %+v", gh)
	}
	gl := Read(context.Background(), t.TempDir(), env(map[string]string{
		"GITLAB_CI": "true", "CI_PROJECT_URL": "https://gitlab.example.com/acme/app", "CI_COMMIT_SHA": "def456",
	}))
	if gl != (Info{CI: "gitlab-ci", Source: "https://gitlab.example.com/acme/app", Revision: "def456"}) {
		t.Errorf("GitLab CI: %+v", gl)
	}
	if a := gh.Annotations(); a["org.opencontainers.image.source"] != "https://github.com/acme/app" || a["org.opencontainers.image.version"] != "v1.2.0" || len(a) != 3 {
		t.Errorf("annotations: %v", a)
	}
	if a := (Info{}).Annotations(); len(a) != 0 {
		t.Errorf("empty info gives %v", a)
	}
}

func TestFromGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	dir := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.email=t@example.com", "-c", "user.name=t"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	if i := Read(context.Background(), dir, env(nil)); i != (Info{}) {
		t.Errorf("not a repository: %+v", i)
	}
	git("init", "-q")
	git("commit", "-q", "--allow-empty", "-m", "x")
	git("remote", "add", "origin", "https://user:token@example.com/acme/app.git")
	git("tag", "v0.1.0")
	i := Read(context.Background(), dir, env(nil))
	if i.Source != "https://example.com/acme/app" || len(i.Revision) != 40 || i.Version != "v0.1.0" || i.CI != "" {
		t.Errorf("git: %+v", i)
	}
	// a new commit, an annotated tag, everything packed: still read, from a subdirectory
	git("commit", "-q", "--allow-empty", "-m", "y")
	git("tag", "-a", "-m", "release", "v0.2.0")
	git("pack-refs", "--all")
	sub := filepath.Join(dir, "deep", "sub")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	j := Read(context.Background(), sub, env(nil))
	if j.Version != "v0.2.0" || len(j.Revision) != 40 || j.Revision == i.Revision || j.Source != i.Source {
		t.Errorf("packed refs: %+v (before: %+v)", j, i)
	}
}

func TestWebURL(t *testing.T) {
	for in, want := range map[string]string{
		"git@github.com:acme/app.git":           "https://github.com/acme/app",
		"https://github.com/acme/app.git":       "https://github.com/acme/app",
		"https://x-token:secret@gitlab.com/a/b": "https://gitlab.com/a/b",
		"ssh://git@example.com/acme/app.git":    "https://example.com/acme/app",
		"http://git.local/acme/app":             "http://git.local/acme/app",
		"/srv/git/app.git":                      "",
		"":                                      "",
	} {
		if got := webURL(in); got != want {
			t.Errorf("webURL(%q) = %q, want %q", in, got, want)
		}
	}
}
