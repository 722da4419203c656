package spec

import (
	"strings"
	"testing"
)

// sbom: and provenance: are on by default, turned off for every image at
// the top, per image (overriding the top), or by the command line; a
// value that is not a boolean names its line.
func TestAttestSwitches(t *testing.T) {
	dir := cfgProject(t)
	name := cfgWrite(t, dir, `sbom: false
images:
  - name: a
    base: nginx:alpine
  - name: b
    base: nginx:alpine
    sbom: true
    provenance: false
`)
	specs, err := Load(name, cfgEnv(nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := specs[0], specs[1]; !a.NoSBOM || a.NoProvenance || b.NoSBOM || !b.NoProvenance || a.ConfigFile != name {
		t.Errorf("a: sbom off %v provenance off %v (config %q); b: %v %v", a.NoSBOM, a.NoProvenance, a.ConfigFile, b.NoSBOM, b.NoProvenance)
	}
	specs, err = Load(name, cfgEnv(nil), Options{NoSBOM: true, NoProvenance: true})
	if err != nil {
		t.Fatal(err)
	}
	if !specs[1].NoSBOM || !specs[0].NoProvenance {
		t.Errorf("--sbom=false --provenance=false left them on: %+v %+v", specs[0].NoSBOM, specs[1].NoProvenance)
	}
	name = cfgWrite(t, dir, "images:\n  - name: a\n    base: nginx:alpine\n    sbom: maybe\n")
	_, err = Load(name, cfgEnv(nil), Options{})
	if err == nil || !strings.Contains(err.Error(), ":4:") || !strings.Contains(err.Error(), "bool") {
		t.Errorf("sbom: maybe: %v", err)
	}
}
