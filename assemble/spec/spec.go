// Package spec says what to build: the gantry.yaml types, their strict
// decoding with file:line errors and ${VAR} expansion, the lock file, and the
// one validator that turns an image's config — from gantry.yaml or from
// `gantry append`'s flags — into an ImageSpec the engine builds.
package spec

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/layers"
	"github.com/gantry-dev/gantry/layers/python"
	"github.com/gantry-dev/gantry/manifests"
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
	// Format is "docker", "oci", or "" for the base's family.
	Format string
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
	// ConfigFile is the gantry.yaml the image came from ("" for gantry
	// append), which provenance names.
	ConfigFile string
	// NoSBOM and NoProvenance: sbom: false, provenance: false (or
	// --sbom=false, --provenance=false) attach none.
	NoSBOM, NoProvenance bool
}

// LayerSpec is one new layer. Its sources' from: may name the platform
// (${TARGETARCH} and friends); ForPlatform expands them.
type LayerSpec struct {
	Name string
	layers.Spec
	// Platforms limits the layer to these platforms (nil: every one).
	Platforms []v1.Platform
	// Python, when set, makes this a layer of Python packages installed
	// per platform (Sources is then empty).
	Python *PythonSpec
	// Debian, when set, makes this a layer of Debian packages installed
	// per platform.
	Debian *DebianSpec
	// Split, when over 0, cuts the layer into layers of about this many
	// bytes (layers.Split).
	Split int64
}

// PythonSpec is a layer of Python packages: the lock's requirements, where
// to find their wheels, and an optional site directory.
type PythonSpec struct {
	Lock         string // host path of the lock file
	Requirements []python.Requirement
	Wheels       []string // host directories and index URLs
	Target       string
}

// Description is the layer's line in the image history.
func (ls LayerSpec) Description() string {
	if ls.Python != nil {
		return "PYTHON " + ls.Name + " ← " + filepath.Base(ls.Python.Lock)
	}
	if ls.Debian != nil {
		return "APT " + ls.Name + " ← " + ls.Debian.Names()
	}
	var parts []string
	for _, s := range ls.Sources {
		parts = append(parts, s.To)
	}
	return "COPY " + ls.Name + " → " + strings.Join(parts, ", ")
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
	AllowRoot          bool // may run as root
	AllowWorldWritable bool // new files may be world-writable
	AllowSetuid        bool // new files may be setuid/setgid
	AllowForeignArch   bool // new ELF files may be of another architecture than their platform's
	// AllowMissingPrograms lets the healthcheck or entrypoint/cmd name a
	// program the image does not have.
	AllowMissingPrograms bool
	AllowSecrets         []string // env keys allowed to carry secret-looking values
	MaxLayers            int      // 0: no limit
}

func (s *ImageSpec) baseAsWritten() string {
	if s.BaseAsWritten != "" {
		return s.BaseAsWritten
	}
	return s.Base
}

// Options are the command line's changes to the images of a config file
// (gantry build) or to the one image made from flags (gantry append).
type Options struct {
	// Images selects images by name (all when empty).
	Images []string
	// Bases overrides images' bases, by image name (--base NAME=REF).
	Bases map[string]string
	// Platforms overrides every image's platforms; All selects all.
	Platforms    []v1.Platform
	AllPlatforms bool
	// Compression overrides every image's compression when set.
	Compression *layers.Compression
	// Format overrides every image's format when set (--format).
	Format string
	// MaxLayers overrides every image's maxLayers when above 0.
	MaxLayers int
	// Tags are the tags the command line writes (--tag), checked before
	// anything is built or written.
	Tags []string
	// Annotations are added to every image that does not set them itself
	// (the source, revision and version the CI system or git report).
	Annotations map[string]string
	// Relax adds to every image's policy relaxations (command-line flags).
	Relax Relax
	// NoSBOM and NoProvenance turn attestations off for every image.
	NoSBOM, NoProvenance bool
}

// Relax loosens policy checks from the command line.
type Relax struct {
	AllowRoot, AllowWorldWritable, AllowSetuid, AllowForeignArch, AllowMissingPrograms bool
	AllowSecrets                                                                       []string // env keys
	AllowSecretFiles                                                                   []string // patterns
}

// check validates the command line's own values.
func (o Options) check() error {
	if err := checkFormat(o.Format, o.Compression); err != nil {
		return &ConfigError{Path: "--format", Msg: err.Error()}
	}
	for _, t := range o.Tags {
		if err := ValidateTag(t); err != nil {
			return &ConfigError{Path: "--tag", Msg: err.Error()}
		}
	}
	return nil
}

// checkFormat checks a format, and that zstd layers (which Docker images
// cannot hold) do not go with docker.
func checkFormat(format string, comp *layers.Compression) error {
	switch format {
	case "", "oci":
	case "docker":
		if comp != nil && comp.Algorithm == layers.Zstd {
			return fmt.Errorf("docker images cannot hold zstd layers; use --format oci or gzip")
		}
	default:
		return fmt.Errorf("%q is not a format; use docker or oci", format)
	}
	return nil
}

