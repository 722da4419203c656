package manifests

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Healthcheck is Docker's HEALTHCHECK. It is not part of the OCI image spec
// but Docker, Podman and others read it from the config of either family.
type Healthcheck struct {
	// Test is ["CMD", args...], ["CMD-SHELL", command] or ["NONE"].
	Test        []string
	Interval    time.Duration
	Timeout     time.Duration
	StartPeriod time.Duration
	Retries     int
}

// HealthcheckTest reads a test the way Dockerfile's HEALTHCHECK CMD does: a
// JSON array is the exec form, anything else the shell form. A list whose
// first element is CMD, CMD-SHELL or NONE is taken as it is.
func HealthcheckTest(args []string) []string {
	if len(args) == 0 {
		return nil
	}
	switch args[0] {
	case "CMD", "CMD-SHELL", "NONE":
		return args
	}
	return append([]string{"CMD"}, args...)
}

// ShellOrExec parses a command line as Dockerfile does: a JSON array is exec
// form (returned as it is), NONE disables the base's healthcheck, anything
// else is shell form (["CMD-SHELL", s]).
func ShellOrExec(s string) []string {
	s = strings.TrimSpace(s)
	if s == "NONE" {
		return []string{"NONE"}
	}
	var arr []string
	if strings.HasPrefix(s, "[") && json.Unmarshal([]byte(s), &arr) == nil {
		return HealthcheckTest(arr)
	}
	return []string{"CMD-SHELL", s}
}

// History describes one new layer in the config's history.
type History struct {
	CreatedBy string
	Comment   string
}

// ConfigPatch is what a build changes in a base config. Zero fields leave
// the base's value alone.
type ConfigPatch struct {
	Env          []string // K=V, merged over the base's (same key replaced in place)
	Entrypoint   []string // nil keeps the base's; non-nil (even empty) replaces it
	Cmd          []string // nil keeps the base's, unless Entrypoint is set (as in Dockerfile, a new ENTRYPOINT drops the base's CMD)
	WorkingDir   string
	User         string
	Labels       map[string]string
	ExposedPorts []string // "8080/tcp"
	Volumes      []string
	StopSignal   string
	Healthcheck  *Healthcheck
	Created      time.Time
	DiffIDs      []v1.Hash // appended to rootfs.diff_ids
	History      []History // one per new layer
}

// PatchConfig applies p to a raw config, keeping every field it does not
// change byte for byte (including ones go-containerregistry's types lack,
// such as a base's Healthcheck.StartInterval).
func PatchConfig(raw []byte, p ConfigPatch) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, fmt.Errorf("parsing base image config: %w", err)
	}
	if top == nil {
		return nil, fmt.Errorf("parsing base image config: null is not an object")
	}
	cfg := map[string]json.RawMessage{}
	if c, ok := top["config"]; ok && string(c) != "null" {
		if err := json.Unmarshal(c, &cfg); err != nil {
			return nil, fmt.Errorf("parsing base image config's \"config\": %w", err)
		}
	}
	set := func(m map[string]json.RawMessage, k string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		m[k] = b
		return nil
	}
	var errs []error
	try := func(err error) { errs = append(errs, err) }

	if len(p.Env) > 0 {
		var env []string
		if err := unmarshalIf(cfg, "Env", &env); err != nil {
			return nil, err
		}
		try(set(cfg, "Env", MergeEnv(env, p.Env)))
	}
	if p.Entrypoint != nil {
		try(set(cfg, "Entrypoint", p.Entrypoint))
	}
	if p.Cmd != nil {
		try(set(cfg, "Cmd", p.Cmd))
	} else if p.Entrypoint != nil {
		// The base's CMD was written as arguments for the base's ENTRYPOINT.
		delete(cfg, "Cmd")
	}
	if p.WorkingDir != "" {
		try(set(cfg, "WorkingDir", p.WorkingDir))
	}
	if p.User != "" {
		try(set(cfg, "User", p.User))
	}
	if p.StopSignal != "" {
		try(set(cfg, "StopSignal", p.StopSignal))
	}
	if len(p.Labels) > 0 {
		labels := map[string]string{}
		if err := unmarshalIf(cfg, "Labels", &labels); err != nil {
			return nil, err
		}
		for k, v := range p.Labels {
			labels[k] = v
		}
		try(set(cfg, "Labels", labels))
	}
	for _, f := range []struct {
		key  string
		vals []string
	}{{"ExposedPorts", p.ExposedPorts}, {"Volumes", p.Volumes}} {
		if len(f.vals) == 0 {
			continue
		}
		m := map[string]json.RawMessage{}
		if err := unmarshalIf(cfg, f.key, &m); err != nil {
			return nil, err
		}
		for _, v := range f.vals {
			m[v] = json.RawMessage("{}")
		}
		try(set(cfg, f.key, m))
	}
	if h := p.Healthcheck; h != nil {
		try(set(cfg, "Healthcheck", map[string]any{
			"Test": h.Test, "Interval": h.Interval, "Timeout": h.Timeout,
			"StartPeriod": h.StartPeriod, "Retries": h.Retries,
		}))
	}
	try(set(top, "config", cfg))

	if len(p.DiffIDs) > 0 {
		rootfs := map[string]json.RawMessage{}
		if err := unmarshalIf(top, "rootfs", &rootfs); err != nil {
			return nil, err
		}
		var ids []v1.Hash
		if err := unmarshalIf(rootfs, "diff_ids", &ids); err != nil {
			return nil, err
		}
		try(set(rootfs, "type", "layers"))
		try(set(rootfs, "diff_ids", append(ids, p.DiffIDs...)))
		try(set(top, "rootfs", rootfs))
	}
	if !p.Created.IsZero() {
		try(set(top, "created", p.Created.UTC().Format(time.RFC3339)))
	}
	if len(p.History) > 0 {
		var hist []json.RawMessage
		if err := unmarshalIf(top, "history", &hist); err != nil {
			return nil, err
		}
		for _, h := range p.History {
			e := map[string]string{"created_by": h.CreatedBy}
			if !p.Created.IsZero() {
				e["created"] = p.Created.UTC().Format(time.RFC3339)
			}
			if h.Comment != "" {
				e["comment"] = h.Comment
			}
			b, err := json.Marshal(e)
			try(err)
			hist = append(hist, b)
		}
		try(set(top, "history", hist))
	}
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("writing image config: %w", err)
		}
	}
	return json.Marshal(top)
}

func unmarshalIf(m map[string]json.RawMessage, key string, v any) error {
	raw, ok := m[key]
	if !ok || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("base image config field %s: %w", key, err)
	}
	return nil
}

// MergeEnv sets each K=V of add over base: a key already in base is
// replaced where it stands, a new key is appended.
func MergeEnv(base, add []string) []string {
	out := append([]string(nil), base...)
	pos := map[string]int{}
	for i, kv := range out {
		k, _, _ := strings.Cut(kv, "=")
		pos[k] = i
	}
	for _, kv := range add {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := pos[k]; ok {
			out[i] = kv
			continue
		}
		pos[k] = len(out)
		out = append(out, kv)
	}
	return out
}
