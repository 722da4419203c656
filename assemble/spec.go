package assemble

import (
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/layers"
	"github.com/gantry-dev/gantry/manifests"
	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ImageSpec is one image to build, validated and with host paths resolved.
// Both gantry.yaml and `gantry append` produce it.
type ImageSpec struct {
	Name        string
	Base        string
	Platforms   []v1.Platform // nil: every platform of the base
	Layers      []LayerSpec
	User        *layers.User
	Owns        []string
	Env         []string
	Entrypoint  []string
	Cmd         []string
	Workdir     string
	Labels      map[string]string
	Annotations map[string]string
	Ports       []string
	Volumes     []string
	StopSignal  string
	Healthcheck *manifests.Healthcheck
	Tags        []string
	MaxSize     int64
	Compression layers.Compression
	// Mirrors from the config file: registry → mirror host[/prefix].
	Mirrors map[string]string
	// BaseAsWritten is Base as the config file or --base gave it (a layout
	// path relative to the config file), which the lock file records.
	BaseAsWritten string
	// Pin, from the lock file, fixes the base's digests.
	Pin *Pin
	// RuntimeEnv is recorded in the RuntimeEnvLabel label.
	RuntimeEnv []RuntimeEnv
	Policy     Policy
}

// RuntimeEnv is a setting the container needs at run time.
type RuntimeEnv struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Required    bool   `json:"required"`
}

// RuntimeEnvLabel holds an image's runtime settings as JSON, so deployers
// know what to provide.
const RuntimeEnvLabel = "dev.gantry.runtime-env"

// Policy is what an image must satisfy; each check is on unless relaxed.
type Policy struct {
	AllowRoot          bool     // may run as root
	AllowWorldWritable bool     // new files may be world-writable
	AllowSetuid        bool     // new files may be setuid/setgid
	AllowSecrets       []string // env keys allowed to carry secret-looking values
	MaxLayers          int      // 0: no limit
}

func (s *ImageSpec) baseAsWritten() string {
	if s.BaseAsWritten != "" {
		return s.BaseAsWritten
	}
	return s.Base
}

// LayerSpec is one new layer.
type LayerSpec struct {
	Name string
	layers.Spec
}

