package spec

import (
	"testing"
)

func TestDebianLayer(t *testing.T) {
	dir := cfgProject(t)
	name := cfgWrite(t, dir, `images:
  - name: api
    base: python:3.13-slim
    layers:
      - name: system
        debian:
          packages: [curl, "libpq5=15.10-0+deb12u1"]
          sources: ["deb [arch=amd64,arm64] http://deb.debian.org/debian bookworm main"]
`)
	specs, err := Load(name, cfgEnv(nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ls := specs[0].Layers[0]
	if ls.Debian == nil || !ls.PerPlatform() || ls.Debian.Names() != "curl, libpq5=15.10-0+deb12u1" {
		t.Fatalf("got %+v", ls)
	}
	a := ls.Debian.Sources[0]
	if a.URI != "http://deb.debian.org/debian" || a.Suite != "bookworm" || len(a.Archs) != 2 {
		t.Errorf("source %+v", a)
	}
	if ls.Description() != "APT system ← curl, libpq5=15.10-0+deb12u1" {
		t.Errorf("description %q", ls.Description())
	}
}

func TestDebianLayerErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, path string
		msgs             []string
	}{
		{"no packages", `      - debian: {sources: []} #!
`, "images[0].layers[0].debian.packages", []string{"missing"}},
		{"bad name", `      - debian:
          packages: [curl, Bad_Name] #!
`, "images[0].layers[0].debian.packages[1]", []string{"Bad_Name"}},
		{"bad version", `      - debian:
          packages: ["curl=x:1"] #!
`, "images[0].layers[0].debian.packages[0]", []string{"epoch"}},
		{"twice", `      - debian:
          packages: [curl, curl] #!
`, "images[0].layers[0].debian.packages[1]", []string{"twice"}},
		{"bad source", `      - debian:
          packages: [curl]
          sources: ["deb ftp://x bookworm main"] #!
`, "images[0].layers[0].debian.sources[0]", []string{"http(s)"}},
		{"flat source", `      - debian:
          packages: [curl]
          sources: ["deb http://x ./"] #!
`, "images[0].layers[0].debian.sources[0]", []string{"flat"}},
		{"trusted", `      - debian:
          packages: [curl]
          sources: ["deb [trusted=yes] http://x bookworm main"] #!
`, "images[0].layers[0].debian.sources[0]", []string{"trusted=yes"}},
		{"no keyring", `      - debian:
          packages: [curl]
          keyring: nosuch.gpg #!
`, "images[0].layers[0].debian.keyring", []string{"nosuch.gpg"}},
		{"with from", `      - from: site
        to: /srv
        debian: {packages: [curl]} #!
`, "images[0].layers[0].debian", []string{"one of them"}},
		{"with owner", `      - owner: "1:1" #!
        debian: {packages: [curl]}
`, "images[0].layers[0].owner", []string{"own owners"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			yaml := "images:\n  - name: api\n    base: python:3.13-slim\n    layers:\n" + tc.yaml
			dir := cfgProject(t)
			name := cfgWrite(t, dir, yaml)
			specs, err := Load(name, cfgEnv(nil), Options{})
			if err == nil {
				t.Fatalf("Load succeeded: %+v", specs)
			}
			wantConfigError(t, err, name, markedLine(yaml), tc.path, tc.msgs...)
		})
	}
}
