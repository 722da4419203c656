package registry

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"regexp"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Error is a failure talking to a registry, with a hint of what to do
// about it. The CLI exits 3 for it.
type Error struct {
	Err  error
	Hint string
}

// urlInMessage finds the URLs in an error message (go-containerregistry's
// and net/http's messages quote the URL of a failed request).
var urlInMessage = regexp.MustCompile(`https?://[^\s"'<>]+`)

// Error is one line, with the query values that can carry an upload's
// state or a token dropped from the URLs in it.
func (e *Error) Error() string {
	msg := strings.Join(strings.Fields(e.Err.Error()), " ")
	msg = urlInMessage.ReplaceAllStringFunc(msg, func(u string) string {
		trimmed := strings.TrimRight(u, ".,:;)")
		return stripQuery(trimmed) + u[len(trimmed):]
	})
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Classify turns a registry failure on where (a registry or repository)
// into one line: what the registry answered, about which blob when a blob
// request failed, and what to do. An Error or a cancellation is returned
// as it is; so is a local failure (see LocalFile), without the request
// around it: not a registry's fault, not an Error.
func Classify(err error, where string) error {
	var re *Error
	if errors.As(err, &re) {
		return err
	}
	if local := localError(err); local != nil {
		return local
	}
	c := classify(err, where)
	if e, ok := c.(*Error); ok {
		if blob := blobOf(err); blob != "" {
			e.Err = fmt.Errorf("blob %s: %w", blob, e.Err)
		}
	}
	return c
}

func classify(err error, where string) error {
	host, _, _ := strings.Cut(where, "/")
	var te *transport.Error
	var se *stallError
	switch {
	case tlsHint(err, host) != "":
		// before a status: for a local registry, go-containerregistry also
		// tries plain http, and a TLS server answers that with a 400 that
		// only adds noise
		return tlsError(err, where, host)
	case errors.As(err, &te):
		return statusError(te, where, host)
	case errors.Is(err, context.Canceled):
		return err
	case errors.As(err, &se):
		return stallErr(se, host)
	}
	return connError(err, where)
}

// tlsError is a TLS failure on where, with the hint for host.
func tlsError(err error, where, host string) error {
	hint := tlsHint(err, host)
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		err = cv
	}
	return &Error{fmt.Errorf("%s: %w", where, err), hint}
}

// statusError is the registry's answer te on where, with what to check.
func statusError(te *transport.Error, where, host string) error {
	msg := fmt.Sprintf("%d %s on %s", te.StatusCode, strings.ToLower(http.StatusText(te.StatusCode)), where)
	if len(te.Errors) > 0 {
		msg += ": " + strings.ToLower(te.Errors[0].Message)
	}
	var hint string
	switch te.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		hint = fmt.Sprintf("check the credentials for %s: gantry login %s, docker login, or --registry-user", host, host)
	case http.StatusNotFound:
		hint = "check the name and tag"
	case http.StatusTooManyRequests:
		hint = "the registry is rate-limiting; retry later or use a mirror (--mirror)"
	}
	return &Error{errors.New(msg), hint}
}

// stallErr is a stalled transfer, named by host when it is not yet.
func stallErr(se *stallError, host string) error {
	if se.host == "" {
		named := *se
		named.host = host
		se = &named
	}
	return &Error{fmt.Errorf("%w; raise --registry-timeout or GANTRY_REGISTRY_TIMEOUT", se), ""}
}

// connError is a failure to talk to the registry at where: the wrong
// scheme, a refused connection, no route, or another failure.
func connError(err error, where string) error {
	switch {
	case schemeMismatch(err):
		var hint string
		if !triedHTTP(err) {
			hint = "pass --insecure for a plain-HTTP registry"
		}
		return &Error{fmt.Errorf("%s: %w", where, err), hint}
	case errors.Is(err, syscall.ECONNREFUSED):
		hint := "is the registry running and reachable?"
		if !triedHTTP(err) {
			hint += " use --insecure for a plain-HTTP registry"
		}
		return &Error{fmt.Errorf("%s: %w", where, err), hint}
	case unreachable(err):
		return &Error{fmt.Errorf("%s: %w", where, err), "is the registry running and reachable?"}
	}
	// an answer gantry does not know, or a connection to the registry that
	// failed after it was made (a reset): no advice fits
	return &Error{fmt.Errorf("%s: %w", where, err), ""}
}

// schemeMismatch reports an https request that a plain-HTTP server
// answered.
func schemeMismatch(err error) bool {
	var rh tls.RecordHeaderError
	return errors.Is(err, http.ErrSchemeMismatch) || errors.As(err, &rh) ||
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// triedHTTP reports whether a request of err went over plain HTTP: the
// client is insecure, or the registry local (go-containerregistry then
// tries http too), so --insecure would change nothing.
func triedHTTP(err error) bool {
	return strings.Contains(err.Error(), "http://")
}

// unreachable reports a registry that could not be reached at all: its
// name does not resolve, or connecting to it failed.
func unreachable(err error) bool {
	var dns *net.DNSError
	var op *net.OpError
	return errors.As(err, &dns) || errors.As(err, &op) && op.Op == "dial"
}

// blobOf is the blob that err's request was for, if known.
func blobOf(err error) string {
	var be *blobError
	if errors.As(err, &be) {
		return be.blob
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return blobFromRequest(te.Request)
	}
	return ""
}

// LocalFile is implemented by an error about a local file that a request
// read from, such as a layer's blob in the cache (its path): the failure
// is that file's, not the registry's.
type LocalFile interface {
	error
	LocalFile() string
}

// corruptCache ends the message of the layers package's verifier when a
// cached blob does not match its digest; known until that error
// implements LocalFile.
const corruptCache = "(delete it or run with an empty --cache-dir)"

// localError is the local failure inside err, if any: an error that
// implements LocalFile, else the innermost one whose message is the
// verifier's, else a file system error (opening or reading a cached file;
// requests themselves fail with net errors).
func localError(err error) error {
	var lf LocalFile
	if errors.As(err, &lf) {
		return lf
	}
	var verifier error
	for e := err; e != nil; e = errors.Unwrap(e) {
		if strings.Contains(e.Error(), corruptCache) {
			verifier = e
		}
	}
	if verifier != nil {
		return verifier
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}
