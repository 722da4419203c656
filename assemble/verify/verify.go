// Package verify compares a rebuilt image with the one at a reference,
// platform by platform, and names the first difference: the platform, the
// layer (by its history line) and, for a layer gantry made, the first path
// whose entry differs. It makes reproducibility a check, not a claim.
package verify

import (
	"context"
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry/manifests"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Difference is the first way a rebuilt image differs from the one at Ref.
type Difference struct {
	Ref      string
	Platform string // "" for the index itself
	Layer    string // e.g. "layer 5 (gantry: COPY code → /app)", "config"
	Path     string // the first path whose entry differs, "" when unknown
	Detail   string
}

func (d *Difference) Error() string {
	var b strings.Builder
	b.WriteString("verify " + d.Ref)
	if d.Platform != "" {
		b.WriteString(" " + d.Platform)
	}
	b.WriteString(": ")
	if d.Layer != "" {
		b.WriteString(d.Layer + ": ")
	}
	if d.Path != "" {
		b.WriteString("/" + d.Path + ": ")
	}
	b.WriteString(d.Detail)
	return b.String()
}

// Compare compares the rebuilt local image or index with the one at ref
// (what remote.Get returned for it). It returns nil when their digests
// match, a *Difference naming the first difference, or the error that
// kept it from telling.
func Compare(ctx context.Context, ref string, local remote.Taggable, at *remote.Descriptor) error {
	ld, err := digestOf(local)
	if err != nil {
		return err
	}
	if ld == at.Digest {
		return nil
	}
	li, lok := local.(v1.ImageIndex)
	if lok != at.MediaType.IsIndex() {
		return &Difference{Ref: ref, Detail: fmt.Sprintf("the rebuild is a %s, %s is a %s", kind(lok), ref, kind(!lok))}
	}
	if !lok {
		img, err := at.Image()
		if err != nil {
			return err
		}
		return compareImage(ctx, ref, "", local.(v1.Image), img)
	}
	ri, err := at.ImageIndex()
	if err != nil {
		return err
	}
	return compareIndex(ctx, ref, li, ri)
}

func kind(index bool) string {
	if index {
		return "multi-platform index"
	}
	return "single image"
}

func digestOf(t remote.Taggable) (v1.Hash, error) {
	switch x := t.(type) {
	case v1.ImageIndex:
		return x.Digest()
	case v1.Image:
		return x.Digest()
	}
	return v1.Hash{}, fmt.Errorf("verify: %T is neither an image nor an index", t)
}

// platforms maps each platform of an index (attestations left out) to its
// manifest, in the index's order.
func platforms(idx v1.ImageIndex) ([]string, map[string]v1.Hash, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, nil, err
	}
	var order []string
	m := map[string]v1.Hash{}
	for _, d := range im.Manifests {
		if d.Platform == nil || d.Platform.OS == "unknown" {
			continue
		}
		p := manifests.PlatformString(d.Platform)
		order = append(order, p)
		m[p] = d.Digest
	}
	return order, m, nil
}

func compareIndex(ctx context.Context, ref string, local, at v1.ImageIndex) error {
	order, mine, err := platforms(local)
	if err != nil {
		return err
	}
	theirOrder, theirs, err := platforms(at)
	if err != nil {
		return err
	}
	for _, p := range order {
		d, ok := theirs[p]
		switch {
		case !ok:
			return &Difference{Ref: ref, Platform: p, Detail: "the rebuild has this platform, " + ref + " does not"}
		case d == mine[p]:
			continue
		}
		li, err := local.Image(mine[p])
		if err != nil {
			return err
		}
		ri, err := at.Image(d)
		if err != nil {
			return err
		}
		return compareImage(ctx, ref, p, li, ri)
	}
	for _, p := range theirOrder {
		if _, ok := mine[p]; !ok {
			return &Difference{Ref: ref, Platform: p, Detail: ref + " has this platform, the rebuild does not"}
		}
	}
	return &Difference{Ref: ref, Detail: "every platform's image matches, the index differs (its annotations or order)"}
}
