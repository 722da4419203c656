package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/manifests"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// cfgImage is a valid image for the validation table; each case replaces
// some of its lines.
const cfgImage = `images:
  - name: web
    base: nginx:alpine
    layers:
      - name: site
        from: site
        to: /srv
`

func TestLoadValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string // "#!" marks the line the error must point at
		path string
		msgs []string
	}{
		{"no images", "images: [] #!\n", "images", []string{"no images"}},
		{"images null", "compression: gzip\nimages: #!\n", "images", []string{"no images"}},
		{"empty file", "", "images", []string{"no images"}},
		{"comment only", "# nothing\n", "images", []string{"no images"}},
		{"bad image name", `images:
  - name: Bad_Name #!
    base: nginx
`, "images[0].name", []string{`"Bad_Name"`}},
		{"empty image name", `images:
  - base: nginx #!
`, "images[0].name", nil},
		{"missing base", `images:
  - name: web #!
`, "images[0].base", []string{"missing"}},
		{"duplicate names", `images:
  - name: web
    base: nginx
  - name: api
    base: python
  - name: web #!
    base: nginx
`, "images[2].name", []string{`duplicate image name "web"`}},
		{"bad platform", `images:
  - name: web
    base: nginx
    platforms: [linux/amd64, linux] #!
`, "images[0].platforms[1]", []string{`"linux"`}},
		{"bad tag", `images:
  - name: web
    base: nginx
    tags:
      - latest
      - -bad #!
`, "images[0].tags[1]", []string{`"-bad"`}},
		{"tag with colon", `images:
  - name: web
    base: nginx
    tags: ["v1:2"] #!
`, "images[0].tags[0]", nil},
		{"bad compression", `images:
  - name: web
    base: nginx
    compression: lz4 #!
`, "images[0].compression", []string{"lz4"}},
		{"bad top-level compression level", `compression: gzip
compressionLevel: 12
images:
  - name: web #!
    base: nginx
`, "images[0].compression", []string{"12"}},
		{"missing source", `images:
  - name: web
    base: nginx
    layers:
      - from: nosuch #!
        to: /srv
`, "images[0].layers[0].from", []string{"nosuch", "does not exist", "relative paths start at"}},
		{"relative to", `images:
  - name: web
    base: nginx
    layers:
      - from: site
        to: srv #!
`, "images[0].layers[0].to", []string{`"srv" is not an absolute path`}},
		{"missing to", `images:
  - name: web
    base: nginx
    layers:
      - from: site #!
`, "images[0].layers[0].to", []string{"missing"}},
		{"layer without sources", `images:
  - name: web
    base: nginx
    layers:
      - name: empty #!
        owner: "0:0"
`, "images[0].layers[0]", []string{"from:"}},
		{"to without from", `images:
  - name: web
    base: nginx
    layers:
      - to: /x #!
        files:
          - {from: files/a.conf, to: /a.conf}
`, "images[0].layers[0].to", nil},
		{"file without from", `images:
  - name: web
    base: nginx
    layers:
      - files:
          - from: files/a.conf
            to: /a.conf
          - to: /b.conf #!
`, "images[0].layers[0].files[1].from", []string{"missing"}},
		{"missing file", `images:
  - name: web
    base: nginx
    layers:
      - files:
          - from: files/nosuch.conf #!
            to: /a.conf
`, "images[0].layers[0].files[0].from", []string{"nosuch.conf"}},
		{"bad owner", `images:
  - name: web
    base: nginx
    layers:
      - from: site
        to: /srv
        owner: abc #!
`, "images[0].layers[0].owner", []string{`"abc"`, "uid:gid"}},
		{"bad fileMode", `images:
  - name: web
    base: nginx
    layers:
      - from: site
        to: /srv
        fileMode: "999" #!
`, "images[0].layers[0].fileMode", []string{`"999"`, "octal"}},
		{"split too small", `images:
  - name: web
    base: nginx
    layers:
      - from: site
        to: /srv
        split: 100KB #!
`, "images[0].layers[0].split", []string{"100KB", "1MiB"}},
		{"split not a size", `images:
  - name: web
    base: nginx
    layers:
      - from: site
        to: /srv
        split: big #!
`, "images[0].layers[0].split", []string{`"big"`, "200MB"}},
		{"split of packages", `images:
  - name: api
    base: python:3.13-slim
    layers:
      - python:
          requirements: requirements.txt
          wheels: [wheels]
        split: 64MB #!
`, "images[0].layers[0].split", []string{"python:"}},
		{"zero dirMode", `images:
  - name: web
    base: nginx
    layers:
      - from: site
        to: /srv
        dirMode: "0" #!
`, "images[0].layers[0].dirMode", nil},
		{"fileMode too big", `images:
  - name: web
    base: nginx
    layers:
      - from: site
        to: /srv
        fileMode: "17777" #!
`, "images[0].layers[0].fileMode", nil},
		{"second layer", cfgImage + `      - from: site
        to: /x
        owner: "1:x" #!
`, "images[0].layers[1].owner", nil},
		{"uid out of range", `images:
  - name: web
    base: nginx
    user:
      name: app
      uid: 70000 #!
`, "images[0].user.uid", []string{"70000"}},
		{"negative gid", `images:
  - name: web
    base: nginx
    user:
      name: app
      uid: 1001
      gid: -1 #!
`, "images[0].user.gid", []string{"-1"}},
		{"invalid user name", `images:
  - name: web
    base: nginx
    user:
      name: App User #!
      uid: 1001
`, "images[0].user.name", []string{`"App User"`, "POSIX"}},
		{"invalid group name", `images:
  - name: web
    base: nginx
    user:
      name: app
      uid: 1001
      group: Staff #!
`, "images[0].user.group", []string{`"Staff"`}},
		{"missing uid", `images:
  - name: web
    base: nginx
    user:
      name: app #!
`, "images[0].user", []string{"uid is required"}},
		{"relative owns", `images:
  - name: web
    base: nginx
    user:
      name: app
      uid: 1001
      owns:
        - /var/cache
        - var/log #!
`, "images[0].user.owns[1]", []string{`"var/log"`}},
		{"bad env name", `images:
  - name: web
    base: nginx
    env:
      OK: x
      1BAD: x #!
`, "images[0].env.1BAD", []string{`"1BAD"`}},
		{"env value is a list", `images:
  - name: web
    base: nginx
    env:
      A: x
      LIST: [1, 2] #!
`, "images[0].env.LIST", []string{"list or mapping"}},
		{"env value is a mapping", `images:
  - name: web
    base: nginx
    env:
      MAP:
        a: b #!
`, "images[0].env.MAP", nil},
		{"port out of range", `images:
  - name: web
    base: nginx
    ports:
      - 70000 #!
`, "images[0].ports[0]", []string{`"70000"`}},
		{"bad port protocol", `images:
  - name: web
    base: nginx
    ports: [8080, 80/xyz] #!
`, "images[0].ports[1]", []string{`"80/xyz"`, "tcp, udp or sctp"}},
		{"relative volume", `images:
  - name: web
    base: nginx
    volumes:
      - /ok
      - data #!
`, "images[0].volumes[1]", []string{`"data"`}},
		{"relative workdir", `images:
  - name: web
    base: nginx
    workdir: app #!
`, "images[0].workdir", []string{`"app"`}},
		{"bad duration", `images:
  - name: web
    base: nginx
    healthcheck:
      test: "true"
      interval: 5 seconds #!
`, "images[0].healthcheck.interval", []string{`"5 seconds"`}},
		{"duration under 1ms", `images:
  - name: web
    base: nginx
    healthcheck:
      test: "true"
      timeout: 10us #!
`, "images[0].healthcheck.timeout", nil},
		{"bad startPeriod", `images:
  - name: web
    base: nginx
    healthcheck:
      test: "true"
      startPeriod: -5s #!
`, "images[0].healthcheck.startPeriod", nil},
		{"negative retries", `images:
  - name: web
    base: nginx
    healthcheck:
      test: "true"
      retries: -1 #!
`, "images[0].healthcheck.retries", nil},
		{"healthcheck without test", `images:
  - name: web
    base: nginx
    healthcheck:
      interval: 5s #!
`, "images[0].healthcheck.test", nil},
		{"empty healthcheck list", `images:
  - name: web
    base: nginx
    healthcheck:
      test: [] #!
`, "images[0].healthcheck.test", []string{"empty command"}},
		{"empty healthcheck string", `images:
  - name: web
    base: nginx
    healthcheck:
      test: "  " #!
`, "images[0].healthcheck.test", []string{"empty command"}},
		{"CMD without a command", `images:
  - name: web
    base: nginx
    healthcheck:
      test: [CMD] #!
`, "images[0].healthcheck.test", []string{"empty command"}},
		{"healthcheck test mapping", `images:
  - name: web
    base: nginx
    healthcheck:
      test: {a: b} #!
`, "images[0].healthcheck.test", nil},
		{"bad maxSize", `images:
  - name: web
    base: nginx
    maxSize: lots #!
`, "images[0].maxSize", []string{`"lots"`}},
		{"zero maxSize", `images:
  - name: web
    base: nginx
    maxSize: 0MB #!
`, "images[0].maxSize", nil},
		{"error in second image", cfgImage + `  - name: api
    base: python
    volumes: [rel] #!
`, "images[1].volumes[0]", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := cfgProject(t)
			name := cfgWrite(t, dir, tc.yaml)
			specs, err := Load(name, cfgEnv(nil), Options{})
			if err == nil {
				t.Fatalf("Load succeeded: %+v", specs)
			}
			wantConfigError(t, err, name, markedLine(tc.yaml), tc.path, tc.msgs...)
		})
	}
}

