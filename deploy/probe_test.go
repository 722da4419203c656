package deploy

import (
	"testing"
	"time"

	"github.com/gantry-dev/gantry/manifests"
	corev1 "k8s.io/api/core/v1"
)

func TestRecogniseHTTP(t *testing.T) {
	py := "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/api/health', timeout=4).status == 200 else 1)"
	for _, c := range []struct {
		test []string
		want *HTTPCheck // nil: not an HTTP GET
	}{
		{[]string{"CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/health"}, &HTTPCheck{corev1.URISchemeHTTP, 8080, "/health"}},
		{[]string{"CMD", "/usr/bin/wget", "-qO-", "http://localhost/ready?full=1"}, &HTTPCheck{corev1.URISchemeHTTP, 80, "/ready?full=1"}},
		{[]string{"CMD", "wget", "--spider", "--timeout=3", "http://[::1]:9000/"}, &HTTPCheck{corev1.URISchemeHTTP, 9000, "/"}},
		{[]string{"CMD", "curl", "-f", "http://localhost:3000/healthz"}, &HTTPCheck{corev1.URISchemeHTTP, 3000, "/healthz"}},
		{[]string{"CMD", "curl", "-fsS", "-o", "/dev/null", "https://127.0.0.1:8443/h"}, &HTTPCheck{corev1.URISchemeHTTPS, 8443, "/h"}},
		{[]string{"CMD-SHELL", "curl --fail --silent http://localhost:8080/health"}, &HTTPCheck{corev1.URISchemeHTTP, 8080, "/health"}},
		{[]string{"CMD", "python3", "-c", py}, &HTTPCheck{corev1.URISchemeHTTP, 8000, "/api/health"}},
		{[]string{"CMD", "/usr/local/bin/python3.13", "-c", "import urllib.request as u; u.urlopen(\"http://localhost:5000/\")"}, &HTTPCheck{corev1.URISchemeHTTP, 5000, "/"}},
		// not one plain GET on loopback: an exec probe
		{[]string{"CMD", "curl", "http://localhost:8080/health"}, nil},             // no --fail: a 500 passes
		{[]string{"CMD", "curl", "-f", "-X", "POST", "http://localhost/"}, nil},    // not a GET
		{[]string{"CMD", "curl", "-f", "-H", "Host: x", "http://localhost/"}, nil}, // headers
		{[]string{"CMD", "wget", "-q", "http://db.internal:8080/health"}, nil},     // not loopback
		{[]string{"CMD", "wget", "-q", "http://a/", "http://localhost/"}, nil},     // two URLs
		{[]string{"CMD", "wget", "--post-data=x", "http://localhost/"}, nil},       // POST
		{[]string{"CMD-SHELL", "curl -f http://localhost/ || exit 1"}, nil},        // shell syntax
		{[]string{"CMD", "python3", "-c", "import urllib.request as u; u.urlopen(u.Request('http://localhost/', data=b'x'))"}, nil},
		{[]string{"CMD", "python3", "/app/check.py"}, nil},
		{[]string{"CMD", "pg_isready"}, nil},
		{[]string{"CMD", "wget", "-q", "ftp://localhost/"}, nil},
		{[]string{"CMD", "wget", "-q", "http://user:pw@localhost/"}, nil},
		{[]string{"NONE"}, nil},
	} {
		got, ok := RecogniseHTTP(&manifests.Healthcheck{Test: c.test})
		switch {
		case c.want == nil && ok:
			t.Errorf("%q: recognised as %+v", c.test, got)
		case c.want != nil && (!ok || got != *c.want):
			t.Errorf("%q: %+v %v, want %+v", c.test, got, ok, *c.want)
		}
	}
}

func TestProbes(t *testing.T) {
	// an exec probe, with Docker's defaults for what the check leaves out
	hc := &manifests.Healthcheck{Test: []string{"CMD-SHELL", "pg_isready -U app"}}
	r, l, s := Probes(hc)
	if r.Exec == nil || len(r.Exec.Command) != 3 || r.Exec.Command[2] != "pg_isready -U app" || r.PeriodSeconds != 30 || r.TimeoutSeconds != 30 || r.FailureThreshold != 3 || l == nil || s != nil {
		t.Errorf("readiness %+v, liveness %+v, startup %+v", r, l, s)
	}
	// a start period of 25 s at 10 s intervals: 3 more tries before the retries
	hc = &manifests.Healthcheck{Test: []string{"CMD", "true"}, Interval: 10 * time.Second, Timeout: 1500 * time.Millisecond, StartPeriod: 25 * time.Second, Retries: 2}
	r, _, s = Probes(hc)
	if r.TimeoutSeconds != 2 || r.FailureThreshold != 2 || s == nil || s.FailureThreshold != 5 {
		t.Errorf("readiness %+v, startup %+v", r, s)
	}
	if r, l, s := Probes(&manifests.Healthcheck{Test: []string{"NONE"}}); r != nil || l != nil || s != nil {
		t.Error("NONE made probes")
	}
	if r, _, _ := Probes(nil); r != nil {
		t.Error("no healthcheck made probes")
	}
}
