package registry

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
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

func (e *Error) Error() string {
	msg := strings.Join(strings.Fields(e.Err.Error()), " ")
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Classify turns a registry failure on where (a registry or repository)
// into one line: what the registry answered and what to do. An Error or a
// cancellation is returned as it is.
func Classify(err error, where string) error {
	var re *Error
	if errors.As(err, &re) {
		return err
	}
	host, _, _ := strings.Cut(where, "/")
	var te *transport.Error
	var se *stallError
	var ne net.Error
	switch {
	case tlsHint(err, host) != "":
		// before a status: for a local registry, go-containerregistry also
		// tries plain http, and a TLS server answers that with a 400 that
		// only adds noise
		hint := tlsHint(err, host)
		var cv *tls.CertificateVerificationError
		if errors.As(err, &cv) {
			err = cv
		}
		return &Error{fmt.Errorf("%s: %w", where, err), hint}
	case errors.As(err, &te):
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
	case errors.Is(err, context.Canceled):
		return err
	case errors.As(err, &se):
		if se.host == "" {
			named := *se
			named.host = host
			se = &named
		}
		return &Error{fmt.Errorf("%w; raise --registry-timeout or GANTRY_REGISTRY_TIMEOUT", se), ""}
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return &Error{fmt.Errorf("%s: %w", where, err), "pass --insecure for a plain-HTTP registry"}
	case errors.As(err, &ne), errors.Is(err, syscall.ECONNREFUSED):
		return &Error{fmt.Errorf("%s: %w", where, err), "is the registry running and reachable? use --insecure for a plain-HTTP registry"}
	}
	return &Error{fmt.Errorf("%s: %w", where, err), ""}
}
