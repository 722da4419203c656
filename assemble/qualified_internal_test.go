package assemble

import "testing"

func TestQualified(t *testing.T) {
	for in, want := range map[string]string{
		"nginx:alpine":                   "docker.io/library/nginx:alpine",
		"docker.io/library/nginx:alpine": "docker.io/library/nginx:alpine",
		"index.docker.io/acme/app:v1":    "docker.io/acme/app:v1",
		"ghcr.io/acme/app":               "ghcr.io/acme/app:latest",
		"localhost:5000/x@sha256:" + h64: "localhost:5000/x@sha256:" + h64,
		"oci:/layouts/base:tag":          "oci:/layouts/base:tag",
	} {
		if got := qualified(in); got != want {
			t.Errorf("qualified(%q) = %q, want %q", in, got, want)
		}
	}
}

const h64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
