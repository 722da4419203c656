package registry

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/assemble/registrytest"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// pushThroughFaults pushes a one-layer image to a registry behind a proxy
// that applies rule, and returns its blobs (layer and config; either may
// fail first), the repository and the push's error as Classify gives it.
func pushThroughFaults(t *testing.T, rule registrytest.Rule) ([]v1.Hash, name.Repository, error) {
	t.Helper()
	reg := registrytest.New(t)
	proxy := registrytest.NewFaultProxy(t, reg.Host, rule)
	proxy.Enable()
	c, err := New(Options{Retry: RetryPolicy{Attempts: 2, Base: time.Millisecond, MaxWait: 10 * time.Millisecond, Budget: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	img, err := random.Image(4096, 1)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	dig, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(proxy.Host + "/web/site:v1")
	if err != nil {
		t.Fatal(err)
	}
	err = remote.Write(ref, img, c.RemoteOptions(context.Background())...)
	if err == nil {
		t.Fatal("the push succeeded through the faults")
	}
	if proxy.Injected() == 0 {
		t.Fatal("no fault injected")
	}
	return []v1.Hash{dig, cfg}, ref.Context(), Classify(err, ref.Context().String())
}

func isPatch(r *http.Request) bool {
	return r.Method == http.MethodPatch && strings.Contains(r.URL.Path, "/blobs/uploads/")
}

func checkUploadError(t *testing.T, err error, blobs []v1.Hash, repo name.Repository, answered string) {
	t.Helper()
	msg := err.Error()
	t.Log(msg)
	var re *Error
	if !errors.As(err, &re) {
		t.Errorf("not a registry error: %T", err)
	}
	if !strings.Contains(msg, "blob "+blobs[0].String()) && !strings.Contains(msg, "blob "+blobs[1].String()) {
		t.Errorf("error %q names neither blob %s nor %s", msg, blobs[0], blobs[1])
	}
	for _, w := range []string{repo.String(), answered} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q lacks %q", msg, w)
		}
	}
	for _, no := range []string{"_state", "--insecure", "\n"} {
		if strings.Contains(msg, no) {
			t.Errorf("error %q has %q", msg, no)
		}
	}
}

// A blob upload the registry answers with an error: the message names the
// blob, the repository and the answer, and no upload state.
func TestUploadErrorNamesBlobAndAnswer(t *testing.T) {
	noLeaks(t)
	blobs, repo, err := pushThroughFaults(t, registrytest.Always(isPatch, registrytest.Status(http.StatusInternalServerError, "")))
	checkUploadError(t, err, blobs, repo, "500 internal server error")
}

// A blob upload whose connection is reset: the message names the blob and
// the repository, shows the session URL without its state, and gives no
// --insecure advice (the registry did answer).
func TestUploadResetHasNoState(t *testing.T) {
	noLeaks(t)
	blobs, repo, err := pushThroughFaults(t, registrytest.Always(isPatch, registrytest.ResetAfter(512)))
	checkUploadError(t, err, blobs, repo, "/blobs/uploads/")
}

// URLs inside a message lose the query values that can carry state or
// tokens; the digest stays.
func TestClassifyRedactsURLs(t *testing.T) {
	for _, in := range []error{
		&url.Error{Op: "Patch", URL: "http://reg.example/v2/web/blobs/uploads/u1?_state=SECRET&digest=sha256:abc", Err: errors.New("boom")},
		errors.New("PATCH http://reg.example/v2/web/blobs/uploads/u1?_state=[redacted]&digest=sha256:abc: gave up after 3 tries over 1s: boom"),
	} {
		msg := Classify(in, "reg.example/web").Error()
		t.Log(msg)
		if strings.Contains(msg, "SECRET") || strings.Contains(msg, "_state") {
			t.Errorf("upload state in %q", msg)
		}
		if !strings.Contains(msg, "/v2/web/blobs/uploads/u1?digest=sha256:abc") || !strings.Contains(msg, "boom") {
			t.Errorf("%q lost the URL's path, its digest or the cause", msg)
		}
	}
}

// --insecure is advised only where it can help: a refused connection or a
// plain-HTTP answer to https, when plain HTTP was not already tried.
func TestClassifyInsecureAdvice(t *testing.T) {
	refused := func(u string) error {
		return &url.Error{Op: "Get", URL: u, Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	}
	for _, tc := range []struct {
		err    error
		advise bool
	}{
		{refused("https://reg.example/v2/"), true},
		{refused("http://reg.example/v2/"), false}, // --insecure already, or a local registry
		{errors.New(`Get "https://reg.example/v2/": http: server gave HTTP response to HTTPS client`), true},
		{&url.Error{Op: "Patch", URL: "https://reg.example/v2/web/blobs/uploads/u1", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, false},
	} {
		msg := Classify(tc.err, "reg.example/web").Error()
		if got := strings.Contains(msg, "--insecure"); got != tc.advise {
			t.Errorf("%q: advises --insecure %v, want %v", msg, got, tc.advise)
		}
	}
	// an insecure client that finds nothing listening
	c, err := New(Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	ref, err := c.ParseReference("127.0.0.1:1/web:v1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(context.Background(), ref, nil)
	if err == nil || !strings.Contains(err.Error(), "is the registry running") || strings.Contains(err.Error(), "--insecure") {
		t.Errorf("insecure client, nothing listening: %v", err)
	}
}
