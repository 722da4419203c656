package manifests

import (
	"encoding/json"
	"fmt"
	"maps"
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

// ShellOrExec parses a healthcheck command as Dockerfile's HEALTHCHECK
// does: "CMD ["exe","arg"]" is exec form, "CMD cmd args" shell form
// (["CMD-SHELL", "cmd args"]) and NONE disables the base's healthcheck, the
// keywords in any case. Without the CMD keyword, a JSON array is exec form
// (returned as HealthcheckTest reads it) and anything else shell form.
func ShellOrExec(s string) []string {
	s = strings.TrimSpace(s)
	keyword, rest, _ := strings.Cut(s, " ")
	switch strings.ToUpper(keyword) {
	case "NONE":
		if strings.TrimSpace(rest) == "" {
			return []string{"NONE"}
		}
	case "CMD":
		rest = strings.TrimSpace(rest)
		var arr []string
		if strings.HasPrefix(rest, "[") && json.Unmarshal([]byte(rest), &arr) == nil {
			return append([]string{"CMD"}, arr...)
		}
		if rest != "" {
			return []string{"CMD-SHELL", rest}
		}
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
//
// A base field PatchConfig must read but cannot parse is an error at once;
// a value that fails to marshal is reported once the whole patch is done.
func PatchConfig(raw []byte, p ConfigPatch) ([]byte, error) {
	e, err := parseConfig(raw)
	if err != nil {
		return nil, err
	}
	if err := e.patchProcess(p); err != nil {
		return nil, err
	}
	e.patchScalars(p)
	if err := e.patchLabels(p.Labels); err != nil {
		return nil, err
	}
	if err := e.patchKeySets(p); err != nil {
		return nil, err
	}
	e.patchHealthcheck(p.Healthcheck)
	e.set(e.top, "config", e.cfg)
	if err := e.patchRootFS(p.DiffIDs); err != nil {
		return nil, err
	}
	e.patchCreated(p.Created)
	if err := e.patchHistory(p.History, p.Created); err != nil {
		return nil, err
	}
	if e.err != nil {
		return nil, fmt.Errorf("writing image config: %w", e.err)
	}
	return json.Marshal(e.top)
}

// configEdit is a config being patched: its top level and its "config"
// object as raw fields, and the first value that failed to marshal.
type configEdit struct {
	top, cfg map[string]json.RawMessage
	err      error
}

// parseConfig splits a raw config into its top level and its "config"
// object (empty when absent or null).
func parseConfig(raw []byte) (*configEdit, error) {
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
	return &configEdit{top: top, cfg: cfg}, nil
}

// set writes v as m[k], or leaves m alone and remembers the error.
func (e *configEdit) set(m map[string]json.RawMessage, k string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		e.note(err)
		return
	}
	m[k] = b
}

// note remembers err if it is the first one.
func (e *configEdit) note(err error) {
	if e.err == nil {
		e.err = err
	}
}

// patchProcess merges Env and sets Entrypoint and Cmd; a new Entrypoint
// without a Cmd drops the base's Cmd.
func (e *configEdit) patchProcess(p ConfigPatch) error {
	if len(p.Env) > 0 {
		var env []string
		if err := unmarshalIf(e.cfg, "Env", &env); err != nil {
			return err
		}
		e.set(e.cfg, "Env", MergeEnv(env, p.Env))
	}
	if p.Entrypoint != nil {
		e.set(e.cfg, "Entrypoint", p.Entrypoint)
	}
	if p.Cmd != nil {
		e.set(e.cfg, "Cmd", p.Cmd)
	} else if p.Entrypoint != nil {
		// The base's CMD was written as arguments for the base's ENTRYPOINT.
		delete(e.cfg, "Cmd")
	}
	return nil
}

// patchScalars sets WorkingDir, User and StopSignal where p gives them.
func (e *configEdit) patchScalars(p ConfigPatch) {
	for _, f := range []struct{ key, val string }{
		{"WorkingDir", p.WorkingDir}, {"User", p.User}, {"StopSignal", p.StopSignal},
	} {
		if f.val != "" {
			e.set(e.cfg, f.key, f.val)
		}
	}
}

// patchLabels merges add over the base's Labels.
func (e *configEdit) patchLabels(add map[string]string) error {
	if len(add) == 0 {
		return nil
	}
	labels := map[string]string{}
	if err := unmarshalIf(e.cfg, "Labels", &labels); err != nil {
		return err
	}
	maps.Copy(labels, add)
	e.set(e.cfg, "Labels", labels)
	return nil
}

// patchKeySets adds ExposedPorts and Volumes, each a JSON object whose keys
// are the values and whose values are {}.
func (e *configEdit) patchKeySets(p ConfigPatch) error {
	for _, f := range []struct {
		key  string
		vals []string
	}{{"ExposedPorts", p.ExposedPorts}, {"Volumes", p.Volumes}} {
		if err := e.addKeys(f.key, f.vals); err != nil {
			return err
		}
	}
	return nil
}

// addKeys adds each of vals as a key of the config's key set field key.
func (e *configEdit) addKeys(key string, vals []string) error {
	if len(vals) == 0 {
		return nil
	}
	m := map[string]json.RawMessage{}
	if err := unmarshalIf(e.cfg, key, &m); err != nil {
		return err
	}
	for _, v := range vals {
		m[v] = json.RawMessage("{}")
	}
	e.set(e.cfg, key, m)
	return nil
}

// patchHealthcheck replaces the base's Healthcheck with h, if given.
func (e *configEdit) patchHealthcheck(h *Healthcheck) {
	if h == nil {
		return
	}
	e.set(e.cfg, "Healthcheck", map[string]any{
		"Test": h.Test, "Interval": h.Interval, "Timeout": h.Timeout,
		"StartPeriod": h.StartPeriod, "Retries": h.Retries,
	})
}

// patchRootFS appends ids to rootfs.diff_ids, keeping rootfs's other fields.
func (e *configEdit) patchRootFS(ids []v1.Hash) error {
	if len(ids) == 0 {
		return nil
	}
	rootfs := map[string]json.RawMessage{}
	if err := unmarshalIf(e.top, "rootfs", &rootfs); err != nil {
		return err
	}
	var base []v1.Hash
	if err := unmarshalIf(rootfs, "diff_ids", &base); err != nil {
		return err
	}
	e.set(rootfs, "type", "layers")
	e.set(rootfs, "diff_ids", append(base, ids...))
	e.set(e.top, "rootfs", rootfs)
	return nil
}

// patchCreated sets the image's creation time, if given.
func (e *configEdit) patchCreated(created time.Time) {
	if !created.IsZero() {
		e.set(e.top, "created", timestamp(created))
	}
}

// patchHistory appends one history entry per new layer, each created at
// created (if given).
func (e *configEdit) patchHistory(hs []History, created time.Time) error {
	if len(hs) == 0 {
		return nil
	}
	var hist []json.RawMessage
	if err := unmarshalIf(e.top, "history", &hist); err != nil {
		return err
	}
	for _, h := range hs {
		b, err := json.Marshal(historyEntry(h, created))
		e.note(err)
		hist = append(hist, b)
	}
	e.set(e.top, "history", hist)
	return nil
}

// historyEntry is h as a config history entry.
func historyEntry(h History, created time.Time) map[string]string {
	entry := map[string]string{"created_by": h.CreatedBy}
	if !created.IsZero() {
		entry["created"] = timestamp(created)
	}
	if h.Comment != "" {
		entry["comment"] = h.Comment
	}
	return entry
}

// timestamp is t as a config writes it: RFC 3339 in UTC, to the second.
func timestamp(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
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
