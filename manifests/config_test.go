package manifests

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// baseConfig is a Docker-built config with fields go-containerregistry's
// ConfigFile lacks (Healthcheck.StartInterval, OnBuild, ArgsEscaped, a
// BuildKit key) that PatchConfig must carry through untouched.
const baseConfig = `{
  "architecture": "amd64",
  "os": "linux",
  "created": "2024-01-02T03:04:05.123456789Z",
  "moby.buildkit.buildinfo.v1": "eyJmcm9udGVuZCI6ImRvY2tlcmZpbGUudjAifQ==",
  "config": {
    "Env": ["PATH=/usr/local/bin:/usr/bin", "LANG=C.UTF-8", "GPG_KEY=abc"],
    "Entrypoint": ["/docker-entrypoint.sh"],
    "Cmd": ["nginx", "-g", "daemon off;"],
    "WorkingDir": "/",
    "Labels": {"maintainer": "NGINX <nginx@example.com>", "keep": "me"},
    "ExposedPorts": {"80/tcp": {}},
    "Volumes": {"/data": {}},
    "StopSignal": "SIGQUIT",
    "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 30000000000, "StartInterval": 2000000000},
    "OnBuild": null,
    "ArgsEscaped": true,
    "Shell": ["/bin/ash", "-c"]
  },
  "rootfs": {"type": "layers", "diff_ids": ["sha256:1111111111111111111111111111111111111111111111111111111111111111"]},
  "history": [{"created": "2024-01-02T03:04:05Z", "created_by": "ADD rootfs.tar /", "comment": "buildkit.dockerfile.v0"},
              {"created": "2024-01-02T03:04:05Z", "created_by": "ENV LANG=C.UTF-8", "empty_layer": true}]
}`

func hash(c byte) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(string(c), 64)}
}

// decode unmarshals a config into generic JSON, numbers kept exact.
func decode(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("output is not a JSON object: %v\n%s", err, raw)
	}
	return m
}

func patch(t *testing.T, base string, p ConfigPatch) (map[string]any, map[string]any) {
	t.Helper()
	out, err := PatchConfig([]byte(base), p)
	if err != nil {
		t.Fatalf("PatchConfig: %v", err)
	}
	top := decode(t, out)
	cfg, _ := top["config"].(map[string]any)
	return top, cfg
}

func jsonEqual(t *testing.T, what string, got any, wantJSON string) {
	t.Helper()
	want := decode(t, []byte(`{"v":`+wantJSON+`}`))["v"]
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		t.Errorf("%s = %s, want %s", what, g, wantJSON)
	}
}

func TestPatchConfigKeepsUnknownFields(t *testing.T) {
	// A patch that touches everything but the healthcheck.
	top, cfg := patch(t, baseConfig, ConfigPatch{
		Env: []string{"A=1"}, Entrypoint: []string{"/e"}, Cmd: []string{"c"}, WorkingDir: "/app", User: "1001:1001",
		Labels: map[string]string{"x": "y"}, ExposedPorts: []string{"8080/tcp"}, Volumes: []string{"/v"},
		StopSignal: "SIGTERM", Created: time.Unix(0, 0), DiffIDs: []v1.Hash{hash('2')}, History: []History{{CreatedBy: "x"}},
	})
	base := decode(t, []byte(baseConfig))
	baseCfg := base["config"].(map[string]any)
	for _, k := range []string{"Healthcheck", "OnBuild", "ArgsEscaped", "Shell"} {
		if _, ok := cfg[k]; !ok {
			t.Errorf("config.%s dropped", k)
			continue
		}
		if !reflect.DeepEqual(cfg[k], baseCfg[k]) {
			t.Errorf("config.%s = %v, want the base's %v", k, cfg[k], baseCfg[k])
		}
	}
	jsonEqual(t, "config.Healthcheck.StartInterval", cfg["Healthcheck"].(map[string]any)["StartInterval"], "2000000000")
	for _, k := range []string{"architecture", "os", "moby.buildkit.buildinfo.v1"} {
		if !reflect.DeepEqual(top[k], base[k]) {
			t.Errorf("%s = %v, want the base's %v", k, top[k], base[k])
		}
	}
}