// apply makes the command line's changes to s.
func (o Options) apply(s *ImageSpec) {
	r := o.Relax
	s.Policy.AllowRoot = s.Policy.AllowRoot || r.AllowRoot
	s.Policy.AllowWorldWritable = s.Policy.AllowWorldWritable || r.AllowWorldWritable
	s.Policy.AllowSetuid = s.Policy.AllowSetuid || r.AllowSetuid
	s.Policy.AllowForeignArch = s.Policy.AllowForeignArch || r.AllowForeignArch
	s.Policy.AllowMissingPrograms = s.Policy.AllowMissingPrograms || r.AllowMissingPrograms
	s.Policy.AllowSecrets = append(s.Policy.AllowSecrets, r.AllowSecrets...)
	for i := range s.Layers {
		s.Layers[i].AllowSecretFiles = append(s.Layers[i].AllowSecretFiles, r.AllowSecretFiles...)
	}
	if o.MaxLayers > 0 {
		s.Policy.MaxLayers = o.MaxLayers
	}
	o.applyAttest(s)
	if o.AllPlatforms {
		s.Platforms = nil
	} else if len(o.Platforms) > 0 {
		s.Platforms = o.Platforms
	}
	if o.Compression != nil {
		s.Compression = *o.Compression
	}
	if o.Format != "" {
		s.Format = o.Format
	}
	for k, v := range o.Annotations {
		if _, set := s.Annotations[k]; !set {
			if s.Annotations == nil {
				s.Annotations = map[string]string{}
			}
			s.Annotations[k] = v
		}
	}
}

// FromConfig validates one image's config that did not come from a file
// (gantry append builds one from its flags) and applies o. loc names the
// field at fault in an error, e.g. as the flag that set it; relative paths
// start at dir.
func FromConfig(loc Locator, dir string, ic ImageConfig, o Options) (ImageSpec, error) {
	if err := o.check(); err != nil {
		return ImageSpec{}, err
	}
	v := validator{loc: loc, dir: dir}
	s, err := v.image("", ic)
	if err != nil {
		return s, err
	}
	o.apply(&s)
	return s, v.secrets("", &s)
}

// Load reads a config file and returns the image specs to build, with o
// applied.
func Load(file string, getenv func(string) (string, bool), o Options) ([]ImageSpec, error) {
	return LoadContext(context.Background(), file, getenv, o)
}

// LoadContext is Load, stopped when ctx is done (Ctrl-C): it then returns
// an error wrapping ctx's, not a *ConfigError.
func LoadContext(ctx context.Context, file string, getenv func(string) (string, bool), o Options) ([]ImageSpec, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	f, src, err := loadFile(ctx, file, getenv)
	if err != nil {
		return nil, err
	}
	specs, err := src.specs(f)
	if err != nil {
		if ctx.Err() != nil {
			return nil, src.stopped()
		}
		return nil, err
	}
	byName := map[string]int{}
	var names []string
	for i, s := range specs {
		byName[s.Name] = i
		names = append(names, s.Name)
	}
	for n, ref := range o.Bases {
		i, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("--base %s=%s: %s has no image %q (it has %s)", n, ref, file, n, strings.Join(names, ", "))
		}
		specs[i].Base, specs[i].BaseAsWritten = ref, ref
	}
	v := validator{loc: src, dir: src.dir}
	for i := range specs {
		specs[i].ConfigFile = file
		o.apply(&specs[i])
		if err := v.secrets(fmt.Sprintf("images[%d]", i), &specs[i]); err != nil {
			return nil, err
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

// specs validates f and resolves it into image specs.
func (src *configSource) specs(f *File) ([]ImageSpec, error) {
	if len(f.Images) == 0 {
		return nil, src.Errorf("images", "no images defined; add at least one under images:")
	}
	if err := src.normalize(f); err != nil {
		return nil, err
	}
	v := validator{loc: src, dir: src.dir, ctx: src.ctx}
	seen := map[string]bool{}
	var out []ImageSpec
	for i, ic := range f.Images {
		if err := src.ctx.Err(); err != nil {
			return nil, err
		}
		p := fmt.Sprintf("images[%d]", i)
		if ic.Compression == "" {
			ic.Compression = f.Compression
			if ic.CompressionLevel == 0 {
				ic.CompressionLevel = f.CompressionLevel
			}
		}
		ic.SBOM, ic.Provenance = orDefault(ic.SBOM, f.SBOM), orDefault(ic.Provenance, f.Provenance)
		s, err := v.image(p, ic)
		if err != nil {
			return nil, err
		}
		s.Mirrors = f.Mirrors
		if seen[s.Name] {
			return nil, src.Errorf(p+".name", "duplicate image name %q", s.Name)
		}
		seen[s.Name] = true
		out = append(out, s)
	}
	return out, nil
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

// EpochFromEnv reads SOURCE_DATE_EPOCH (nil when unset).
func EpochFromEnv(getenv func(string) string) (*time.Time, error) {
	v := getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds since 1970", v)
	}
	t := time.Unix(n, 0).UTC()
	return &t, nil
}

// allowsSecret reports whether the policy lets env key k carry a secret.
func (p Policy) allowsSecret(k string) bool { return slices.Contains(p.AllowSecrets, k) }

// applyAttest turns off what --sbom=false and --provenance=false say.
func (o Options) applyAttest(s *ImageSpec) {
	s.NoSBOM = s.NoSBOM || o.NoSBOM
	s.NoProvenance = s.NoProvenance || o.NoProvenance
}

// orDefault is an image's setting, else the file's.
func orDefault(image, file *bool) *bool {
	if image != nil {
		return image
	}
	return file
}
