package assemble

import (
	"context"
	"fmt"
)

// Result is what a run reports per image (gantry build --json).
type Result struct {
	Name       string           `json:"name"`
	References []string         `json:"references"`
	Digest     string           `json:"digest"`
	MediaType  string           `json:"mediaType"`
	Base       string           `json:"base"`
	BaseDigest string           `json:"baseDigest"`
	Platforms  []PlatformResult `json:"platforms"`
}

// Run builds specs and writes them to every sink. Every image is built and
// every gate checked, and every sink prepared (registry reachable and
// writable, output path usable), before the first byte is written; a
// failure after that aborts the sinks, which remove their partial output.
func (e *Engine) Run(ctx context.Context, specs []ImageSpec, sinks ...Sink) (_ []Result, err error) {
	tagging := false
	defer func() {
		// Ctrl-C or SIGTERM: say what is left
		if err != nil && ctx.Err() != nil && !tagging {
			err = fmt.Errorf("interrupted: no tag was written and no output was left behind (blobs already uploaded stay unreferenced in the registry): %w", err)
		}
	}()
	for _, s := range sinks {
		if rs, ok := s.(*registrySink); ok {
			e.stream = newStreamer(e, rs.repoFor)
		}
	}
	defer e.stream.abort() // sessions never committed
	built, err := e.Build(ctx, specs)
	if err != nil {
		return nil, err
	}
	abort := func() {
		for _, s := range sinks {
			s.Abort()
		}
	}
	for _, s := range sinks {
		if err := s.Prepare(ctx, built); err != nil {
			abort()
			return nil, err
		}
	}
	results := make([]Result, len(built))
	for i, b := range built {
		results[i] = Result{
			Name: b.Spec.Name, Digest: b.Digest.String(), MediaType: b.MediaType,
			Base: b.BaseRef, BaseDigest: b.BaseDigest.String(), Platforms: b.Platforms,
			References: []string{},
		}
		for _, s := range sinks {
			refs, err := s.Write(ctx, b)
			if err != nil {
				abort()
				return nil, fmt.Errorf("writing %s: %w", b.Spec.Name, err)
			}
			results[i].References = append(results[i].References, refs...)
		}
	}
	tagging = true // a failure now names the tags already written
	for _, s := range sinks {
		if err := s.Commit(ctx); err != nil {
			abort()
			return nil, err
		}
	}
	return results, nil
}
