package sink

import (
	"context"
	"fmt"

	"github.com/gantry-dev/gantry/assemble"
	"github.com/gantry-dev/gantry/assemble/attest"
	"github.com/gantry-dev/gantry/assemble/registry"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"
)

// pushReferrers pushes b's SBOM and provenance artifacts by digest, after
// its images and before any tag. go-containerregistry asks the registry
// for its referrers API and, where it has none (CNCF distribution, GHCR),
// adds each artifact to the referrers tag schema's index, tagged
// sha256-<subject hex>. That index is read and written again for each
// artifact, so one subject's artifacts go in turn; the subjects (the
// platform images) go side by side, each a dozen round trips.
func pushReferrers(ctx context.Context, p *remote.Pusher, repo name.Repository, b *assemble.Built) error {
	var subjects []v1.Hash
	bySubject := map[v1.Hash][]*attest.Artifact{}
	for _, a := range b.Referrers {
		d := a.Subject.Digest
		if _, ok := bySubject[d]; !ok {
			subjects = append(subjects, d)
		}
		bySubject[d] = append(bySubject[d], a)
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, d := range subjects {
		g.Go(func() error {
			for _, a := range bySubject[d] {
				if err := p.Push(gctx, repo.Digest(a.Digest.String()), a.Image); err != nil {
					return fmt.Errorf("attaching the %s artifact to %s (for a registry that takes no OCI artifacts: --sbom=false --provenance=false): %w",
						a.ArtifactType, a.Subject.Digest, registry.Classify(err, repo.String()))
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// writeReferrers writes b's SBOM and provenance artifacts into the layout,
// listed in index.json without a name, where oras, regctl and skopeo find
// them by their subject.
func (s *layoutSink) writeReferrers(ctx context.Context, b *assemble.Built) error {
	for _, a := range b.Referrers {
		if err := s.writeTaggable(ctx, a.Image); err != nil {
			return err
		}
		if s.refs[a.Digest] {
			continue
		}
		s.refs[a.Digest] = true
		s.refEntries = append(s.refEntries, a.Descriptor)
	}
	return nil
}

// isReferrer reports an old index.json entry this run lists again.
func (s *layoutSink) isReferrer(d v1.Descriptor) bool {
	_, named := d.Annotations["org.opencontainers.image.ref.name"]
	return !named && s.refs[d.Digest]
}
