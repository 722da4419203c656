package main

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/assemble/registrytest"
)

// TestSBOMCommand: gantry sbom prints the SPDX document attached to a
// platform image, from a registry without the referrers API; it fails
// with exit 1 for a platform the image lacks and for an image without one.
func TestSBOMCommand(t *testing.T) {
	reg := registrytest.New(t)
	common := []string{"-f", example, "--cache-dir", t.TempDir(),
		"--base", "taskflow-frontend=oci:" + nginxBase + ":alpine", "--base", "taskflow-backend=oci:" + pythonBase + ":3.13-slim"}
	if code, _, stderr := gantry(t, append([]string{"build", "--push", reg.Host + "/taskflow"}, common...)...); code != 0 {
		t.Fatalf("build: exit %d: %s", code, stderr)
	}
	ref := reg.Host + "/taskflow/taskflow-backend:latest"
	for _, tc := range []struct{ platform, arch string }{{"linux/arm64", "arm64"}, {"", runtime.GOARCH}} {
		args := []string{"sbom", ref}
		if tc.platform != "" {
			args = append(args, "--platform", tc.platform)
		}
		code, stdout, stderr := gantry(t, args...)
		if code != 0 {
			t.Fatalf("sbom %s: exit %d: %s", tc.platform, code, stderr)
		}
		var doc struct {
			SPDXVersion string
			Packages    []struct {
				Name         string
				ExternalRefs []struct{ ReferenceLocator string }
			}
		}
		if err := json.Unmarshal([]byte(stdout), &doc); err != nil || doc.SPDXVersion != "SPDX-2.3" {
			t.Fatalf("sbom %s: not an SPDX 2.3 document (%v): %.200s", tc.platform, err, stdout)
		}
		if !strings.Contains(stdout, "pkg:deb/debian/libc6@2.36-9%2Bdeb12u9?arch="+tc.arch) || !strings.Contains(stdout, "pkg:pypi/tfnative@1.0.0") {
			t.Errorf("sbom %s: no %s libc6 or tfnative: %.300s", tc.platform, tc.arch, stdout)
		}
	}
	code, _, stderr := gantry(t, "sbom", ref, "--platform", "linux/s390x")
	if code != 1 || !strings.Contains(stderr, "no linux/s390x image (it has linux/amd64, linux/arm64/v8)") {
		t.Errorf("sbom of a missing platform: exit %d: %s", code, stderr)
	}
	if code, _, stderr := gantry(t, append([]string{"build", "--sbom=false", "--push", reg.Host + "/bare"}, common...)...); code != 0 {
		t.Fatalf("build --sbom=false: exit %d: %s", code, stderr)
	}
	code, _, stderr = gantry(t, "sbom", reg.Host+"/bare/taskflow-backend:latest", "--platform", "linux/amd64")
	if code != 1 || !strings.Contains(stderr, "no SBOM attached") {
		t.Errorf("sbom of an image built with --sbom=false: exit %d: %s", code, stderr)
	}
}

// TestSBOMCommandLayout: gantry sbom reads the SBOM beside an image in an
// OCI layout gantry wrote, by NAME:TAG.
func TestSBOMCommandLayout(t *testing.T) {
	out := t.TempDir() + "/out"
	args := []string{"build", "-f", example, "--cache-dir", t.TempDir(), "-o", "oci:" + out,
		"--base", "taskflow-frontend=oci:" + nginxBase + ":alpine", "--base", "taskflow-backend=oci:" + pythonBase + ":3.13-slim"}
	if code, _, stderr := gantry(t, args...); code != 0 {
		t.Fatalf("build: exit %d: %s", code, stderr)
	}
	code, stdout, stderr := gantry(t, "sbom", "oci:"+out+":taskflow-frontend:latest", "--platform", "linux/arm64")
	if code != 0 || !strings.Contains(stdout, `"pkg:apk/alpine/nginx@1.27.3-r1?arch=aarch64`) {
		t.Fatalf("sbom from the layout: exit %d: %s %.300s", code, stderr, stdout)
	}
	if code, _, stderr := gantry(t, "sbom", "oci:"+out+":nope:latest"); code != 1 || !strings.Contains(stderr, `no image named "nope:latest" (it has taskflow-frontend:latest, taskflow-backend:latest)`) {
		t.Errorf("sbom of a name the layout lacks: exit %d: %s", code, stderr)
	}
}
