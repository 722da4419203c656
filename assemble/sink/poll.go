package sink

import (
	"context"
	"io"
	"time"
)

// poll calls try until it reports done or fails, waiting a little longer
// each time (10 ms up to 200 ms), and gives up with ctx's error when ctx
// ends. It starts no goroutine.
func poll(ctx context.Context, try func() (done bool, err error)) error {
	delay := 10 * time.Millisecond
	for {
		done, err := try()
		if done || err != nil {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// ctxWriter stops writing once ctx ends.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// deadliner is a writer whose blocked Write a deadline ends, as an
// *os.File on a FIFO does.
type deadliner interface {
	SetWriteDeadline(time.Time) error
}

// writeCtx runs write on w and ends it when ctx ends: between writes, and
// during one blocked on a reader that does not read when w takes a write
// deadline. Nothing it starts outlives it.
func writeCtx(ctx context.Context, w io.Writer, write func(io.Writer) error) error {
	if d, ok := w.(deadliner); ok {
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			defer close(fired)
			_ = d.SetWriteDeadline(time.Now()) // ErrNoDeadline: only between writes then
		})
		defer func() {
			if !stop() {
				<-fired
				_ = d.SetWriteDeadline(time.Time{})
			}
		}()
	}
	err := write(ctxWriter{ctx, w})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
