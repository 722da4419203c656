package spec

import (
	"fmt"
	"os"
	"strings"

	"github.com/gantry-dev/gantry/layers"
	"github.com/gantry-dev/gantry/manifests"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// platformVars are BuildKit's names for the platform being built. They are
// never read from the environment: a layer's from: that names one is
// expanded for each platform (ForPlatform).
var platformVars = map[string]func(v1.Platform) string{
	"TARGETOS":       func(p v1.Platform) string { return p.OS },
	"TARGETARCH":     func(p v1.Platform) string { return p.Architecture },
	"TARGETVARIANT":  func(p v1.Platform) string { return p.Variant },
	"TARGETPLATFORM": func(p v1.Platform) string { return manifests.PlatformString(&p) },
}

// hasPlatformVar reports whether s names the platform being built.
func hasPlatformVar(s string) bool {
	for name := range platformVars {
		if strings.Contains(s, "${"+name+"}") {
			return true
		}
	}
	return false
}

// expandPlatform replaces the platform variables in s for p.
func expandPlatform(s string, p v1.Platform) string {
	for name, val := range platformVars {
		s = strings.ReplaceAll(s, "${"+name+"}", val(p))
	}
	return s
}

// PerPlatform reports whether the layer's content depends on the platform
// (its sources name it, or it exists only on some platforms), so that it
// is built for each platform rather than once for all.
func (ls LayerSpec) PerPlatform() bool {
	if len(ls.Platforms) > 0 || ls.Python != nil || ls.Debian != nil {
		return true
	}
	for _, s := range ls.Sources {
		if hasPlatformVar(s.From) {
			return true
		}
	}
	return false
}

// ForPlatform is the layer as built for platform p: its sources with the
// platform variables expanded and checked to exist. ok is false when the
// layer does not exist on p (platforms: leaves it out).
func (ls LayerSpec) ForPlatform(p v1.Platform) (_ layers.Spec, ok bool, err error) {
	if len(ls.Platforms) > 0 {
		found := false
		for _, w := range ls.Platforms {
			found = found || manifests.Matches(&p, w)
		}
		if !found {
			return layers.Spec{}, false, nil
		}
	}
	out := ls.Spec
	out.Sources = make([]layers.Source, len(ls.Sources))
	for i, s := range ls.Sources {
		if hasPlatformVar(s.From) {
			s.From = expandPlatform(s.From, p)
			if _, err := os.Lstat(s.From); err != nil {
				return layers.Spec{}, false, fmt.Errorf("%s does not exist for %s (from: names the platform; give each platform its directory, or list platforms:)", s.From, manifests.PlatformString(&p))
			}
		}
		out.Sources[i] = s
	}
	return out, true, nil
}
