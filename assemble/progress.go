package assemble

import (
	"io"
	"net/http"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Progress receives what a run is doing, for bars on a terminal or plain
// lines in a log. Implementations must be safe for concurrent use.
type Progress interface {
	// Task starts a step that moves total bytes (building a layer, uploading
	// a blob).
	Task(label string, total int64) Task
	// Event reports a step that is done at once: a cached layer, a blob the
	// registry had or mounted, a platform's image built.
	Event(label, status string)
}

// Task is one step with a byte count.
type Task interface {
	Add(n int64)
	Done(status string)
}

type nopProgress struct{}

func (nopProgress) Task(string, int64) Task { return nopTask{} }
func (nopProgress) Event(string, string)    {}

type nopTask struct{}

func (nopTask) Add(int64)   {}
func (nopTask) Done(string) {}

// trackedLayer reports reads of a new layer's blob (an upload, or a copy
// into a layout) as a task.
type trackedLayer struct {
	v1.Layer
	label    string
	progress Progress
}

func (t *trackedLayer) Compressed() (io.ReadCloser, error) {
	rc, err := t.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	size, _ := t.Layer.Size()
	return &trackedReader{rc: rc, task: t.progress.Task(t.label, size)}, nil
}

// MediaType is forwarded explicitly: partial.Descriptor and friends look
// for it on the outer type.
func (t *trackedLayer) MediaType() (types.MediaType, error) { return t.Layer.MediaType() }

type trackedReader struct {
	rc   io.ReadCloser
	task Task
	once sync.Once
	err  error
}

func (r *trackedReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	r.task.Add(int64(n))
	if err == io.EOF {
		r.once.Do(func() { r.task.Done("sent") })
	} else if err != nil {
		r.err = err
	}
	return n, err
}

func (r *trackedReader) Close() error {
	r.once.Do(func() {
		status := "stopped"
		if r.err != nil {
			status = "failed: " + r.err.Error()
		}
		r.task.Done(status)
	})
	return r.rc.Close()
}

// progressTransport turns registry answers into progress events: a blob
// the registry has (HEAD 200) or mounted from another repository (201 to a
// POST with mount=).
type progressTransport struct {
	next     http.RoundTripper
	progress Progress
}

func (t *progressTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	path := req.URL.Path
	switch {
	case req.Method == http.MethodHead && resp.StatusCode == http.StatusOK && strings.Contains(path, "/blobs/sha256:"):
		t.progress.Event("blob "+shortDigest(path[strings.LastIndex(path, "/")+1:]), "exists")
	case req.Method == http.MethodPost && resp.StatusCode == http.StatusCreated && req.URL.Query().Get("mount") != "":
		t.progress.Event("blob "+shortDigest(req.URL.Query().Get("mount")), "mounted from "+req.URL.Query().Get("from"))
	}
	return resp, nil
}

func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		d = d[:12]
	}
	return d
}
