package layers

import (
	"path"
	"strings"
	"testing"
)

// FuzzMapPath: whatever a source path and a target are, an entry never
// lands outside its target directory.
func FuzzMapPath(f *testing.F) {
	for _, seed := range [][2]string{
		{"/usr/share/nginx/html", "index.html"},
		{"/app", "../../etc/passwd"},
		{"/app", "a/../../b"},
		{"/", "etc/passwd"},
		{"/app/../etc", "passwd"},
		{"/srv", "/etc/shadow"},
		{"/srv", "."},
		{"/srv", "a//b"},
		{"/srv", "a/./b"},
		{"//srv//x/", "..."},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, target, rel string) {
		to, err := Target(target)
		if err != nil {
			if path.IsAbs(target) {
				t.Fatalf("Target(%q) refused an absolute path: %v", target, err)
			}
			return
		}
		if strings.HasPrefix(to, "/") || strings.Contains("/"+to+"/", "/../") {
			t.Fatalf("Target(%q) = %q", target, to)
		}
		name, err := MapPath(to, rel)
		if err != nil {
			return
		}
		if to != "" && name != to && !strings.HasPrefix(name, to+"/") {
			t.Fatalf("MapPath(%q, %q) = %q, outside the target", to, rel, name)
		}
		if strings.HasPrefix(name, "/") || strings.Contains("/"+name+"/", "/../") {
			t.Fatalf("MapPath(%q, %q) = %q escapes the root", to, rel, name)
		}
	})
}
