package spec

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/layers"
	"github.com/gantry-dev/gantry/manifests"
	"github.com/goccy/go-yaml"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// A Locator turns a problem with the field at a path such as
// images[0].layers[1].from into an error that says where it is: a file and
// line for gantry.yaml, the flag that set it for gantry append.
type Locator interface {
	Errorf(path, format string, args ...any) error
}

var (
	imageNameRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	tagRE       = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	posixNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,30}\$?$`)
	envKeyRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// validator is the one place an image's config is checked and resolved,
// whichever front end it came from.
type validator struct {
	loc Locator
	dir string          // relative host paths start here
	ctx context.Context // nil: not stopped
}

// stopped is ctx's error once it is done (a layer can name a lock file to
// parse or a directory to look at: loading stops between them).
func (v validator) stopped() error {
	if v.ctx == nil {
		return nil
	}
	return v.ctx.Err()
}

func (v validator) errorf(p, field, format string, args ...any) error {
	return v.loc.Errorf(joinPath(p, field), format, args...)
}

// image validates ic, found at path p ("" for a config made from flags).
func (v validator) image(p string, ic ImageConfig) (ImageSpec, error) {
	s := ImageSpec{
		Name: ic.Name, Base: ic.Base, BaseAsWritten: ic.Base, Workdir: ic.Workdir, StopSignal: ic.StopSignal,
		Entrypoint: ic.Entrypoint, Cmd: ic.Cmd, Tags: ic.Tags, Labels: ic.Labels, Annotations: ic.Annotations,
		NoSBOM: ic.SBOM != nil && !*ic.SBOM, NoProvenance: ic.Provenance != nil && !*ic.Provenance,
	}
	if !imageNameRE.MatchString(ic.Name) {
		return s, v.errorf(p, "name", "%q is not a valid repository name (lowercase letters, digits, . _ - and /)", ic.Name)
	}
	for _, check := range []func(string, ImageConfig, *ImageSpec) error{
		v.base, v.imagePlatforms, v.tags, v.encoding, v.imageLayers, v.imageUser, v.config, v.policy,
	} {
		if err := check(p, ic, &s); err != nil {
			return s, err
		}
	}
	return s, nil
}

// base checks the base image's reference; a relative oci: directory
// starts at v.dir.
func (v validator) base(p string, ic ImageConfig, s *ImageSpec) error {
	if ic.Base == "" {
		return v.errorf(p, "base", "missing; give a registry reference or oci:DIR[:tag]")
	}
	if !strings.HasPrefix(ic.Base, "oci:") {
		if fi, err := os.Stat(v.hostPath(ic.Base)); err == nil && fi.IsDir() {
			return v.errorf(p, "base", "%q is a directory here, not a registry reference; for an OCI layout write oci:%s", ic.Base, ic.Base)
		}
	}
	if dir, ok := strings.CutPrefix(ic.Base, "oci:"); ok && !filepath.IsAbs(dir) {
		s.Base = "oci:" + filepath.Join(v.dir, dir)
	}
	return nil
}

// imagePlatforms parses the image's platforms.
func (v validator) imagePlatforms(p string, ic ImageConfig, s *ImageSpec) error {
	plats, err := v.platforms(p, ic.Platforms)
	if err != nil {
		return err
	}
	s.Platforms = plats
	return nil
}

// tags checks the tags to push.
func (v validator) tags(p string, _ ImageConfig, s *ImageSpec) error {
	for j, t := range s.Tags {
		if err := ValidateTag(t); err != nil {
			return v.errorf(p, fmt.Sprintf("tags[%d]", j), "%v", err)
		}
	}
	return nil
}

// encoding checks the layers' compression and the manifests' format.
func (v validator) encoding(p string, ic ImageConfig, s *ImageSpec) error {
	comp, err := layers.Compression{Algorithm: ic.Compression, Level: ic.CompressionLevel}.Normalize()
	if err != nil {
		return v.errorf(p, "compression", "%v", err)
	}
	s.Compression = comp
	if err := checkFormat(ic.Format, &comp); err != nil {
		return v.errorf(p, "format", "%v", err)
	}
	s.Format = ic.Format
	return nil
}

// imageLayers validates the image's layers in order, stopping between them.
func (v validator) imageLayers(p string, ic ImageConfig, s *ImageSpec) error {
	for j, lc := range ic.Layers {
		if err := v.stopped(); err != nil {
			return err
		}
		ls, err := v.layer(joinPath(p, fmt.Sprintf("layers[%d]", j)), lc)
		if err != nil {
			return err
		}
		s.Layers = append(s.Layers, ls)
	}
	return nil
}

// imageUser checks the image's user:.
func (v validator) imageUser(p string, ic ImageConfig, s *ImageSpec) error {
	return v.user(p, ic.User, s)
}

// platforms parses the platforms to build; nil (or all) means every
// platform of the base.
func (v validator) platforms(p string, names []string) ([]v1.Platform, error) {
	var out []v1.Platform
	for j, pl := range names {
		if pl == "all" {
			return nil, nil
		}
		plat, err := manifests.ParsePlatform(pl)
		if err != nil {
			return nil, v.errorf(p, fmt.Sprintf("platforms[%d]", j), "%v", err)
		}
		out = append(out, plat)
	}
	return out, nil
}

// config checks the image config's fields: env, ports, volumes, workdir
// and healthcheck.
func (v validator) config(p string, ic ImageConfig, s *ImageSpec) error {
	for _, kv := range ic.Env {
		k := fmt.Sprint(kv.Key)
		if !envKeyRE.MatchString(k) {
			return v.errorf(p, "env."+k, "%q is not a valid environment variable name", k)
		}
		val := ""
		switch x := kv.Value.(type) {
		case nil:
		case string:
			val = x
		case []any, yaml.MapSlice, map[string]any:
			return v.errorf(p, "env."+k, "give a string, number or boolean, not a list or mapping")
		default:
			val = fmt.Sprint(x)
		}
		s.Env = append(s.Env, k+"="+val)
	}
	for j, port := range ic.Ports {
		ps, err := ParsePort(fmt.Sprint(port))
		if err != nil {
			return v.errorf(p, fmt.Sprintf("ports[%d]", j), "%v", err)
		}
		s.Ports = append(s.Ports, ps)
	}
	for j, vol := range ic.Volumes {
		if !path.IsAbs(vol) {
			return v.errorf(p, fmt.Sprintf("volumes[%d]", j), "%q is not an absolute path", vol)
		}
	}
	s.Volumes = ic.Volumes
	if ic.Workdir != "" && !path.IsAbs(ic.Workdir) {
		return v.errorf(p, "workdir", "%q is not an absolute path", ic.Workdir)
	}
	if hc := ic.Healthcheck; hc != nil {
		h, field, err := healthcheck(hc)
		if err != nil {
			return v.errorf(p, "healthcheck."+field, "%v", err)
		}
		s.Healthcheck = h
	}
	return nil
}

// policy checks the relaxations, runtime settings and limits.
func (v validator) policy(p string, ic ImageConfig, s *ImageSpec) error {
	s.Policy = Policy{AllowRoot: ic.AllowRoot, AllowWorldWritable: ic.AllowWorldWritable, AllowSetuid: ic.AllowSetuid, AllowForeignArch: ic.AllowForeignArch, AllowMissingPrograms: ic.AllowMissingPrograms, AllowSecrets: ic.AllowSecrets, MaxLayers: ic.MaxLayers}
	if ic.MaxLayers < 0 {
		return v.errorf(p, "maxLayers", "must not be negative")
	}
	withValue := map[string]bool{}
	for _, kv := range s.Env {
		k, val, _ := strings.Cut(kv, "=")
		withValue[k] = val != ""
	}
	for j, re := range ic.RuntimeEnv {
		q := fmt.Sprintf("runtimeEnv[%d].name", j)
		if !envKeyRE.MatchString(re.Name) {
			return v.errorf(p, q, "%q is not a valid environment variable name", re.Name)
		}
		if withValue[re.Name] {
			return v.errorf(p, q, "%s is also given a value under env:; a runtime setting gets its value when the container starts, never in the image", re.Name)
		}
		required := re.Required == nil || *re.Required
		s.RuntimeEnv = append(s.RuntimeEnv, RuntimeEnv{Name: re.Name, Description: re.Description, Required: required})
	}
	if ic.MaxSize != "" {
		n, err := ParseSize(ic.MaxSize)
		if err != nil {
			return v.errorf(p, "maxSize", "%v", err)
		}
		s.MaxSize = n
	}
	return nil
}

// secrets refuses env values that look like secrets unless the policy, as
// the command line changed it, allows them.
func (v validator) secrets(p string, s *ImageSpec) error {
	for _, kv := range s.Env {
		k, _, _ := strings.Cut(kv, "=")
		why := SecretEnv(kv)
		if why == "" || s.Policy.allowsSecret(k) {
			continue
		}
		return v.errorf(p, "env."+k, "%s, and anyone who can pull the image can read its config; declare it under runtimeEnv: (name and description only) and pass it at run time, or allow it with allowSecrets: [%s] / --allow-secret %s", why, k, k)
	}
	return nil
}

func (v validator) hostPath(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(v.dir, p)
}

// user checks the account to create and the directories it owns.
func (v validator) user(p string, u *UserConfig, s *ImageSpec) error {
	if u == nil {
		return nil
	}
	user, field, err := userSpec(u)
	if err != nil {
		return v.errorf(p, "user"+field, "%v", err)
	}
	s.User = &user
	for j, d := range u.Owns {
		if !path.IsAbs(d) {
			return v.errorf(p, fmt.Sprintf("user.owns[%d]", j), "%q is not an absolute path", d)
		}
	}
	s.Owns = u.Owns
	return nil
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
	field, err := validateUser(user)
	return user, field, err
}

// healthcheck returns the healthcheck and, with an error, the field at
// fault.
func healthcheck(hc *HealthcheckConfig) (*manifests.Healthcheck, string, error) {
	h := &manifests.Healthcheck{}
	switch t := hc.Test.(type) {
	case string:
		h.Test = manifests.ShellOrExec(t)
	case []any:
		var args []string
		for _, a := range t {
			args = append(args, fmt.Sprint(a))
		}
		h.Test = manifests.HealthcheckTest(args)
	case []string:
		h.Test = manifests.HealthcheckTest(t)
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
