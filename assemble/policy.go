package assemble

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/gantry-dev/gantry/layers"
)

// systemFiles are files a new layer must not replace while a user is
// merged: the merge would silently win over them.
var systemFiles = map[string]bool{"etc/passwd": true, "etc/group": true, "etc/shadow": true, "etc/gshadow": true}

// checkLayerEntries applies the policy to one new layer's entries, and
// refuses entries that would be written through a symlink made by an
// earlier new layer (upper), which could land them anywhere.
func checkLayerEntries(s ImageSpec, layer string, entries []layers.Entry, upper map[string]layers.Entry) error {
	for _, e := range entries {
		if s.User != nil && systemFiles[e.Name] {
			return fmt.Errorf("layer %s writes /%s, which the user merge also writes; drop the file and let user: add the account", layer, e.Name)
		}
		for d := path.Dir(e.Name); d != "." && d != "/"; d = path.Dir(d) {
			if u, ok := upper[d]; ok && u.Type == tar.TypeSymlink {
				return fmt.Errorf("layer %s writes /%s through /%s, a symlink (to %s) made by an earlier layer; write to the real path", layer, e.Name, d, u.Linkname)
			}
		}
		if e.Type == tar.TypeSymlink || e.Type == tar.TypeLink {
			continue
		}
		if !s.Policy.AllowWorldWritable && e.Mode&0o002 != 0 && !(e.Type == tar.TypeDir && e.Mode&0o1000 != 0) {
			return fmt.Errorf("layer %s: /%s is world-writable (mode %04o); fix its mode (fileMode/dirMode) or allow it with allowWorldWritable / --allow-world-writable", layer, e.Name, e.Mode)
		}
		if !s.Policy.AllowSetuid && e.Mode&0o6000 != 0 {
			return fmt.Errorf("layer %s: /%s is setuid or setgid (mode %04o); allow it with allowSetuid / --allow-setuid", layer, e.Name, e.Mode)
		}
	}
	return nil
}

// checkRunAs refuses an image whose config runs as root, unless allowed.
func checkRunAs(s ImageSpec, config []byte) error {
	if s.Policy.AllowRoot {
		return nil
	}
	var c struct {
		Config struct{ User string } `json:"config"`
	}
	if err := json.Unmarshal(config, &c); err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	u, _, _ := strings.Cut(c.Config.User, ":")
	if u == "" || u == "0" || u == "root" {
		shown := c.Config.User
		if shown == "" {
			shown = "unset, so root"
		}
		return fmt.Errorf("the image would run as root (User: %s); add user: (or --user NAME:UID), or allow it with allowRoot: true / --allow-root", shown)
	}
	return nil
}

// runtimeEnvLabel is the JSON label value of an image's runtime settings.
func runtimeEnvLabel(envs []RuntimeEnv) (string, error) {
	b, err := json.Marshal(envs)
	return string(b), err
}
