package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/gantry-dev/gantry/assemble/progress"
)

// progressOutput is the progress display: bars, plain lines, or nothing.
type progressOutput interface {
	progress.Progress
	// Writer is where log lines go so they do not tear the bars.
	Writer() io.Writer
	// Wait flushes the display.
	Wait()
}

// newProgress picks the display: bars when stderr is a terminal (or
// --progress=tty), plain lines otherwise (or --progress=plain), nothing
// with --quiet or --progress=none.
func newProgress(mode string, quiet bool, stderr io.Writer) (progressOutput, error) {
	if quiet {
		mode = "none"
	}
	switch mode {
	case "auto":
		if f, ok := stderr.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				return newBars(stderr, false), nil
			}
		}
		return &plainProgress{w: stderr}, nil
	case "tty":
		return newBars(stderr, true), nil
	case "plain":
		return &plainProgress{w: stderr}, nil
	case "none":
		return noProgress{w: stderr}, nil
	}
	return nil, usagef("--progress %q: want auto, tty, plain or none", mode)
}

type noProgress struct {
	progress.Nop
	w io.Writer
}

func (n noProgress) Writer() io.Writer { return n.w }
func (noProgress) Wait()               {}

// plainProgress prints one line per finished step: no control characters,
// fit for CI logs.
type plainProgress struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *plainProgress) line(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format+"\n", args...)
}

func (p *plainProgress) Event(label, status string) { p.line("%s: %s", label, status) }
func (p *plainProgress) Writer() io.Writer          { return lockedWriter{p} }
func (p *plainProgress) Wait()                      {}

// lockedWriter lets log lines share the progress lines' lock, so the two
// never interleave mid-line.
type lockedWriter struct{ p *plainProgress }

func (l lockedWriter) Write(b []byte) (int, error) {
	l.p.mu.Lock()
	defer l.p.mu.Unlock()
	return l.p.w.Write(b)
}

func (p *plainProgress) Task(label string, total int64) progress.Task {
	return &plainTask{p: p, label: label, total: total, start: time.Now()}
}

type plainTask struct {
	p     *plainProgress
	label string
	total int64
	n     atomic.Int64
	start time.Time
}

func (t *plainTask) Add(n int64) { t.n.Add(n) }

func (t *plainTask) Done(status string) {
	n := t.n.Load()
	if n == 0 {
		t.p.line("%s: %s", t.label, status)
		return
	}
	d := time.Since(t.start)
	rate := ""
	if s := d.Seconds(); s > 0.001 {
		rate = fmt.Sprintf(", %s/s", progress.Size(int64(float64(n)/s)))
	}
	t.p.line("%s: %s; %s in %s%s", t.label, status, progress.Size(n), d.Round(time.Millisecond), rate)
}

// bars draws a bar per task with mpb, and a finished line per event.
type bars struct{ p *mpb.Progress }

func newBars(w io.Writer, force bool) *bars {
	opts := []mpb.ContainerOption{mpb.WithOutput(w), mpb.WithRefreshRate(120 * time.Millisecond)}
	if force { // not a terminal: draw anyway, 120 columns wide
		opts = append(opts, mpb.WithAutoRefresh(), mpb.WithWidth(120))
	}
	return &bars{p: mpb.New(opts...)}
}

func (b *bars) Writer() io.Writer { return b.p }
func (b *bars) Wait()             { b.p.Wait() }

func (b *bars) Event(label, status string) {
	bar := b.p.AddBar(1, mpb.BarFillerClearOnComplete(),
		mpb.PrependDecorators(decor.Name(label, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.Name(status)))
	bar.SetTotal(1, true)
}

func (b *bars) Task(label string, total int64) progress.Task {
	t := &barTask{}
	t.bar = b.p.AddBar(total, mpb.BarFillerClearOnComplete(),
		mpb.PrependDecorators(decor.Name(label, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(
			decor.OnComplete(decor.CountersKiloByte("% .1f / % .1f", decor.WCSyncSpace), ""),
			decor.OnComplete(decor.AverageSpeed(decor.SizeB1000(0), " % .1f", decor.WCSyncSpace), ""),
			decor.Any(func(decor.Statistics) string { s, _ := t.status.Load().(string); return s }),
		))
	return t
}

type barTask struct {
	bar    *mpb.Bar
	status atomic.Value
}

func (t *barTask) Add(n int64) { t.bar.IncrInt64(n) }

func (t *barTask) Done(status string) {
	t.status.Store(status)
	if status == "stopped" || strings.HasPrefix(status, "failed") {
		t.bar.Abort(false)
		return
	}
	t.bar.SetTotal(-1, true)
}
