package assemble

import (
	"context"
	"fmt"

	"github.com/gantry-dev/gantry/assemble/spec"
)

// sinkRoles are the sinks that take part in building: those that take
// layers while they are built, and those that may have them already.
type sinkRoles struct {
	streamers []LayerStreamer
	reusers   []LayerReuser
	indexes   []IndexSource
}

// check lets every sink refuse the specs before anything is built, and
// sorts out the sinks' roles in the build.
func check(ctx context.Context, specs []spec.ImageSpec, sinks []Sink) (sinkRoles, error) {
	var r sinkRoles
	for _, s := range sinks {
		if c, ok := s.(Checker); ok {
			if err := c.Check(ctx, specs); err != nil {
				return r, err
			}
		}
		if ls, ok := s.(LayerStreamer); ok {
			r.streamers = append(r.streamers, ls)
		}
		if lr, ok := s.(LayerReuser); ok {
			r.reusers = append(r.reusers, lr)
		}
		if is, ok := s.(IndexSource); ok {
			r.indexes = append(r.indexes, is)
		}
	}
	return r, nil
}

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
// Nothing Run starts outlives it.
func (e *Engine) Run(ctx context.Context, specs []spec.ImageSpec, sinks ...Sink) (_ []Result, err error) {
	tagging := false
	defer func() {
		if err == nil {
			return
		}
		for _, s := range sinks {
			s.Abort()
		}
		// Ctrl-C or SIGTERM: say what is left
		if ctx.Err() != nil && !tagging {
			err = fmt.Errorf("interrupted: no tag was written and no output was left behind (blobs already uploaded stay unreferenced in the registry): %w", err)
		}
	}()
	roles, err := check(ctx, specs, sinks)
	if err != nil {
		return nil, err
	}
	built, err := e.build(ctx, specs, roles)
	if err != nil {
		return nil, err
	}
	for _, s := range sinks {
		if err := s.Prepare(ctx, built); err != nil {
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
				return nil, fmt.Errorf("writing %s: %w", b.Spec.Name, err)
			}
			results[i].References = append(results[i].References, refs...)
		}
	}
	tagging = true // a failure now names the tags already written
	for _, s := range sinks {
		if err := s.Commit(ctx); err != nil {
			return nil, err
		}
	}
	return results, nil
}