var (
	imageNameRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	tagRE       = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	posixNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,30}\$?$`)
	envKeyRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// specs validates f and resolves it into image specs.
func (src *configSource) specs(f *File) ([]ImageSpec, error) {
	if len(f.Images) == 0 {
		return nil, src.errorf("images", "no images defined; add at least one under images:")
	}
	seen := map[string]bool{}
	var out []ImageSpec
	for i, ic := range f.Images {
		p := fmt.Sprintf("images[%d]", i)
		if ic.Compression == "" {
			ic.Compression = f.Compression
			if ic.CompressionLevel == 0 {
				ic.CompressionLevel = f.CompressionLevel
			}
		}
		s, err := src.imageSpec(p, ic)
		if err != nil {
			return nil, err
		}
		s.Mirrors = f.Mirrors
		if seen[s.Name] {
			return nil, src.errorf(p+".name", "duplicate image name %q", s.Name)
		}
		seen[s.Name] = true
		out = append(out, s)
	}
	return out, nil
}

func (src *configSource) imageSpec(p string, ic ImageConfig) (ImageSpec, error) {
	s := ImageSpec{
		Name: ic.Name, Base: ic.Base, BaseAsWritten: ic.Base, Workdir: ic.Workdir, StopSignal: ic.StopSignal,
		Entrypoint:  src.seqText(p+".entrypoint", ic.Entrypoint),
		Cmd:         src.seqText(p+".cmd", ic.Cmd),
		Tags:        src.seqText(p+".tags", ic.Tags),
		Labels:      src.mapText(p+".labels", ic.Labels),
		Annotations: src.mapText(p+".annotations", ic.Annotations),
	}
	if !imageNameRE.MatchString(ic.Name) {
		return s, src.errorf(p+".name", "%q is not a valid repository name (lowercase letters, digits, . _ - and /)", ic.Name)
	}
	if ic.Base == "" {
		return s, src.errorf(p+".base", "missing; give a registry reference or oci:DIR[:tag]")
	}
	if strings.HasPrefix(ic.Base, "oci:") && !filepath.IsAbs(strings.TrimPrefix(ic.Base, "oci:")) {
		s.Base = "oci:" + filepath.Join(src.dir, strings.TrimPrefix(ic.Base, "oci:"))
	}
	for j, pl := range ic.Platforms {
		if pl == "all" {
			s.Platforms = nil
			break
		}
		plat, err := manifests.ParsePlatform(pl)
		if err != nil {
			return s, src.errorf(fmt.Sprintf("%s.platforms[%d]", p, j), "%v", err)
		}
		s.Platforms = append(s.Platforms, plat)
	}
	for j, t := range s.Tags {
		if !tagRE.MatchString(t) {
			return s, src.errorf(fmt.Sprintf("%s.tags[%d]", p, j), "%q is not a valid tag (letters, digits, _ . -, at most 128)", t)
		}
	}
	comp, err := layers.Compression{Algorithm: ic.Compression, Level: ic.CompressionLevel}.Normalize()
	if err != nil {
		return s, src.errorf(p+".compression", "%v", err)
	}
	s.Compression = comp
	for j, lc := range ic.Layers {
		ls, err := src.layerSpec(fmt.Sprintf("%s.layers[%d]", p, j), lc)
		if err != nil {
			return s, err
		}
		s.Layers = append(s.Layers, ls)
	}
	if u := ic.User; u != nil {
		user, field, err := userSpec(u)
		if err != nil {
			return s, src.errorf(p+".user"+field, "%v", err)
		}
		s.User = &user
		for j, d := range u.Owns {
			if !path.IsAbs(d) {
				return s, src.errorf(fmt.Sprintf("%s.user.owns[%d]", p, j), "%q is not an absolute path", d)
			}
		}
		s.Owns = u.Owns
	}
	for _, kv := range ic.Env {
		k := fmt.Sprint(kv.Key)
		if !envKeyRE.MatchString(k) {
			return s, src.errorf(p+".env."+k, "%q is not a valid environment variable name", k)
		}
		v := ""
		switch val := kv.Value.(type) {
		case nil:
		case string:
			v = val
		case []any, yaml.MapSlice, map[string]any:
			return s, src.errorf(p+".env."+k, "give a string, number or boolean, not a list or mapping")
		default:
			v = src.scalarText(src.mapEntry(p+".env", k), fmt.Sprint(kv.Value))
		}
		s.Env = append(s.Env, k+"="+v)
	}
	for j, port := range ic.Ports {
		ps, err := ParsePort(fmt.Sprint(port))
		if err != nil {
			return s, src.errorf(fmt.Sprintf("%s.ports[%d]", p, j), "%v", err)
		}
		s.Ports = append(s.Ports, ps)
	}
	for j, v := range ic.Volumes {
		if !path.IsAbs(v) {
			return s, src.errorf(fmt.Sprintf("%s.volumes[%d]", p, j), "%q is not an absolute path", v)
		}
	}
	s.Volumes = ic.Volumes
	if ic.Workdir != "" && !path.IsAbs(ic.Workdir) {
		return s, src.errorf(p+".workdir", "%q is not an absolute path", ic.Workdir)
	}
	if hc := ic.Healthcheck; hc != nil {
		h, field, err := src.healthcheckSpec(p+".healthcheck", hc)
		if err != nil {
			return s, src.errorf(p+".healthcheck."+field, "%v", err)
		}
		s.Healthcheck = h
	}
	s.Policy = Policy{AllowRoot: ic.AllowRoot, AllowWorldWritable: ic.AllowWorldWritable, AllowSetuid: ic.AllowSetuid, AllowSecrets: ic.AllowSecrets, MaxLayers: ic.MaxLayers}
	if ic.MaxLayers < 0 {
		return s, src.errorf(p+".maxLayers", "must not be negative")
	}
	withValue := map[string]bool{}
	for _, kv := range s.Env {
		k, v, _ := strings.Cut(kv, "=")
		withValue[k] = v != ""
	}
	for j, re := range ic.RuntimeEnv {
		q := fmt.Sprintf("%s.runtimeEnv[%d]", p, j)
		if !envKeyRE.MatchString(re.Name) {
			return s, src.errorf(q+".name", "%q is not a valid environment variable name", re.Name)
		}
		if withValue[re.Name] {
			return s, src.errorf(q+".name", "%s is also given a value under env:; a runtime setting gets its value when the container starts, never in the image", re.Name)
		}
		required := re.Required == nil || *re.Required
		s.RuntimeEnv = append(s.RuntimeEnv, RuntimeEnv{Name: re.Name, Description: re.Description, Required: required})
	}
	if ic.MaxSize != "" {
		n, err := ParseSize(ic.MaxSize)
		if err != nil {
			return s, src.errorf(p+".maxSize", "%v", err)
		}
		s.MaxSize = n
	}
	return s, nil
}

func (src *configSource) layerSpec(p string, lc LayerConfig) (LayerSpec, error) {
	ls := LayerSpec{Name: lc.Name}
	ls.Include, ls.Exclude, ls.Precompress = lc.Include, lc.Exclude, lc.Precompress
	ls.FollowSymlinks, ls.SecretFiles, ls.AllowSecretFiles = lc.FollowSymlinks, true, lc.AllowSecretFiles
	if lc.From == "" && len(lc.Files) == 0 {
		return ls, src.errorf(p, "a layer needs from: (a directory or file) or files:")
	}
	if lc.From != "" {
		s, err := src.source(p, lc.From, lc.To)
		if err != nil {
			return ls, err
		}
		ls.Sources = append(ls.Sources, s)
	} else if lc.To != "" {
		return ls, src.errorf(p+".to", "to: goes with from:; each of files: has its own to:")
	}
	for j, fc := range lc.Files {
		s, err := src.source(fmt.Sprintf("%s.files[%d]", p, j), fc.From, fc.To)
		if err != nil {
			return ls, err
		}
		ls.Sources = append(ls.Sources, s)
	}
	if lc.Owner != "" {
		o, err := ParseOwner(lc.Owner)
		if err != nil {
			return ls, src.errorf(p+".owner", "%v", err)
		}
		ls.Owner = &o
	}
	for _, m := range []struct {
		field string
		val   string
		dst   *fs.FileMode
	}{{"fileMode", lc.FileMode, &ls.FileMode}, {"dirMode", lc.DirMode, &ls.DirMode}} {
		if m.val == "" {
			continue
		}
		n, err := strconv.ParseUint(m.val, 8, 32)
		if err != nil || n > 0o7777 || n == 0 {
			return ls, src.errorf(p+"."+m.field, "%q is not an octal mode such as \"0644\"", m.val)
		}
		*m.dst = fs.FileMode(n)
	}
	if ls.Name == "" {
		ls.Name = ls.Sources[0].To
	}
	return ls, nil
}

func (src *configSource) source(p, from, to string) (layers.Source, error) {
	if from == "" {
		return layers.Source{}, src.errorf(p+".from", "missing")
	}
	if to == "" {
		return layers.Source{}, src.errorf(p+".to", "missing; give an absolute path in the image")
	}
	if !path.IsAbs(to) {
		return layers.Source{}, src.errorf(p+".to", "%q is not an absolute path in the image", to)
	}
	host := from
	if !filepath.IsAbs(host) {
		host = filepath.Join(src.dir, from)
	}
	if _, err := os.Lstat(host); err != nil {
		return layers.Source{}, src.errorf(p+".from", "%s does not exist (relative paths start at %s)", host, src.dir)
	}
	return layers.Source{From: host, To: to}, nil
}

// userSpec returns the user and, with an error, the field at fault (".uid").
func userSpec(u *UserConfig) (layers.User, string, error) {
	if u.UID == nil {
		return layers.User{}, "", fmt.Errorf("uid is required")
	}
	user := layers.User{Name: u.Name, UID: *u.UID, Group: u.Group, GID: *u.UID, Home: u.Home, Shell: u.Shell}
	if u.GID != nil {
		user.GID = *u.GID
	}
	if user.Group == "" {
		user.Group = user.Name
	}
	err := ValidateUser(user)
	field := ""
	switch {
	case err == nil:
	case !posixNameRE.MatchString(user.Name):
		field = ".name"
	case u.Group != "" && !posixNameRE.MatchString(user.Group):
		field = ".group"
	case user.UID < 0 || user.UID > 65534:
		field = ".uid"
	case u.GID != nil:
		field = ".gid"
	}
	return user, field, err
}

func ValidateUser(u layers.User) error {
	if !posixNameRE.MatchString(u.Name) {
		return fmt.Errorf("user name %q is not a valid POSIX name (lowercase, digits, _ -, at most 32)", u.Name)
	}
	if !posixNameRE.MatchString(u.Group) {
		return fmt.Errorf("group name %q is not a valid POSIX name", u.Group)
	}
	for _, id := range []int{u.UID, u.GID} {
		if id < 0 || id > 65534 {
			return fmt.Errorf("id %d out of range 0-65534", id)
		}
	}
	return nil
}

func (src *configSource) healthcheckSpec(p string, hc *HealthcheckConfig) (*manifests.Healthcheck, string, error) {
	h := &manifests.Healthcheck{}
	switch t := hc.Test.(type) {
	case string:
		h.Test = manifests.ShellOrExec(t)
	case []any:
		var args []string
		for j, a := range t {
			args = append(args, src.scalarText(src.node(fmt.Sprintf("%s.test[%d]", p, j)), fmt.Sprint(a)))
		}
		h.Test = manifests.HealthcheckTest(args)
	default:
		return nil, "test", fmt.Errorf("give a command: a string (shell form) or a list (exec form)")
	}
	if len(h.Test) == 0 || h.Test[0] != "NONE" && (len(h.Test) < 2 || strings.TrimSpace(strings.Join(h.Test[1:], "")) == "") {
		return nil, "test", fmt.Errorf("empty command")
	}
	for _, d := range []struct {
		field string
		val   string
		dst   *time.Duration
	}{{"interval", hc.Interval, &h.Interval}, {"timeout", hc.Timeout, &h.Timeout}, {"startPeriod", hc.StartPeriod, &h.StartPeriod}} {
		if d.val == "" {
			continue
		}
		v, err := time.ParseDuration(d.val)
		if err != nil || v < time.Millisecond {
			return nil, d.field, fmt.Errorf("%q is not a duration of at least 1ms such as 10s or 1m30s", d.val)
		}
		*d.dst = v
	}
	if hc.Retries != nil {
		if *hc.Retries < 0 {
			return nil, "retries", fmt.Errorf("must not be negative")
		}
		h.Retries = *hc.Retries
	}
	return h, "", nil
}

// ParseOwner parses "uid:gid" (numeric).
func ParseOwner(s string) (layers.Owner, error) {
	u, g, ok := strings.Cut(s, ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if !ok || err1 != nil || err2 != nil || uid < 0 || gid < 0 || uid > 1<<31-2 || gid > 1<<31-2 {
		return layers.Owner{}, fmt.Errorf("owner %q: want numeric uid:gid such as 1001:1001", s)
	}
	return layers.Owner{UID: uid, GID: gid}, nil
}

// ParsePort parses N or N/proto into "N/proto" (tcp by default).
func ParsePort(s string) (string, error) {
	num, proto, ok := strings.Cut(s, "/")
	if !ok {
		proto = "tcp"
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("port %q: want a number 1-65535, optionally /tcp, /udp or /sctp", s)
	}
	switch proto {
	case "tcp", "udp", "sctp":
	default:
		return "", fmt.Errorf("port %q: protocol must be tcp, udp or sctp", s)
	}
	return fmt.Sprintf("%d/%s", n, proto), nil
}

// ParseSize parses sizes such as 200MB (decimal, as docker images shows
// them) or 1.5GiB (binary).
func ParseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	t := strings.TrimSpace(s)
	for _, u := range units {
		if num, ok := strings.CutSuffix(t, u.suffix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
			n := f * u.mult
			// !(n < 2^63) also rejects NaN and +Inf; under a byte would be 0 (no limit).
			if err != nil || n < 1 || !(n < 1<<63) {
				break
			}
			return int64(n), nil
		}
	}
	return 0, fmt.Errorf("size %q: want a number with a unit, such as 200MB or 1.5GiB", s)
}

// LoadOptions are the command line's changes to a config file's images.
type LoadOptions struct {
	// Images selects images by name (all when empty).
	Images []string
	// Bases overrides images' bases, by image name (--base NAME=REF).
	Bases map[string]string
	// Platforms overrides every image's platforms; All selects all.
	Platforms    []v1.Platform
	AllPlatforms bool
	// Compression overrides every image's compression when set.
	Compression *layers.Compression
	// Relax adds to every image's policy relaxations (command-line flags).
	Relax Relax
}

// Relax loosens policy checks from the command line.
type Relax struct {
	AllowRoot, AllowWorldWritable, AllowSetuid bool
	AllowSecrets                               []string // env keys
	AllowSecretFiles                           []string // patterns
}

// Apply adds r to a spec's policy.
func (r Relax) Apply(s *ImageSpec) {
	s.Policy.AllowRoot = s.Policy.AllowRoot || r.AllowRoot
	s.Policy.AllowWorldWritable = s.Policy.AllowWorldWritable || r.AllowWorldWritable
	s.Policy.AllowSetuid = s.Policy.AllowSetuid || r.AllowSetuid
	s.Policy.AllowSecrets = append(s.Policy.AllowSecrets, r.AllowSecrets...)
	for i := range s.Layers {
		s.Layers[i].AllowSecretFiles = append(s.Layers[i].AllowSecretFiles, r.AllowSecretFiles...)
	}
}

// secretEnvKey reports env keys whose values are secrets by convention.
func secretEnvKey(k string) bool {
	u := strings.ToUpper(k)
	return strings.HasSuffix(u, "_KEY") || strings.HasSuffix(u, "_TOKEN") || strings.HasSuffix(u, "_SECRET") ||
		strings.Contains(u, "PASSWORD") || strings.Contains(u, "PASSWD") || u == "SECRET" || u == "TOKEN"
}

// SecretEnv says why an env value must not be baked into an image, or "".
func SecretEnv(kv string) string {
	k, v, _ := strings.Cut(kv, "=")
	if v == "" {
		return ""
	}
	if secretEnvKey(k) {
		return "its name says it holds a secret"
	}
	if u, err := url.Parse(v); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return "it is a URL with a password in it"
		}
	}
	return ""
}

// CheckSecrets refuses env values that look like secrets unless allowed.
func (s *ImageSpec) CheckSecrets() error {
	if k, msg := s.secretEnv(); k != "" {
		return fmt.Errorf("env %s: %s", k, msg)
	}
	return nil
}

func (s *ImageSpec) secretEnv() (key, msg string) {
	for _, kv := range s.Env {
		k, _, _ := strings.Cut(kv, "=")
		why := SecretEnv(kv)
		if why == "" || slices.Contains(s.Policy.AllowSecrets, k) {
			continue
		}
		return k, fmt.Sprintf("%s, and anyone who can pull the image can read its config; declare it under runtimeEnv: (name and description only) and pass it at run time, or allow it with allowSecrets: [%s] / --allow-secret %s", why, k, k)
	}
	return "", ""
}

// Load reads a config file and returns the image specs to build.
func Load(file string, getenv func(string) (string, bool), o LoadOptions) ([]ImageSpec, error) {
	f, src, err := LoadFile(file, getenv)
	if err != nil {
		return nil, err
	}
	specs, err := src.specs(f)
	if err != nil {
		return nil, err
	}
	byName := map[string]int{}
	var names []string
	for i, s := range specs {
		byName[s.Name] = i
		names = append(names, s.Name)
	}
	for i := range specs {
		o.Relax.Apply(&specs[i])
		if k, msg := specs[i].secretEnv(); k != "" {
			return nil, src.errorf(fmt.Sprintf("images[%d].env.%s", i, k), "%s", msg)
		}
	}
	for n, ref := range o.Bases {
		i, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("--base %s=%s: %s has no image %q (it has %s)", n, ref, file, n, strings.Join(names, ", "))
		}
		specs[i].Base, specs[i].BaseAsWritten = ref, ref
	}
	for i := range specs {
		if o.AllPlatforms {
			specs[i].Platforms = nil
		} else if len(o.Platforms) > 0 {
			specs[i].Platforms = o.Platforms
		}
		if o.Compression != nil {
			specs[i].Compression = *o.Compression
		}
	}
	if len(o.Images) == 0 {
		return specs, nil
	}
	var out []ImageSpec
	picked := map[string]bool{}
	for _, n := range o.Images {
		i, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("--image %s: %s has no such image (it has %s)", n, file, strings.Join(names, ", "))
		}
		if !picked[n] {
			picked[n] = true
			out = append(out, specs[i])
		}
	}
	return out, nil
}

// The decoder types plain scalars before they reach string fields, so 1.10
// would become "1.1", 0755 "493" and 0x1F "31". For numbers and booleans the
// text in the file is what was meant: scalarText, seqText and mapText put it
// back.

// node returns the node at a path such as images[0].cmd[1], or nil.
func (src *configSource) node(p string) ast.Node {
	if src.ast == nil {
		return nil
	}
	yp, err := yaml.PathString("$." + p)
	if err != nil {
		return nil
	}
	n, err := yp.FilterFile(src.ast)
	if err != nil {
		return nil
	}
	return n
}

// mapEntry returns the value node of key in the mapping at p, or nil.
func (src *configSource) mapEntry(p, key string) ast.Node {
	m, ok := src.node(p).(*ast.MappingNode)
	if !ok {
		return nil
	}
	for _, kv := range m.Values {
		if kv.Key != nil && kv.Key.GetToken() != nil && kv.Key.GetToken().Value == key {
			return kv.Value
		}
	}
	return nil
}

// scalarText returns n's source text when it is a number or boolean and
// decoded (the decoder's string for it) otherwise.
func (src *configSource) scalarText(n ast.Node, decoded string) string {
	switch n.(type) {
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return n.GetToken().Value
	}
	return decoded
}

func (src *configSource) seqText(p string, vals []string) []string {
	if vals == nil {
		return nil
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = src.scalarText(src.node(fmt.Sprintf("%s[%d]", p, i)), v)
	}
	return out
}

func (src *configSource) mapText(p string, vals map[string]string) map[string]string {
	if vals == nil {
		return nil
	}
	out := make(map[string]string, len(vals))
	for k, v := range vals {
		out[k] = src.scalarText(src.mapEntry(p, k), v)
	}
	return out
}
