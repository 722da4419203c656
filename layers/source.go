package layers

import (
	"context"
	"fmt"
)

// SourceError is a failed request to a package source a layer installs
// from (a Python index, a Debian archive). It wraps the network error and
// marks it as the source's, so that the engine does not take it for the
// base's registry failing (which it reports with exit 3).
type SourceError struct {
	What string // what was being fetched, e.g. "fetching URL"
	Hint string // what to check, e.g. "is the archive reachable?"
	Err  error
}

func (e *SourceError) Error() string { return fmt.Sprintf("%s: %v (%s)", e.What, e.Err, e.Hint) }
func (e *SourceError) Unwrap() error { return e.Err }

// SourceFailure is err, a failed transfer of what, as a SourceError; when
// ctx is done it is the interrupt instead.
func SourceFailure(ctx context.Context, what, hint string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	return &SourceError{What: what, Hint: hint, Err: err}
}
