package main

import (
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/assemble/registrytest"
)

// TestCertificateErrorCLI: a registry whose certificate is not trusted
// fails at once with exit 3, naming the host and --ca-cert / --insecure;
// --ca-cert and --insecure each make the same push work.
func TestCertificateErrorCLI(t *testing.T) {
	ca := registrytest.NewCA(t)
	reg := registrytest.New(t, registrytest.WithTLS(ca))
	registrytest.PushLayout(t, nginxBase, reg.Host+"/library/nginx:alpine", reg.Options()...)
	args := func(dest string, extra ...string) []string {
		return append([]string{"append", "--base", reg.Host + "/library/nginx:alpine", "--layer", siteDir(t) + ":/srv", "--user", "app:1001",
			"--push", reg.Host + "/web/" + dest, "--cache-dir", t.TempDir()}, extra...)
	}
	start := time.Now()
	code, stdout, stderr := gantryEnv(t, nil, "", args("untrusted:v1")...)
	if code != exitRegistry || stdout != "" {
		t.Errorf("exit %d, want %d; stdout %q", code, exitRegistry, stdout)
	}
	want := "gantry: error: cannot push to " + reg.Host + "/web/untrusted: " + reg.Host + "/web/untrusted: tls: failed to verify certificate: x509: certificate signed by unknown authority (the TLS certificate of " + reg.Host + " is not trusted: pass --ca-cert FILE with its CA, or --insecure)"
	if got := lastLine(stderr); got != want {
		t.Errorf("error:\n got %q\nwant %q", got, want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s to report an untrusted certificate", d)
	}
	for _, extra := range [][]string{{"--ca-cert", ca.File}, {"--insecure"}} {
		if code, _, stderr := gantryEnv(t, nil, "", args("trusted:v1", extra...)...); code != 0 {
			t.Errorf("with %s: exit %d: %s", extra[0], code, stderr)
		}
	}
	for _, q := range reg.Requests() {
		if !strings.HasSuffix(q, " tls") {
			t.Errorf("request without TLS: %s", q)
		}
	}
}

// tokenRegistry is a registry with Bearer token auth: a token server (TLS,
