package buildenv

import "strings"

// Run is who ran the build, for SLSA provenance's runDetails: the builder
// (a CI system's runner, or the host) and the CI run's URL.
type Run struct {
	// BuilderID is SLSA's builder.id: the CI system's runner
	// (https://github.com/actions/runner/github-hosted, GitLab's runner
	// URL), or "" for a build on a host.
	BuilderID string
	// InvocationID is the CI run's URL (GitHub Actions: the run and its
	// attempt; GitLab CI: the job), or "".
	InvocationID string
}

// ReadRun reads GitHub Actions' and GitLab CI's documented variables.
func ReadRun(getenv func(string) string) Run {
	switch {
	case getenv("GITHUB_ACTIONS") == "true":
		r := Run{BuilderID: "https://github.com/actions/runner"}
		if env := getenv("RUNNER_ENVIRONMENT"); env != "" {
			r.BuilderID += "/" + env // github-hosted or self-hosted
		}
		server := strings.TrimSuffix(first(getenv("GITHUB_SERVER_URL"), "https://github.com"), "/")
		if repo, id := getenv("GITHUB_REPOSITORY"), getenv("GITHUB_RUN_ID"); repo != "" && id != "" {
			r.InvocationID = server + "/" + repo + "/actions/runs/" + id
			if a := getenv("GITHUB_RUN_ATTEMPT"); a != "" {
				r.InvocationID += "/attempts/" + a
			}
		}
		return r
	case getenv("GITLAB_CI") == "true":
		r := Run{InvocationID: getenv("CI_JOB_URL")}
		if server, id := getenv("CI_SERVER_URL"), getenv("CI_RUNNER_ID"); server != "" && id != "" {
			r.BuilderID = strings.TrimSuffix(server, "/") + "/" + getenv("CI_PROJECT_PATH") + "/-/runners/" + id
		}
		return r
	}
	return Run{}
}
