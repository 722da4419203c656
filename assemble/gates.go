package assemble

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/gantry-dev/gantry/assemble/progress"
	"github.com/gantry-dev/gantry/assemble/spec"
	"github.com/gantry-dev/gantry/layers"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// gates are every check an image must pass before anything is written:
// the policy on new entries, the user the image runs as, the number of
// layers and the size. Each says what to change, or which relaxation
// allows it.
type gates struct {
	policy     spec.Policy
	userMerged bool // a user is merged into /etc/passwd and /etc/group
}

// systemFiles are files a new layer must not replace while a user is
// merged: the merge would silently win over them.
var systemFiles = map[string]bool{"etc/passwd": true, "etc/group": true, "etc/shadow": true, "etc/gshadow": true}

// entries applies the policy to a new content layer's entries.
func (g gates) entries(layer string, entries []layers.Entry, upper map[string]layers.Entry) error {
	if g.userMerged {
		for _, e := range entries {
			if systemFiles[e.Name] {
				return fmt.Errorf("layer %s writes /%s, which the user merge also writes; drop the file and let user: add the account", layer, e.Name)
			}
		}
	}
	return g.modes(layer, entries, upper)
}

// userEntries applies the policy to the user layer, which is the one
// writing /etc/passwd and /etc/group.
func (g gates) userEntries(entries []layers.Entry, upper map[string]layers.Entry) error {
	return g.modes("user", entries, upper)
}

// modes refuses world-writable and setuid entries, and entries that would
// be written through a symlink made by an earlier new layer (upper), which
// could land them anywhere.
func (g gates) modes(layer string, entries []layers.Entry, upper map[string]layers.Entry) error {
	for _, e := range entries {
		for d := path.Dir(e.Name); d != "." && d != "/"; d = path.Dir(d) {
			if u, ok := upper[d]; ok && u.Type == tar.TypeSymlink {
				return fmt.Errorf("layer %s writes /%s through /%s, a symlink (to %s) made by an earlier layer; write to the real path", layer, e.Name, d, u.Linkname)
			}
		}
		if e.Type == tar.TypeSymlink || e.Type == tar.TypeLink {
			continue
		}
		if !g.policy.AllowWorldWritable && e.Mode&0o002 != 0 && !(e.Type == tar.TypeDir && e.Mode&0o1000 != 0) {
			return fmt.Errorf("layer %s: /%s is world-writable (mode %04o); fix its mode (fileMode/dirMode) or allow it with allowWorldWritable / --allow-world-writable", layer, e.Name, e.Mode)
		}
		if !g.policy.AllowSetuid && e.Mode&0o6000 != 0 {
			return fmt.Errorf("layer %s: /%s is setuid or setgid (mode %04o); allow it with allowSetuid / --allow-setuid", layer, e.Name, e.Mode)
		}
	}
	return nil
}

// runAs refuses an image whose config runs as root, unless allowed.
func (g gates) runAs(config []byte) error {
	if g.policy.AllowRoot {
		return nil
	}
	var c struct {
		Config struct{ User string } `json:"config"`
	}
	if err := json.Unmarshal(config, &c); err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	u, _, _ := strings.Cut(c.Config.User, ":")
	uid, err := strconv.Atoi(u)
	if u == "" || u == "root" || err == nil && uid == 0 { // "00" and "+0" are root too
		shown := c.Config.User
		if shown == "" {
			shown = "unset, so root"
		}
		return fmt.Errorf("the image would run as root (User: %s); add user: (or --user NAME:UID), or allow it with allowRoot: true / --allow-root", shown)
	}
	return nil
}

// arch refuses a new layer holding an ELF file of another architecture
// than the platform it goes to, unless allowed.
func (g gates) arch(layer string, l *layers.Layer, p *v1.Platform) error {
	if g.policy.AllowForeignArch {
		return nil
	}
	if err := layers.CheckArch(l.ELFFiles(), p.OS, p.Architecture, p.Variant); err != nil {
		return fmt.Errorf("layer %s: %w", layer, err)
	}
	return nil
}

// layerCount enforces maxLayers.
func (g gates) layerCount(fromBase, added int) error {
	if n := fromBase + added; g.policy.MaxLayers > 0 && n > g.policy.MaxLayers {
		return fmt.Errorf("image has %d layers (%d from the base), over maxLayers %d; nothing was pushed", n, fromBase, g.policy.MaxLayers)
	}
	return nil
}

// size enforces maxSize (0: no limit) on the uncompressed size.
func (g gates) size(uncompressed, maxSize int64) error {
	if maxSize > 0 && uncompressed > maxSize {
		return fmt.Errorf("image is %s uncompressed, %s over maxSize %s; nothing was pushed", progress.Size(uncompressed), progress.Size(uncompressed-maxSize), progress.Size(maxSize))
	}
	return nil
}