func TestPatchConfigNoopKeepsEverything(t *testing.T) {
	out, err := PatchConfig([]byte(baseConfig), ConfigPatch{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := decode(t, out), decode(t, []byte(baseConfig)); !reflect.DeepEqual(got, want) {
		t.Errorf("empty patch changed the config:\n got %s\nwant %s", out, baseConfig)
	}
}

func TestPatchConfigEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		base string // config.Env as JSON, "" for none
		add  []string
		want string
	}{
		{"replace in place, keep order, append new", `["PATH=/bin","LANG=C","GPG_KEY=abc"]`, []string{"LANG=C.UTF-8", "NEW=1", "PATH=/usr/bin"},
			`["PATH=/usr/bin","LANG=C.UTF-8","GPG_KEY=abc","NEW=1"]`},
		{"no base env", "", []string{"B=2", "A=1"}, `["B=2","A=1"]`},
		{"null base env", "null", []string{"A=1"}, `["A=1"]`},
		{"value with =", `["A=1"]`, []string{"A=x=y"}, `["A=x=y"]`},
		{"empty value", `["A=1"]`, []string{"A="}, `["A="]`},
		{"repeated new key: last wins, first position", `[]`, []string{"A=1", "B=2", "A=3"}, `["A=3","B=2"]`},
		{"nil patch keeps base", `["A=1"]`, nil, `["A=1"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := `{"config":{}}`
			if tc.base != "" {
				base = `{"config":{"Env":` + tc.base + `}}`
			}
			_, cfg := patch(t, base, ConfigPatch{Env: tc.add})
			jsonEqual(t, "Env", cfg["Env"], tc.want)
		})
	}
}

func TestMergeEnv(t *testing.T) {
	base := []string{"A=1", "B=2"}
	got := MergeEnv(base, []string{"B=3", "C=4", "NOVALUE"})
	if want := []string{"A=1", "B=3", "C=4", "NOVALUE"}; !slices.Equal(got, want) {
		t.Errorf("MergeEnv = %q, want %q", got, want)
	}
	if !slices.Equal(base, []string{"A=1", "B=2"}) {
		t.Errorf("MergeEnv modified its base: %q", base)
	}
}

func TestPatchConfigEntrypointCmd(t *testing.T) {
	const base = `{"config":{"Entrypoint":["/docker-entrypoint.sh"],"Cmd":["nginx","-g","daemon off;"]}}`
	const absent = "absent"
	for _, tc := range []struct {
		name           string
		entrypoint     []string
		cmd            []string
		wantEntrypoint string
		wantCmd        string
	}{
		{"nil keeps both", nil, nil, `["/docker-entrypoint.sh"]`, `["nginx","-g","daemon off;"]`},
		{"cmd only keeps entrypoint", nil, []string{"python3"}, `["/docker-entrypoint.sh"]`, `["python3"]`},
		{"both set", []string{"/app"}, []string{"--port", "80"}, `["/app"]`, `["--port","80"]`},
		// As in Dockerfile: the base's CMD was arguments for the base's
		// ENTRYPOINT, so a new ENTRYPOINT drops it.
		{"entrypoint only drops the base's cmd", []string{"/app"}, nil, `["/app"]`, absent},
		// Empty but non-nil is "set to nothing" (Dockerfile's ENTRYPOINT []).
		{"empty entrypoint clears it", []string{}, nil, `[]`, absent},
		{"empty cmd clears it", nil, []string{}, `["/docker-entrypoint.sh"]`, `[]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, cfg := patch(t, base, ConfigPatch{Entrypoint: tc.entrypoint, Cmd: tc.cmd})
			jsonEqual(t, "Entrypoint", cfg["Entrypoint"], tc.wantEntrypoint)
			if tc.wantCmd == absent {
				if v, ok := cfg["Cmd"]; ok && v != nil {
					t.Errorf("Cmd = %v, want none", v)
				}
			} else {
				jsonEqual(t, "Cmd", cfg["Cmd"], tc.wantCmd)
			}
		})
	}
}

func TestPatchConfigScalars(t *testing.T) {
	_, cfg := patch(t, baseConfig, ConfigPatch{WorkingDir: "/app", User: "1001:1001", StopSignal: "SIGTERM"})
	jsonEqual(t, "WorkingDir", cfg["WorkingDir"], `"/app"`)
	jsonEqual(t, "User", cfg["User"], `"1001:1001"`)
	jsonEqual(t, "StopSignal", cfg["StopSignal"], `"SIGTERM"`)

	_, cfg = patch(t, baseConfig, ConfigPatch{})
	jsonEqual(t, "WorkingDir", cfg["WorkingDir"], `"/"`)
	jsonEqual(t, "StopSignal", cfg["StopSignal"], `"SIGQUIT"`)
	if _, ok := cfg["User"]; ok {
		t.Errorf("User set by an empty patch: %v", cfg["User"])
	}
}

