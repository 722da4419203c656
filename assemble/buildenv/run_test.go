package buildenv

import "testing"

func TestReadRun(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		name string
		env  map[string]string
		want Run
	}{
		{"host", nil, Run{}},
		{"github", map[string]string{"GITHUB_ACTIONS": "true", "RUNNER_ENVIRONMENT": "github-hosted", "GITHUB_REPOSITORY": "acme/app", "GITHUB_RUN_ID": "42", "GITHUB_RUN_ATTEMPT": "2"},
			Run{BuilderID: "https://github.com/actions/runner/github-hosted", InvocationID: "https://github.com/acme/app/actions/runs/42/attempts/2"}},
		{"github enterprise", map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://ghe.example/", "GITHUB_REPOSITORY": "acme/app", "GITHUB_RUN_ID": "7"},
			Run{BuilderID: "https://github.com/actions/runner", InvocationID: "https://ghe.example/acme/app/actions/runs/7"}},
		{"gitlab", map[string]string{"GITLAB_CI": "true", "CI_SERVER_URL": "https://gitlab.com", "CI_PROJECT_PATH": "acme/app", "CI_RUNNER_ID": "12", "CI_JOB_URL": "https://gitlab.com/acme/app/-/jobs/99"},
			Run{BuilderID: "https://gitlab.com/acme/app/-/runners/12", InvocationID: "https://gitlab.com/acme/app/-/jobs/99"}},
	} {
		if got := ReadRun(env(tc.env)); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
