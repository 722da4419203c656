package sink

import (
	"context"
	"fmt"

	"github.com/gantry-dev/gantry/assemble"
	"github.com/gantry-dev/gantry/assemble/registry"
	"github.com/gantry-dev/gantry/assemble/verify"
)

// Verify is the sink of --verify: it writes nothing, and compares each
// rebuilt image with the one at its first reference (dest as for a push),
// failing with the first difference (a *verify.Difference).
func Verify(c *registry.Client, dest Destinations) assemble.Sink {
	return &verifySink{names: registrySink{c: c, dest: dest}}
}

type verifySink struct {
	names registrySink // only for its references
}

func (s *verifySink) Prepare(context.Context, []*assemble.Built) error { return nil }

func (s *verifySink) Write(ctx context.Context, b *assemble.Built) ([]string, error) {
	refs, err := s.names.refs(b.Spec)
	if err != nil {
		return nil, err
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("--verify: no reference for %s", b.Spec.Name)
	}
	ref := refs[0]
	desc, err := s.names.c.Get(ctx, ref, nil)
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", ref, registry.Classify(err, ref.Context().String()))
	}
	if err := verify.Compare(ctx, ref.String(), b.Taggable(), desc); err != nil {
		return nil, err
	}
	s.names.c.Progress().Event("verify "+ref.String(), "every platform matches")
	return []string{ref.String()}, nil
}

func (s *verifySink) Commit(context.Context) error { return nil }
func (s *verifySink) Abort()                       {}
