package assemble

import (
	"context"
	"fmt"

	"github.com/gantry-dev/gantry/assemble/spec"
	"github.com/gantry-dev/gantry/manifests"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Lock resolves each spec's base to its digest and per-platform digests.
func (e *Engine) Lock(ctx context.Context, specs []spec.ImageSpec) (*spec.LockFile, error) {
	l := &spec.LockFile{Version: 1, Images: map[string]spec.LockedBase{}}
	for _, s := range specs {
		bs, err := e.resolveBase(ctx, s.Base, s.Mirrors, nil)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", s.Name, err)
		}
		plats, err := bs.platforms(nil)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", s.Name, err)
		}
		digests := map[string]string{}
		for ps, d := range platformDigests(plats) {
			digests[ps] = d.String()
		}
		lb := s.Locked(bs.digest, bs.mediaType, digests)
		if err := e.lockDebian(ctx, s, plats, &lb); err != nil {
			return nil, fmt.Errorf("image %s: %w", s.Name, err)
		}
		l.Images[s.Name] = lb
		e.progress.Event(s.Name, fmt.Sprintf("%s → %s (%d platforms)", lb.Base, lb.Digest, len(lb.Platforms)))
	}
	return l, nil
}

// platformDigests maps each platform (os/arch[/variant]) to its digest.
func platformDigests(plats []platformImage) map[string]v1.Hash {
	m := map[string]v1.Hash{}
	for _, p := range plats {
		m[manifests.PlatformString(p.platform)] = p.digest
	}
	return m
}
