package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/assemble/registrytest"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestMirrorPullsBaseThroughRegistry: --mirror docker.io=HOST/prefix pulls
// docker.io/library/nginx:alpine from HOST/prefix/library/nginx (no
// internet here), and the result still names docker.io as its base.
func TestMirrorPullsBaseThroughRegistry(t *testing.T) {
	reg := registrytest.New(t)
	registrytest.PushLayout(t, nginxBase, reg.Host+"/hub-mirror/library/nginx:alpine")
	const base = "docker.io/library/nginx:alpine"
	code, stdout, stderr := gantryEnv(t, nil, "", "append", "--base", base, "--mirror", "docker.io="+reg.Host+"/hub-mirror",
		"--layer", siteDir(t)+":/usr/share/nginx/html", "--user", "app:1001", "--push", reg.Host+"/web/mirrored:v1", "--json", "--cache-dir", t.TempDir())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "base pulled through mirror") || strings.Contains(stderr, "mirror failed") {
		t.Errorf("stderr does not say the base came through the mirror:\n%s", stderr)
	}
	var res []struct{ Base, Digest string }
	for dec := json.NewDecoder(strings.NewReader(stdout)); ; {
		var r struct{ Base, Digest string }
		if err := dec.Decode(&r); err != nil {
			break
		}
		res = append(res, r)
	}
	if len(res) != 1 || res[0].Base != base {
		t.Errorf("result: %s", stdout)
	}
	pulled := false
	for _, q := range reg.Requests() {
		if strings.HasPrefix(q, "GET /v2/hub-mirror/library/nginx/manifests/alpine") {
			pulled = true
		}
	}
	if !pulled {
		t.Errorf("the mirror was not asked for the base: %q", reg.Requests())
	}
	r, _ := name.ParseReference(reg.Host + "/web/mirrored:v1")
	idx, err := remote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if got := im.Annotations["org.opencontainers.image.base.name"]; got != base {
		t.Errorf("base.name annotation %q, want %s", got, base)
	}
	if d, _ := idx.Digest(); len(res) == 1 && d.String() != res[0].Digest {
		t.Errorf("pushed %s, result says %s", d, res[0].Digest)
	}
}