func TestPatchConfigMaps(t *testing.T) {
	_, cfg := patch(t, baseConfig, ConfigPatch{
		Labels:       map[string]string{"keep": "replaced", "org.opencontainers.image.title": "t"},
		ExposedPorts: []string{"8080/tcp", "53/udp", "80/tcp"},
		Volumes:      []string{"/var/log/nginx", "/data"},
	})
	jsonEqual(t, "Labels", cfg["Labels"], `{"maintainer":"NGINX <nginx@example.com>","keep":"replaced","org.opencontainers.image.title":"t"}`)
	jsonEqual(t, "ExposedPorts", cfg["ExposedPorts"], `{"80/tcp":{},"8080/tcp":{},"53/udp":{}}`)
	jsonEqual(t, "Volumes", cfg["Volumes"], `{"/data":{},"/var/log/nginx":{}}`)

	// Into a config without any of them (and a null "config").
	_, cfg = patch(t, `{"config":null}`, ConfigPatch{Labels: map[string]string{"a": "b"}, ExposedPorts: []string{"80/tcp"}, Volumes: []string{"/v"}})
	jsonEqual(t, "Labels", cfg["Labels"], `{"a":"b"}`)
	jsonEqual(t, "ExposedPorts", cfg["ExposedPorts"], `{"80/tcp":{}}`)
	jsonEqual(t, "Volumes", cfg["Volumes"], `{"/v":{}}`)
}

func TestPatchConfigHealthcheck(t *testing.T) {
	_, cfg := patch(t, baseConfig, ConfigPatch{Healthcheck: &Healthcheck{
		Test: []string{"CMD", "wget", "-q", "http://x"}, Interval: 10 * time.Second, Timeout: 5 * time.Second,
		StartPeriod: 1500 * time.Millisecond, Retries: 3,
	}})
	// Docker's format: durations in nanoseconds. A new healthcheck replaces
	// the base's as a whole (its StartInterval included), as in Dockerfile.
	jsonEqual(t, "Healthcheck", cfg["Healthcheck"],
		`{"Test":["CMD","wget","-q","http://x"],"Interval":10000000000,"Timeout":5000000000,"StartPeriod":1500000000,"Retries":3}`)

	_, cfg = patch(t, `{}`, ConfigPatch{Healthcheck: &Healthcheck{Test: []string{"NONE"}}})
	hc := cfg["Healthcheck"].(map[string]any)
	jsonEqual(t, "Healthcheck.Test", hc["Test"], `["NONE"]`)
}

func TestPatchConfigRootFSCreatedHistory(t *testing.T) {
	created := time.Date(2025, 3, 4, 5, 6, 7, 890, time.FixedZone("x", 3600))
	top, _ := patch(t, baseConfig, ConfigPatch{
		Created: created,
		DiffIDs: []v1.Hash{hash('2'), hash('3')},
		History: []History{{CreatedBy: "gantry: COPY site", Comment: "c"}, {CreatedBy: "gantry: user"}},
	})
	jsonEqual(t, "created", top["created"], `"2025-03-04T04:06:07Z"`)
	jsonEqual(t, "rootfs", top["rootfs"], `{"type":"layers","diff_ids":["sha256:`+strings.Repeat("1", 64)+`","sha256:`+strings.Repeat("2", 64)+`","sha256:`+strings.Repeat("3", 64)+`"]}`)
	jsonEqual(t, "history", top["history"], `[
		{"created":"2024-01-02T03:04:05Z","created_by":"ADD rootfs.tar /","comment":"buildkit.dockerfile.v0"},
		{"created":"2024-01-02T03:04:05Z","created_by":"ENV LANG=C.UTF-8","empty_layer":true},
		{"created":"2025-03-04T04:06:07Z","created_by":"gantry: COPY site","comment":"c"},
		{"created":"2025-03-04T04:06:07Z","created_by":"gantry: user"}]`)

	// No rootfs, history or created in the base; zero Created leaves created out.
	top, _ = patch(t, `{"architecture":"arm64"}`, ConfigPatch{DiffIDs: []v1.Hash{hash('a')}, History: []History{{CreatedBy: "x"}}})
	jsonEqual(t, "rootfs", top["rootfs"], `{"type":"layers","diff_ids":["sha256:`+strings.Repeat("a", 64)+`"]}`)
	jsonEqual(t, "history", top["history"], `[{"created_by":"x"}]`)
	if _, ok := top["created"]; ok {
		t.Errorf("created set without Patch.Created: %v", top["created"])
	}

	// The result parses as a go-containerregistry config.
	out, err := PatchConfig([]byte(baseConfig), ConfigPatch{DiffIDs: []v1.Hash{hash('2')}, Created: created})
	if err != nil {
		t.Fatal(err)
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(cf.RootFS.DiffIDs) != 2 || cf.RootFS.DiffIDs[1] != hash('2') || !cf.Created.Equal(created.Truncate(time.Second)) {
		t.Errorf("parsed config: rootfs %v created %v", cf.RootFS.DiffIDs, cf.Created)
	}
}

func TestPatchConfigDeterministic(t *testing.T) {
	p := ConfigPatch{
		Env:          []string{"B=2", "A=1"},
		Labels:       map[string]string{"z": "1", "a": "2", "m": "3", "b": "4", "y": "5", "c": "6"},
		ExposedPorts: []string{"9/tcp", "1/tcp", "5/udp"},
		Volumes:      []string{"/z", "/a", "/m"},
		Healthcheck:  &Healthcheck{Test: []string{"CMD-SHELL", "true"}, Interval: time.Second},
		Created:      time.Unix(1700000000, 0),
		DiffIDs:      []v1.Hash{hash('4')},
		History:      []History{{CreatedBy: "x"}},
	}
	first, err := PatchConfig([]byte(baseConfig), p)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, err := PatchConfig([]byte(baseConfig), p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatalf("PatchConfig is not deterministic:\n%s\n%s", first, again)
		}
	}
	// Whitespace in the base does not matter either.
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(baseConfig)); err != nil {
		t.Fatal(err)
	}
	again, err := PatchConfig(compact.Bytes(), p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) {
		t.Errorf("output depends on the base's formatting:\n%s\n%s", first, again)
	}
}

func TestPatchConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		base string
		p    ConfigPatch
	}{
		{"not JSON", `{"config":`, ConfigPatch{}},
		{"not an object", `[1,2]`, ConfigPatch{}},
		{"null", `null`, ConfigPatch{}},
		{"config not an object", `{"config":"x"}`, ConfigPatch{}},
		{"Env not a list", `{"config":{"Env":"A=1"}}`, ConfigPatch{Env: []string{"B=2"}}},
		{"Labels not a map", `{"config":{"Labels":[1]}}`, ConfigPatch{Labels: map[string]string{"a": "b"}}},
		{"ExposedPorts not a map", `{"config":{"ExposedPorts":["80/tcp"]}}`, ConfigPatch{ExposedPorts: []string{"81/tcp"}}},
		{"diff_ids not a list", `{"rootfs":{"diff_ids":"x"}}`, ConfigPatch{DiffIDs: []v1.Hash{hash('1')}}},
		{"history not a list", `{"history":{}}`, ConfigPatch{History: []History{{CreatedBy: "x"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := PatchConfig([]byte(tc.base), tc.p)
			if err == nil {
				t.Errorf("PatchConfig(%s) = %s, want an error", tc.base, out)
			}
		})
	}
}

func TestHealthcheckTestAndShellOrExec(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`wget -q http://x`, []string{"CMD-SHELL", "wget -q http://x"}},
		{`  curl -f http://x || exit 1  `, []string{"CMD-SHELL", "curl -f http://x || exit 1"}},
		{`["curl","-f","http://x"]`, []string{"CMD", "curl", "-f", "http://x"}},
		{` ["curl", "-f"] `, []string{"CMD", "curl", "-f"}},
		{`["CMD-SHELL","x"]`, []string{"CMD-SHELL", "x"}},
		{`["CMD","x","y"]`, []string{"CMD", "x", "y"}},
		{`["NONE"]`, []string{"NONE"}},
		{`NONE`, []string{"NONE"}}, // Dockerfile's HEALTHCHECK NONE
		{`[not json`, []string{"CMD-SHELL", "[not json"}},
		{`[1, 2]`, []string{"CMD-SHELL", "[1, 2]"}}, // not a list of strings: shell form
		{`echo $HOME`, []string{"CMD-SHELL", "echo $HOME"}},
		// Dockerfile's own spelling: the CMD keyword, in any case
		{`CMD wget -qO- http://127.0.0.1:8080/health`, []string{"CMD-SHELL", "wget -qO- http://127.0.0.1:8080/health"}},
		{`cmd  curl -f http://x || exit 1`, []string{"CMD-SHELL", "curl -f http://x || exit 1"}},
		{`CMD ["curl","-f","http://x"]`, []string{"CMD", "curl", "-f", "http://x"}},
		{`CMD ["/bin/healthcheck"]`, []string{"CMD", "/bin/healthcheck"}},
		{`none`, []string{"NONE"}},
		{`NONE now`, []string{"CMD-SHELL", "NONE now"}}, // not the keyword alone: a command
		{`CMD`, []string{"CMD-SHELL", "CMD"}},           // nothing to run: shell form of "CMD", refused as a missing program later
		{`CMDfoo x`, []string{"CMD-SHELL", "CMDfoo x"}},
	} {
		if got := ShellOrExec(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("ShellOrExec(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct {
		in, want []string
	}{
		{nil, nil},
		{[]string{}, nil},
		{[]string{"curl", "-f", "http://x"}, []string{"CMD", "curl", "-f", "http://x"}},
		{[]string{"CMD", "curl"}, []string{"CMD", "curl"}},
		{[]string{"CMD-SHELL", "curl -f x"}, []string{"CMD-SHELL", "curl -f x"}},
		{[]string{"NONE"}, []string{"NONE"}},
		{[]string{"cmd", "x"}, []string{"CMD", "cmd", "x"}}, // case matters, as in Docker
	} {
		if got := HealthcheckTest(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("HealthcheckTest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
