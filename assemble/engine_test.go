package assemble_test

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gantry-dev/gantry/assemble"
	"github.com/gantry-dev/gantry/assemble/progress"
	"github.com/gantry-dev/gantry/assemble/registry"
	"github.com/gantry-dev/gantry/assemble/registrytest"
	"github.com/gantry-dev/gantry/assemble/sink"
	"github.com/gantry-dev/gantry/assemble/spec"
	"github.com/google/go-containerregistry/pkg/authn"
	"go.uber.org/goleak"
)

// testOptions are the engine's and its registry client's options in one,
// as these tests set them.
type testOptions struct {
	CacheDir    string
	Logger      *slog.Logger
	Insecure    bool
	Keychain    authn.Keychain
	Transport   http.RoundTripper
	CACert      string
	Credentials *registry.Credentials
	Retry       registry.RetryPolicy
	Progress    progress.Progress
}

// testEngine is an engine with the registry client it pulls through, so a
// test can push with the same client.
type testEngine struct {
	*assemble.Engine
	client *registry.Client
}

// RegistrySink is the registry sink on the engine's client.
func (e testEngine) RegistrySink(d sink.Destinations, opts ...sink.RegistryOption) assemble.Sink {
	return sink.Registry(e.client, d, opts...)
}

func NewEngine(o testOptions) (testEngine, error) {
	c, err := registry.New(registry.Options{
		Insecure: o.Insecure, Keychain: o.Keychain, Transport: o.Transport, CACert: o.CACert,
		Credentials: o.Credentials, Retry: o.Retry, Logger: o.Logger, Progress: o.Progress,
	})
	if err != nil {
		return testEngine{}, err
	}
	e, err := assemble.NewEngine(assemble.Options{CacheDir: o.CacheDir, Registry: c, Logger: o.Logger, Progress: o.Progress})
	return testEngine{e, c}, err
}

// events records progress events.
type events struct {
	progress.Nop
	mu  sync.Mutex
	all []string
}

func (ev *events) Event(label, status string) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	ev.all = append(ev.all, label+": "+status)
}

// count counts the events whose text contains s.
func (ev *events) count(s string) int {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	n := 0
	for _, e := range ev.all {
		if strings.Contains(e, s) {
			n++
		}
	}
	return n
}

// TestRunLeavesNoGoroutine: a run that pushes (streamed uploads, the push
// check, the pusher) and writes a layout starts nothing that outlives it;
// only the client's idle keep-alive connections remain, and closing them
// leaves no goroutine of gantry's behind.
func TestRunLeavesNoGoroutine(t *testing.T) {
	reg := registrytest.New(t)
	registrytest.PushLayout(t, nginxBase, reg.Host+"/library/nginx:alpine")
	before := goleak.IgnoreCurrent()
	e, err := NewEngine(testOptions{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if _, err := e.Run(context.Background(), []spec.ImageSpec{smallSpec(t, reg.Host+"/library/nginx:alpine")},
		e.RegistrySink(sink.Destinations{Ref: reg.Host + "/web/leak:v1"}), sink.Layout(out, sink.Destinations{})); err != nil {
		t.Fatal(err)
	}
	e.client.CloseIdleConnections()
	goleak.VerifyNone(t, before,
		// the in-process registry's server side of the closed connections
		goleak.IgnoreTopFunction("net/http.(*conn).serve"), goleak.IgnoreAnyFunction("net/http.(*connReader).backgroundRead"))
}
