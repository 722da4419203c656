package registry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// defaultIdleTimeout is how long a connection may move no byte, either way,
// before its request fails.
const defaultIdleTimeout = 30 * time.Second

// stallError is a request on whose connection no byte moved, either way,
// for the idle timeout: the registry stopped answering (or reading).
type stallError struct {
	op   string // "sending" or "receiving"
	idle time.Duration
	host string // the registry, once stallTransport knows the request
	what string // "the answer to GET /v2/…", likewise
}

func (e *stallError) Error() string {
	msg := fmt.Sprintf("no answer from %s for %s while %s", cmp.Or(e.host, "the registry"), e.idle, e.op)
	if e.what != "" {
		msg += " " + e.what
	}
	return msg
}

// Timeout makes it a net.Error that timed out.
func (e *stallError) Timeout() bool { return true }

// Temporary is false so that go-containerregistry does not retry it on top
// of the retries of gantry's transport (which bound it by the policy).
func (e *stallError) Temporary() bool { return false }

func (e *stallError) Unwrap() error { return os.ErrDeadlineExceeded }

// idleDialer wraps dial so that every connection fails a Read or Write once
// no byte has moved on it, either way, for idle.
func idleDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error), idle time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c := &idleConn{Conn: conn, idle: idle}
		c.moved()
		return c, nil
	}
}

// idleConn is a connection whose deadline (for reads and writes alike)
// moves on with every byte read or written: a blocked read while a body is
// being sent, or a blocked write while an answer streams in, does not time
// out as long as the other direction moves.
type idleConn struct {
	net.Conn
	idle  time.Duration
	stall atomic.Pointer[stallError] // the first stall, once there is one
}

func (c *idleConn) moved() { c.Conn.SetDeadline(time.Now().Add(c.idle)) }

func (c *idleConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.moved()
	}
	return n, c.failed(err, "receiving")
}

func (c *idleConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.moved()
	}
	return n, c.failed(err, "sending")
}

// failed turns the deadline's expiry into a stallError; once the
// connection has stalled one way, the other way's failure (the transport
// closes the connection) is that stall too.
func (c *idleConn) failed(err error, op string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.stall.CompareAndSwap(nil, &stallError{op: op, idle: c.idle})
	}
	if se := c.stall.Load(); se != nil {
		return se
	}
	return err
}

// stallTransport names the registry and the request in a stallError, both
// of the request and of reading its answer's body.
type stallTransport struct {
	next http.RoundTripper
}

func (t *stallTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, stalled(err, req, "the answer to")
	}
	resp.Body = &stallBody{ReadCloser: resp.Body, req: req}
	return resp, nil
}

// stalled is err with the stall, if it is one, said of req: "sending
// PATCH /v2/…", or "receiving " + answer + " GET /v2/…". A URL's query
// (an upload's state) is left out.
func stalled(err error, req *http.Request, answer string) error {
	var se *stallError
	if !errors.As(err, &se) {
		return err
	}
	out := *se
	out.host = req.URL.Host
	out.what = req.Method + " " + req.URL.Path
	if out.op == "receiving" {
		out.what = answer + " " + out.what
	}
	return &out
}

// stallBody is an answer's body that says which request stalled.
type stallBody struct {
	io.ReadCloser
	req *http.Request
}

func (b *stallBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = stalled(err, b.req, "the body of")
	}
	return n, err
}
