// Package progress is how a run reports what it is doing — building a
// layer, uploading a blob, a blob the registry already had — to bars on a
// terminal or plain lines in a log, and the formats those reports share.
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Progress receives what a run is doing. Implementations must be safe for
// concurrent use.
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

// Nop reports nothing.
type Nop struct{}

func (Nop) Task(string, int64) Task { return nopTask{} }
func (Nop) Event(string, string)    {}

type nopTask struct{}

func (nopTask) Add(int64)   {}
func (nopTask) Done(string) {}

// Or returns p, or Nop when p is nil.
func Or(p Progress) Progress {
	if p == nil {
		return Nop{}
	}
	return p
}

// Layer wraps l so that reading its blob (to upload or copy it) is
// reported to p as a task named label.
func Layer(l v1.Layer, label string, p Progress) v1.Layer {
	if _, ok := p.(Nop); ok || p == nil {
		return l
	}
	return &trackedLayer{Layer: l, label: label, progress: p}
}

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

// Short is the first 12 hex digits of a digest, as docker shows them.
func Short(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		d = d[:12]
	}
	return d
}

// Size formats a byte count in decimal units, as docker images does.
func Size(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}
