package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// compareImage names the first difference of two images of a platform:
// a layer (and in it a path), else the config, else the manifest.
func compareImage(ctx context.Context, ref, plat string, local, at v1.Image) error {
	lm, err := local.Manifest()
	if err != nil {
		return err
	}
	rm, err := at.Manifest()
	if err != nil {
		return fmt.Errorf("reading %s %s: %w", ref, plat, err)
	}
	diff := &Difference{Ref: ref, Platform: plat}
	for i := 0; i < max(len(lm.Layers), len(rm.Layers)); i++ {
		if i >= len(lm.Layers) || i >= len(rm.Layers) {
			diff.Detail = fmt.Sprintf("the rebuild has %d layers, %s has %d", len(lm.Layers), ref, len(rm.Layers))
			return diff
		}
		if lm.Layers[i].Digest == rm.Layers[i].Digest {
			continue
		}
		return layerDifference(ctx, diff, i, local, at, lm.Layers[i].Digest, rm.Layers[i].Digest)
	}
	if lm.Config.Digest != rm.Config.Digest {
		diff.Layer = "config"
		diff.Detail = configDifference(local, at)
		return diff
	}
	diff.Layer = "manifest"
	diff.Detail = "the layers and config match; the manifest differs (its media type or annotations)"
	return diff
}

// layerDifference describes layer i, which differs: by its history line,
// and for a layer gantry made, by the first path whose entry differs.
func layerDifference(ctx context.Context, diff *Difference, i int, local, at v1.Image, ld, rd v1.Hash) error {
	created := layerHistory(local, i)
	diff.Layer = fmt.Sprintf("layer %d", i+1)
	if created != "" {
		diff.Layer += " (" + created + ")"
	}
	diff.Detail = fmt.Sprintf("rebuilt %s, %s at the reference", ld, rd)
	if !strings.HasPrefix(created, "gantry: ") {
		return diff // a base layer: the base changed
	}
	ll, err := local.LayerByDigest(ld)
	if err != nil {
		return err
	}
	rl, err := at.LayerByDigest(rd)
	if err != nil {
		return err
	}
	path, what, err := firstPathDifference(ctx, ll, rl)
	if err != nil {
		return fmt.Errorf("verify %s %s: comparing %s: %w", diff.Ref, diff.Platform, diff.Layer, err)
	}
	if path != "" {
		diff.Path, diff.Detail = path, what
	}
	return diff
}

// layerHistory is the created_by of the config's history entry of layer i.
func layerHistory(img v1.Image, i int) string {
	cf, err := img.ConfigFile()
	if err != nil {
		return ""
	}
	n := 0
	for _, h := range cf.History {
		if h.EmptyLayer {
			continue
		}
		if n == i {
			return h.CreatedBy
		}
		n++
	}
	return ""
}

// configDifference names the first top-level (or config.*) field of the
// image configs that differs.
func configDifference(local, at v1.Image) string {
	var a, b map[string]any
	la, err1 := local.RawConfigFile()
	lb, err2 := at.RawConfigFile()
	if err1 != nil || err2 != nil || json.Unmarshal(la, &a) != nil || json.Unmarshal(lb, &b) != nil {
		return "the image configs differ"
	}
	if f := firstField("", a, b); f != "" {
		return "the image configs differ in " + f
	}
	return "the image configs differ"
}

func firstField(prefix string, a, b map[string]any) string {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		if reflect.DeepEqual(a[k], b[k]) {
			continue
		}
		am, ok1 := a[k].(map[string]any)
		bm, ok2 := b[k].(map[string]any)
		if ok1 && ok2 && prefix == "" {
			if f := firstField(k+".", am, bm); f != "" {
				return f
			}
		}
		return prefix + k
	}
	return ""
}