func TestLoadValid(t *testing.T) {
	dir := cfgProject(t)
	name := cfgWrite(t, dir, `compression: zstd
compressionLevel: 3
images:
  - name: registry.example.com/team/web
    base: nginx:alpine
    platforms: [linux/amd64, linux/arm64/v8]
    layers:
      - from: site
        to: /srv
        fileMode: "0640"
        dirMode: "0750"
        include: ["*.html"]
        exclude: ["*.map"]
        precompress: true
      - name: confs
        files:
          - {from: files/a.conf, to: /etc/a.conf}
          - {from: files/b.conf, to: /etc/conf.d/}
        owner: "0:101"
    user: {name: app, uid: 1001, owns: [/data]}
    env: {B: "2", A: "1"}
    entrypoint: []
    cmd: [nginx, -g, daemon off;]
    workdir: /srv
    labels: {a: b}
    annotations: {org.opencontainers.image.url: "https://x"}
    ports: [80, 53/udp, "8443/tcp"]
    volumes: [/data]
    stopSignal: SIGQUIT
    healthcheck:
      test: [CMD-SHELL, "curl -f http://localhost/"]
      interval: 1m30s
      retries: 0
    tags: [latest, "1.0", v1_0-rc.1]
    maxSize: 1.5GiB
  - name: plain
    base: oci:bases/layout:latest
    platforms: [all]
    layers:
      - {from: site, to: /srv}
    compressionLevel: 2
  - name: gz
    base: oci:/abs/layout
    compression: gzip
    layers:
      - {from: site, to: /srv}
`)
	specs, err := Load(name, cfgEnv(nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 3 {
		t.Fatalf("%d specs", len(specs))
	}
	s := specs[0]
	check := func(what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("name", s.Name, "registry.example.com/team/web")
	check("platforms", s.Platforms, "[linux/amd64 linux/arm64/v8]")
	check("layers", len(s.Layers), 2)
	l := s.Layers[0]
	check("layer 0 name", l.Name, "/srv") // defaults to its first destination
	check("layer 0 sources", l.Sources, fmt.Sprintf("[{%s /srv}]", filepath.Join(dir, "site")))
	check("layer 0 modes", fmt.Sprintf("%o %o", l.FileMode, l.DirMode), "640 750")
	check("layer 0 owner", l.Owner == nil, true)
	check("layer 0 patterns", fmt.Sprint(l.Include, l.Exclude, l.Precompress), "[*.html] [*.map] true")
	l = s.Layers[1]
	check("layer 1 name", l.Name, "confs")
	check("layer 1 sources", l.Sources, fmt.Sprintf("[{%s /etc/a.conf} {%s /etc/conf.d/}]", filepath.Join(dir, "files/a.conf"), filepath.Join(dir, "files/b.conf")))
	check("layer 1 owner", *l.Owner, "{0 101}")
	check("user", *s.User, "{app 1001 app 1001  }") // group defaults to the name, gid to the uid
	check("owns", s.Owns, "[/data]")
	check("env", s.Env, "[B=2 A=1]") // file order
	check("entrypoint nil", s.Entrypoint == nil, false)
	check("entrypoint", len(s.Entrypoint), 0)
	check("cmd", s.Cmd, "[nginx -g daemon off;]")
	check("workdir", s.Workdir, "/srv")
	check("labels", s.Labels, "map[a:b]")
	check("annotations", s.Annotations, "map[org.opencontainers.image.url:https://x]")
	check("ports", s.Ports, "[80/tcp 53/udp 8443/tcp]")
	check("volumes", s.Volumes, "[/data]")
	check("stopSignal", s.StopSignal, "SIGQUIT")
	check("healthcheck", *s.Healthcheck, "{[CMD-SHELL curl -f http://localhost/] 1m30s 0s 0s 0}")
	check("tags", s.Tags, "[latest 1.0 v1_0-rc.1]")
	check("maxSize", s.MaxSize, int64(1.5*(1<<30)))
	check("compression", s.Compression, "{zstd 3}")

	s = specs[1]
	check("oci base", s.Base, "oci:"+filepath.Join(dir, "bases/layout")+":latest")
	check("all platforms", s.Platforms == nil, true)
	check("inherited algorithm, own level", s.Compression, "{zstd 2}")
	check("no user", s.User == nil, true)
	check("no healthcheck", s.Healthcheck == nil, true)
	check("nil entrypoint", s.Entrypoint == nil && s.Cmd == nil, true)

	s = specs[2]
	check("absolute oci base", s.Base, "oci:/abs/layout")
	check("own algorithm, default level", s.Compression, "{gzip 1}")
}

// YAML types plain scalars; gantry keeps what was written.
func TestLoadKeepsScalarText(t *testing.T) {
	dir := cfgProject(t)
	name := cfgWrite(t, dir, `images:
  - name: web
    base: nginx
    env:
      VERSION: 1.10
      UMASK: 0022
      HEX: 0x1F
      OCT: 0o17
      FLAG: yes
      ON: true
      INF: .inf
      BIG: 12345678901234567890
      EMPTY:
      NUL: null
      QUOTED: "1.10"
      SINGLE: '0755'
      COLON: "a: b"
      MULTI: |
        line1
        line2
    labels:
      org.opencontainers.image.version: 1.10
      "quoted.key": 0755
    annotations: {n: 1e3, hex: 0x10}
    cmd: [python, "3.10", 3.10, 0755, true]
    entrypoint: [tini, --]
    tags: [1.10, "2.0", 3]
    healthcheck:
      test: [CMD, check, 1.50]
`)
	specs, err := Load(name, cfgEnv(nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := specs[0]
	wantEnv := []string{"VERSION=1.10", "UMASK=0022", "HEX=0x1F", "OCT=0o17", "FLAG=yes", "ON=true", "INF=.inf",
		"BIG=12345678901234567890", "EMPTY=", "NUL=", "QUOTED=1.10", "SINGLE=0755", "COLON=a: b", "MULTI=line1\nline2\n"}
	if !slices.Equal(s.Env, wantEnv) {
		t.Errorf("env =\n%q\nwant\n%q", s.Env, wantEnv)
	}
	if got := s.Labels["org.opencontainers.image.version"]; got != "1.10" {
		t.Errorf("label version = %q, want 1.10", got)
	}
	if got := s.Labels["quoted.key"]; got != "0755" {
		t.Errorf("label quoted.key = %q, want 0755", got)
	}
	if got := s.Annotations["n"] + " " + s.Annotations["hex"]; got != "1e3 0x10" {
		t.Errorf("annotations n, hex = %q, want 1e3 0x10", got)
	}
	for what, c := range map[string][2][]string{
		"cmd":         {s.Cmd, {"python", "3.10", "3.10", "0755", "true"}},
		"entrypoint":  {s.Entrypoint, {"tini", "--"}},
		"tags":        {s.Tags, {"1.10", "2.0", "3"}},
		"healthcheck": {s.Healthcheck.Test, {"CMD", "check", "1.50"}},
	} {
		if !slices.Equal(c[0], c[1]) {
			t.Errorf("%s = %q, want %q", what, c[0], c[1])
		}
	}
}

func TestLoadHealthcheckForms(t *testing.T) {
	for _, tc := range []struct {
		test string
		want []string
	}{
		{`wget -q http://x`, []string{"CMD-SHELL", "wget -q http://x"}},
		{`'["curl","-f","http://x"]'`, []string{"CMD", "curl", "-f", "http://x"}},
		{`[curl, -f, "http://x"]`, []string{"CMD", "curl", "-f", "http://x"}},
		{`[CMD-SHELL, "curl -f http://x || exit 1"]`, []string{"CMD-SHELL", "curl -f http://x || exit 1"}},
		{`[CMD, curl]`, []string{"CMD", "curl"}},
		{`[NONE]`, []string{"NONE"}},
		{`NONE`, []string{"NONE"}},
	} {
		dir := cfgProject(t)
		name := cfgWrite(t, dir, "images:\n  - name: web\n    base: nginx\n    healthcheck:\n      test: "+tc.test+"\n      interval: 10s\n      timeout: 500ms\n      startPeriod: 1m\n      retries: 5\n")
		specs, err := Load(name, cfgEnv(nil), Options{})
		if err != nil {
			t.Errorf("test: %s: %v", tc.test, err)
			continue
		}
		h := specs[0].Healthcheck
		if !slices.Equal(h.Test, tc.want) || h.Interval.String() != "10s" || h.Timeout.String() != "500ms" || h.StartPeriod.String() != "1m0s" || h.Retries != 5 {
			t.Errorf("test: %s: %+v, want test %q", tc.test, h, tc.want)
		}
	}
}

func TestLoadResolvesPathsAgainstConfigDir(t *testing.T) {
	root := t.TempDir()
	proj := filepath.Join(root, "proj")
	if err := os.MkdirAll(filepath.Join(proj, "site"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "elsewhere", "site"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfgWrite(t, proj, `images:
  - name: web
    base: oci:../bases/nginx:alpine
    layers:
      - from: site
        to: /srv
      - from: ../proj/site/
        to: /srv2
`)
	// From a directory that has a site/ of its own: the config's wins.
	t.Chdir(filepath.Join(root, "elsewhere"))
	for _, name := range []string{filepath.Join(proj, "gantry.yaml"), "../proj/gantry.yaml"} {
		specs, err := Load(name, cfgEnv(nil), Options{})
		if err != nil {
			t.Fatalf("Load(%s): %v", name, err)
		}
		s := specs[0]
		for i, l := range s.Layers {
			abs, err := filepath.Abs(l.Sources[0].From)
			if err != nil {
				t.Fatal(err)
			}
			if abs != filepath.Join(proj, "site") {
				t.Errorf("Load(%s): layer %d from %s, want %s", name, i, abs, filepath.Join(proj, "site"))
			}
		}
		dir, ok := strings.CutPrefix(s.Base, "oci:")
		if abs, _ := filepath.Abs(dir); !ok || abs != filepath.Join(root, "bases", "nginx:alpine") {
			t.Errorf("Load(%s): base %s, want oci:%s", name, s.Base, filepath.Join(root, "bases", "nginx:alpine"))
		}
	}

	// A source only the cwd has is missing, and the error says where
	// relative paths start.
	name := cfgWrite(t, proj, "images:\n  - name: web\n    base: nginx\n    layers:\n      - from: ../elsewhere/site/../../nosuch\n        to: /x\n")
	_, err := Load(name, cfgEnv(nil), Options{})
	wantConfigError(t, err, name, 5, "images[0].layers[0].from", filepath.Join(root, "nosuch")+" does not exist (relative paths start at "+proj+")")
}

func TestLoadOptions(t *testing.T) {
	dir := cfgProject(t)
	name := cfgWrite(t, dir, `compression: gzip
images:
  - name: web
    base: nginx:alpine
    platforms: [linux/amd64]
  - name: api
    base: python:3.13-slim
  - name: worker
    base: python:3.13-slim
    compression: zstd
`)
	load := func(o Options) ([]ImageSpec, error) { return Load(name, cfgEnv(nil), o) }
	names := func(specs []ImageSpec) string {
		var n []string
		for _, s := range specs {
			n = append(n, s.Name)
		}
		return strings.Join(n, ",")
	}

	specs, err := load(Options{})
	if err != nil || names(specs) != "web,api,worker" {
		t.Fatalf("no options: %s, %v", names(specs), err)
	}
	specs, err = load(Options{Images: []string{"worker", "web", "worker"}})
	if err != nil || names(specs) != "worker,web" {
		t.Errorf("--image worker,web,worker: %s, %v", names(specs), err)
	}
	_, err = load(Options{Images: []string{"web", "nosuch"}})
	if err == nil || !strings.Contains(err.Error(), "nosuch") || !strings.Contains(err.Error(), "web, api, worker") {
		t.Errorf("--image nosuch: %v; want an error naming it and listing the images", err)
	}

	specs, err = load(Options{Bases: map[string]string{"api": "oci:/tmp/py", "web": "localhost:5000/nginx"}})
	if err != nil || specs[0].Base != "localhost:5000/nginx" || specs[1].Base != "oci:/tmp/py" || specs[2].Base != "python:3.13-slim" {
		t.Errorf("--base: %v %+v", err, specs)
	}
	_, err = load(Options{Bases: map[string]string{"nosuch": "x"}})
	if err == nil || !strings.Contains(err.Error(), `"nosuch"`) || !strings.Contains(err.Error(), "web, api, worker") {
		t.Errorf("--base nosuch=x: %v; want an error naming it and listing the images", err)
	}

	specs, err = load(Options{Platforms: specsPlatforms(t, "linux/arm64", "linux/arm/v7")})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		if got := fmt.Sprint(s.Platforms); got != "[linux/arm64 linux/arm/v7]" {
			t.Errorf("--platform: %s has %s", s.Name, got)
		}
	}
	specs, err = load(Options{AllPlatforms: true, Platforms: specsPlatforms(t, "linux/arm64")})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		if s.Platforms != nil {
			t.Errorf("--platform all: %s has %v", s.Name, s.Platforms)
		}
	}
	specs, err = load(Options{})
	if err != nil || len(specs[0].Platforms) != 1 || specs[1].Platforms != nil {
		t.Errorf("file platforms: %v %v", specs[0].Platforms, specs[1].Platforms)
	}
	if specs[0].Compression.Algorithm != "gzip" || specs[2].Compression.Algorithm != "zstd" {
		t.Errorf("file compression: %v %v", specs[0].Compression, specs[2].Compression)
	}

	over := specs[2].Compression
	over.Level = 4
	specs, err = load(Options{Compression: &over})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		if s.Compression != over {
			t.Errorf("--compression: %s has %v", s.Name, s.Compression)
		}
	}
}

func specsPlatforms(t *testing.T, ps ...string) []v1.Platform {
	t.Helper()
	var out []v1.Platform
	for _, p := range ps {
		pl, err := manifests.ParsePlatform(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pl)
	}
	return out
}

func TestLoadTaskFlowExample(t *testing.T) {
	const secret = "s3cr3t-do-not-bake"
	env := cfgEnv(map[string]string{"DATABASE_URL": "postgres://" + secret, "OPENROUTER_API_KEY": secret})
	specs, err := Load("../../testdata/taskflow/gantry.yaml", env, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 {
		t.Fatalf("%d images, want 2", len(specs))
	}
	fe, be := specs[0], specs[1]
	if fe.Name != "taskflow-frontend" || be.Name != "taskflow-backend" {
		t.Fatalf("images %s, %s", fe.Name, be.Name)
	}
	if u := fe.User; u == nil || u.Name != "appuser" || u.UID != 1001 || u.Group != "appgroup" || u.GID != 1001 {
		t.Errorf("frontend user = %+v", fe.User)
	}
	if h := fe.Healthcheck; h == nil || h.Interval.String() != "10s" || h.Timeout.String() != "5s" || h.StartPeriod.String() != "5s" || h.Retries != 3 ||
		!slices.Equal(h.Test, []string{"CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/health"}) {
		t.Errorf("frontend healthcheck = %+v", fe.Healthcheck)
	}
	if fe.MaxSize != 200e6 || be.MaxSize != 300e6 {
		t.Errorf("maxSize %d %d", fe.MaxSize, be.MaxSize)
	}
	if !slices.Contains(fe.Env, "API_URL=/api") || !slices.Contains(fe.Env, "NODE_ENV=production") {
		t.Errorf("frontend env = %q", fe.Env)
	}
	if !slices.Contains(be.Env, "PYTHONUNBUFFERED=1") || !slices.Contains(be.Env, "PORT=8000") {
		t.Errorf("backend env = %q", be.Env)
	}
	if !slices.Equal(fe.Ports, []string{"8080/tcp"}) || !slices.Equal(be.Ports, []string{"8000/tcp"}) {
		t.Errorf("ports %q %q", fe.Ports, be.Ports)
	}
	if len(fe.Layers) != 2 || len(be.Layers) != 3 || be.Layers[0].Debian == nil || !slices.Equal(be.Layers[0].Debian.Requested(), []string{"tini"}) || !fe.Layers[0].Precompress || len(fe.Layers[1].Sources) != 2 || fe.Layers[1].FileMode != 0o644 {
		t.Errorf("layers %+v %+v", fe.Layers, be.Layers)
	}
	// a file: archive beside gantry.yaml becomes an absolute file:// URI
	if d := be.Layers[0].Debian; d != nil && (len(d.Sources) != 1 || !strings.HasPrefix(d.Sources[0].URI, "file:///") || !strings.HasSuffix(d.Sources[0].URI, "/testdata/taskflow/backend/apt")) {
		t.Errorf("system layer sources %+v", d.Sources)
	}
	for _, s := range specs {
		for _, l := range s.Layers {
			for _, src := range l.Sources {
				if _, err := os.Stat(src.From); err != nil {
					t.Errorf("%s layer %s: %v", s.Name, l.Name, err)
				}
			}
		}
		for _, kv := range s.Env {
			k, _, _ := strings.Cut(kv, "=")
			if k == "DATABASE_URL" || k == "OPENROUTER_API_KEY" {
				t.Errorf("%s bakes %s into its env", s.Name, k)
			}
		}
		if dump := fmt.Sprintf("%+v", s); strings.Contains(dump, secret) {
			t.Errorf("%s contains a secret from the environment: %s", s.Name, dump)
		}
	}

	// API_URL comes from the environment when set.
	specs, err = Load("../../testdata/taskflow/gantry.yaml", cfgEnv(map[string]string{"API_URL": "https://api.example.com"}), Options{Images: []string{"taskflow-frontend"}})
	if err != nil || len(specs) != 1 || !slices.Contains(specs[0].Env, "API_URL=https://api.example.com") {
		t.Errorf("API_URL override: %v %+v", err, specs)
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64 // 0: want an error
	}{
		{"200MB", 200e6},
		{"300MB", 300e6},
		{"1.5GiB", 1610612736},
		{"512KiB", 512 << 10},
		{"1MiB", 1 << 20},
		{"2GB", 2e9},
		{"10KB", 10e3},
		{"100B", 100},
		{" 200 MB ", 200e6},
		{"0.5KB", 500},
		{"0MB", 0},
		{"-1MB", 0},
		{"200", 0},
		{"MB", 0},
		{"lots", 0},
		{"200mb", 0},
		{"200 M", 0},
		{"NaNMB", 0},
		{"InfGB", 0},
		{"1e30GB", 0},
		{"0.0001B", 0},
		{"", 0},
	} {
		got, err := ParseSize(tc.in)
		if tc.want == 0 {
			if err == nil {
				t.Errorf("ParseSize(%q) = %d, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestParsePort(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"80", "80/tcp"},
		{"8080/tcp", "8080/tcp"},
		{"53/udp", "53/udp"},
		{"9/sctp", "9/sctp"},
		{"65535", "65535/tcp"},
		{"1", "1/tcp"},
		{"0", ""},
		{"65536", ""},
		{"70000", ""},
		{"80/xyz", ""},
		{"80/TCP", ""},
		{"80/", ""},
		{"/tcp", ""},
		{"http", ""},
		{"80-90", ""},
		{"-1", ""},
		{"", ""},
	} {
		got, err := ParsePort(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("ParsePort(%q) = %q, want an error", tc.in, got)
			} else if !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.in)) {
				t.Errorf("ParsePort(%q): error %q does not name the port", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParsePort(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseOwner(t *testing.T) {
	for _, tc := range []struct {
		in       string
		uid, gid int
		ok       bool
	}{
		{"1001:1001", 1001, 1001, true},
		{"0:0", 0, 0, true},
		{"0:101", 0, 101, true},
		{"2147483646:1", 2147483646, 1, true},
		{"abc", 0, 0, false},
		{"1001", 0, 0, false},
		{"app:app", 0, 0, false},
		{"1001:", 0, 0, false},
		{":1001", 0, 0, false},
		{"-1:0", 0, 0, false},
		{"0:-1", 0, 0, false},
		{"1:2:3", 0, 0, false},
		{"2147483647:0", 0, 0, false},
		{"", 0, 0, false},
	} {
		got, err := ParseOwner(tc.in)
		if !tc.ok {
			if err == nil {
				t.Errorf("ParseOwner(%q) = %+v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got.UID != tc.uid || got.GID != tc.gid {
			t.Errorf("ParseOwner(%q) = %+v, %v", tc.in, got, err)
		}
	}
}

func TestPlatformVariables(t *testing.T) {
	dir := cfgProject(t)
	name := cfgWrite(t, dir, cfgImage+"      - {from: \"site/${TARGETARCH}\", to: /opt, platforms: [linux/arm64]}\n")
	specs, err := Load(name, cfgEnv(map[string]string{"TARGETARCH": "from-the-environment"}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ls := specs[0].Layers[1]
	if !ls.PerPlatform() || specs[0].Layers[0].PerPlatform() {
		t.Fatalf("PerPlatform: %v %v", ls.PerPlatform(), specs[0].Layers[0].PerPlatform())
	}
	if got := ls.Sources[0].From; !strings.HasSuffix(got, "/site/${TARGETARCH}") {
		t.Errorf("from: %q, want ${TARGETARCH} kept for the build (never read from the environment)", got)
	}
	arm, _ := manifests.ParsePlatform("linux/arm64")
	amd, _ := manifests.ParsePlatform("linux/amd64")
	if _, ok, _ := ls.ForPlatform(amd); ok {
		t.Error("a platforms: [linux/arm64] layer exists on linux/amd64")
	}
	if _, _, err := ls.ForPlatform(arm); err == nil || !strings.Contains(err.Error(), "site/arm64 does not exist for linux/arm64") {
		t.Errorf("missing per-platform source: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "site", "arm64"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, ok, err := ls.ForPlatform(arm)
	if err != nil || !ok || !strings.HasSuffix(got.Sources[0].From, "/site/arm64") {
		t.Errorf("ForPlatform(arm64) = %v, %v, %v", got.Sources, ok, err)
	}
	bad := cfgWrite(t, dir, cfgImage+"      - {from: \"site/${TARGETARCH:-amd64}\", to: /opt}\n")
	if _, err := Load(bad, cfgEnv(nil), Options{}); err == nil || !strings.Contains(err.Error(), "takes no default") {
		t.Errorf("a default for ${TARGETARCH}: %v", err)
	}
}
