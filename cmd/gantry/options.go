package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/assemble"
	"github.com/gantry-dev/gantry/assemble/progress"
	"github.com/gantry-dev/gantry/assemble/registry"
	"github.com/gantry-dev/gantry/assemble/sink"
	"github.com/gantry-dev/gantry/assemble/spec"
	"github.com/gantry-dev/gantry/layers"
	"github.com/gantry-dev/gantry/manifests"
	"github.com/spf13/pflag"
)

// Each concern's flags are one struct with its own add function. The
// logging and registry groups are the root's persistent flags, bound once
// for every command; the build, output and policy groups belong to build
// and append.

// logOptions are how gantry talks on stderr.
type logOptions struct {
	verbose  bool
	quiet    bool
	progress string
}

func (o *logOptions) add(f *pflag.FlagSet) {
	f.BoolVarP(&o.verbose, "verbose", "v", false, "log more detail to stderr, including each HTTP exchange (secrets redacted)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "print no progress, only warnings and errors")
	f.StringVar(&o.progress, "progress", "auto", "progress on stderr: auto (bars on a terminal, else plain), tty, plain or none")
}

// display starts the progress display on stderr and the logger that
// writes through it.
func (o *logOptions) display(stderr io.Writer) (progressOutput, *slog.Logger, error) {
	p, err := newProgress(o.progress, o.quiet, stderr)
	if err != nil {
		return nil, nil, err
	}
	level := slog.LevelInfo
	switch {
	case o.quiet:
		level = slog.LevelWarn
	case o.verbose:
		level = slog.LevelDebug
	}
	return p, slog.New(slog.NewTextHandler(p.Writer(), &slog.HandlerOptions{Level: level, ReplaceAttr: dropTime})), nil
}

func dropTime(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 {
		return slog.Attr{}
	}
	return a
}

// registryOptions are how gantry reaches registries.
type registryOptions struct {
	insecure   bool
	caCert     string
	mirrors    []string
	regUser    string
	regPwStdin bool
	registry   string
	jobs       int
	timeout    time.Duration
}

func (o *registryOptions) add(f *pflag.FlagSet) {
	f.BoolVar(&o.insecure, "insecure", false, "allow plain HTTP and unverified TLS registries (localhost is always allowed HTTP)")
	f.StringVar(&o.caCert, "ca-cert", "", "PEM file of extra CA certificates to trust (a private registry's CA)")
	f.StringArrayVar(&o.mirrors, "mirror", nil, "pull bases of REGISTRY through MIRROR: REGISTRY=HOST[/prefix], e.g. docker.io=mirror.local:5000 (repeatable)")
	f.StringVar(&o.regUser, "registry-user", "", "user name for --registry (default registry: the push destination's); or GANTRY_REGISTRY_USER")
	f.BoolVar(&o.regPwStdin, "registry-password-stdin", false, "read the --registry-user password or token from stdin; or GANTRY_REGISTRY_PASSWORD")
	f.StringVar(&o.registry, "registry", "", "registry the --registry-user credentials are for; or GANTRY_REGISTRY")
	f.IntVar(&o.jobs, "jobs", 8, "concurrent uploads")
	f.DurationVar(&o.timeout, "registry-timeout", 0, "fail a registry request when no byte moves for this long (default 30s); or GANTRY_REGISTRY_TIMEOUT")
}

// client makes the registry client; push is the push destination, whose
// registry --registry-user's credentials are for unless --registry says.
func (o *registryOptions) client(stdin io.Reader, getenv env, push string, log *slog.Logger, p progress.Progress) (*registry.Client, error) {
	mirrors := map[string]string{}
	for _, m := range o.mirrors {
		reg, host, ok := strings.Cut(m, "=")
		if !ok || reg == "" || host == "" {
			return nil, usagef("--mirror %q: want REGISTRY=HOST[/prefix], e.g. docker.io=mirror.local:5000", m)
		}
		mirrors[reg] = host
	}
	creds, err := o.credentials(stdin, getenv, push)
	if err != nil {
		return nil, err
	}
	timeout := o.timeout
	if v := getenv.get("GANTRY_REGISTRY_TIMEOUT"); timeout == 0 && v != "" {
		if timeout, err = time.ParseDuration(v); err != nil || timeout <= 0 {
			return nil, usagef("GANTRY_REGISTRY_TIMEOUT=%q is not a duration such as 30s or 2m", v)
		}
	}
	c, err := registry.New(registry.Options{
		Insecure: o.insecure, Jobs: o.jobs, Logger: log, UserAgent: "gantry/" + version(),
		CACert: o.caCert, Mirrors: mirrors, Credentials: creds, Progress: p, IdleTimeout: timeout,
	})
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// credentials reads --registry-user and its password (stdin), or
// GANTRY_REGISTRY_USER and GANTRY_REGISTRY_PASSWORD. They are for --registry
// (or GANTRY_REGISTRY), else for the push destination's registry.
func (o *registryOptions) credentials(stdin io.Reader, getenv env, push string) (*registry.Credentials, error) {
	user, password, reg := o.regUser, "", o.registry
	if user == "" {
		user = getenv.get("GANTRY_REGISTRY_USER")
	}
	if reg == "" {
		reg = getenv.get("GANTRY_REGISTRY")
	}
	switch {
	case o.regPwStdin:
		b, err := io.ReadAll(io.LimitReader(stdin, 64<<10))
		if err != nil {
			return nil, fmt.Errorf("reading the registry password from stdin: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	default:
		password = getenv.get("GANTRY_REGISTRY_PASSWORD")
	}
	if user == "" && password == "" {
		return nil, nil
	}
	if user == "" || password == "" {
		return nil, usagef("registry credentials need both a user (--registry-user or GANTRY_REGISTRY_USER) and a password (--registry-password-stdin or GANTRY_REGISTRY_PASSWORD)")
	}
	if reg == "" {
		if push == "" {
			return nil, usagef("--registry-user: name the registry with --registry (or GANTRY_REGISTRY), or push with --push")
		}
		reg = registry.HostOf(push)
	}
	return &registry.Credentials{Registry: reg, Username: user, Password: password}, nil
}

// buildOptions choose what is built: platforms, compression, the cache.
type buildOptions struct {
	platform    string
	compression string
	level       int
	cacheDir    string
	format      string
	sbom        bool
	provenance  bool
}

func (o *buildOptions) add(f *pflag.FlagSet) {
	f.StringVar(&o.platform, "platform", "", "platforms to build: all, or a comma-separated list of os/arch[/variant] (default: every platform of the base)")
	f.StringVar(&o.compression, "compression", "", "layer compression: gzip (default) or zstd (writes OCI media types)")
	f.IntVar(&o.level, "compression-level", 0, "compression level (gzip 1-9, zstd 1-4; default 1)")
	f.StringVar(&o.format, "format", "", "manifest format: docker (podman reads HEALTHCHECK only from these) or oci (default: the base's)")
	f.StringVar(&o.cacheDir, "cache-dir", "", "layer cache directory (default: $XDG_CACHE_HOME/gantry)")
	f.BoolVar(&o.sbom, "sbom", true, "attach an SPDX SBOM to every platform image (--sbom=false: none)")
	f.BoolVar(&o.provenance, "provenance", true, "attach SLSA provenance to every platform image (--provenance=false: none)")
}

// policyOptions relax the gates.
type policyOptions struct {
	relax     spec.Relax
	maxLayers int
}

func (o *policyOptions) add(f *pflag.FlagSet) {
	f.BoolVar(&o.relax.AllowRoot, "allow-root", false, "allow an image that runs as root")
	f.StringArrayVar(&o.relax.AllowSecrets, "allow-secret", nil, "allow this env key to carry a secret-looking value (repeatable)")
	f.StringArrayVar(&o.relax.AllowSecretFiles, "allow-secret-file", nil, "allow files matching this pattern that look like secrets, e.g. certs/*.pem (repeatable)")
	f.BoolVar(&o.relax.AllowWorldWritable, "allow-world-writable", false, "allow world-writable files in new layers")
	f.BoolVar(&o.relax.AllowSetuid, "allow-setuid", false, "allow setuid/setgid files in new layers")
	f.BoolVar(&o.relax.AllowMissingPrograms, "allow-missing-program", false, "allow a healthcheck or entrypoint/cmd that names a program the image does not have")
	f.BoolVar(&o.relax.AllowForeignArch, "allow-foreign-arch", false, "allow ELF files in new layers whose architecture is not their platform's")
	f.IntVar(&o.maxLayers, "max-layers", 0, "fail if an image has more layers than this (0: the config's maxLayers, else no limit)")
}

// imageOptions are the groups build and append share.
type imageOptions struct {
	build  buildOptions
	policy policyOptions
	output outputOptions
}

func (o *imageOptions) add(f *pflag.FlagSet, pushHelp string) {
	o.build.add(f)
	o.policy.add(f)
	o.output.add(f, pushHelp)
}

// spec is the build and policy groups as the spec's overrides.
func (opts *imageOptions) spec() (spec.Options, error) {
	b, p := &opts.build, &opts.policy
	o := spec.Options{Relax: p.relax, MaxLayers: p.maxLayers, Tags: opts.output.tags, Format: b.format, NoSBOM: !b.sbom, NoProvenance: !b.provenance}
	switch b.platform {
	case "":
	case "all":
		o.AllPlatforms = true
	default:
		for _, s := range strings.Split(b.platform, ",") {
			pl, err := manifests.ParsePlatform(strings.TrimSpace(s))
			if err != nil {
				return o, usagef("--platform: %v", err)
			}
			o.Platforms = append(o.Platforms, pl)
		}
	}
	if b.compression != "" || b.level != 0 {
		comp, err := layers.Compression{Algorithm: b.compression, Level: b.level}.Normalize()
		if err != nil {
			return o, usagef("--compression: %v", err)
		}
		o.Compression = &comp
	}
	return o, nil
}

// defaultOutput is where a build with neither --push nor --output goes.
const defaultOutput = "oci:gantry-out"

// outputOptions say where results go and how they are reported.
type outputOptions struct {
	push       string
	cacheFrom  []string
	cacheRepo  string
	tags       []string
	output     string
	json       bool
	digestFile string
	verify     string
}

func (o *outputOptions) add(f *pflag.FlagSet, pushHelp string) {
	f.StringVar(&o.push, "push", "", pushHelp)
	f.StringArrayVarP(&o.tags, "tag", "t", nil, "tag to write (repeatable; default: the config's tags, else latest)")
	f.StringVar(&o.cacheRepo, "cache-repo", "", "with --push: keep a shared cache (layers by content, base-layer indexes) at REPO:gantry-cache, read and updated by every build")
	f.StringArrayVar(&o.cacheFrom, "cache-from", nil, "with --push: also reuse the layers of this image, or of :TAG in each image's repository, e.g. :main (repeatable; the destination tags are always read)")
	f.StringVarP(&o.output, "output", "o", "", "also write the result to oci:DIR (an OCI layout) or tar:FILE (docker load, one platform)")
	f.BoolVar(&o.json, "json", false, "print results as JSON on stdout, one object per image")
	f.StringVar(&o.digestFile, "digest-file", "", "write REF@DIGEST lines for every pushed reference to this file (for signing tools)")
	f.StringVar(&o.verify, "verify", "", "rebuild without writing anything and compare with the images at this reference (as --push names them); exit 1 naming the first difference")
}

// destinations are where images go (or, with --verify, are compared):
// one reference for append (single), a prefix for build.
func (o *outputOptions) destinations(single bool) sink.Destinations {
	target := o.push
	if o.verify != "" {
		target = o.verify
	}
	if single {
		return sink.Destinations{Ref: target, Tags: o.tags}
	}
	return sink.Destinations{Prefix: target, Tags: o.tags}
}

// paths are the host paths the outputs write, which no layer may take in.
func (o *outputOptions) paths() []string {
	if o.verify != "" {
		return nil
	}
	out := o.output
	if out == "" && o.push == "" {
		out = defaultOutput
	}
	if _, p, ok := strings.Cut(out, ":"); ok && p != "" && p != "-" {
		return []string{p}
	}
	return nil
}

// sinks turns --push and --output into sinks; with neither, the result goes
// to an OCI layout in ./gantry-out.
// toStdout reports whether the result itself goes to stdout (-o tar:-),
// which then carries nothing else.
func (o *outputOptions) toStdout() bool { return o.output == "tar:-" }

func (o *outputOptions) sinks(c *registry.Client, dest sink.Destinations, stdout io.Writer, log *slog.Logger) ([]assemble.Sink, error) {
	if o.verify != "" {
		if o.push != "" || o.output != "" {
			return nil, usagef("--verify compares and writes nothing: drop --push and --output")
		}
		return []assemble.Sink{sink.Verify(c, dest)}, nil
	}
	var sinks []assemble.Sink
	if o.push != "" {
		sinks = append(sinks, sink.Registry(c, dest, sink.CacheFrom(o.cacheFrom...), sink.CacheRepo(o.cacheRepo)))
	} else if len(o.cacheFrom) > 0 || o.cacheRepo != "" {
		log.Warn("--cache-from and --cache-repo have no effect without --push")
	}
	out := o.output
	if out == "" && o.push == "" {
		out = defaultOutput
		log.Info("no --push or --output: writing an OCI layout", "dir", strings.TrimPrefix(out, "oci:"))
	}
	if out != "" {
		kind, path, ok := strings.Cut(out, ":")
		switch {
		case !ok || path == "":
			return nil, usagef("--output %q: want oci:DIR or tar:FILE", out)
		case kind == "oci":
			sinks = append(sinks, sink.Layout(path, dest))
		case kind == "tar":
			sinks = append(sinks, sink.Tarball(path, stdout, dest))
		default:
			return nil, usagef("--output %q: want oci:DIR or tar:FILE", out)
		}
	}
	return sinks, nil
}

// report prints results: JSON objects with --json, else one reference per
// line (REF@DIGEST for pushed images); and the --digest-file.
func (o *outputOptions) report(w io.Writer, results []assemble.Result) error {
	if o.digestFile != "" {
		var b strings.Builder
		for _, r := range results {
			for _, ref := range r.References {
				if !strings.HasPrefix(ref, "oci:") && !strings.HasPrefix(ref, "tar:") {
					fmt.Fprintf(&b, "%s@%s\n", ref, r.Digest)
				}
			}
		}
		if err := os.WriteFile(o.digestFile, []byte(b.String()), 0o644); err != nil {
			return fmt.Errorf("--digest-file: %w", err)
		}
	}
	if o.json {
		enc := json.NewEncoder(w)
		for _, r := range results {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	for _, r := range results {
		for _, ref := range r.References {
			if strings.HasPrefix(ref, "oci:") || strings.HasPrefix(ref, "tar:") { // local: not REF@DIGEST
				fmt.Fprintf(w, "%s %s\n", ref, r.Digest)
				continue
			}
			fmt.Fprintf(w, "%s@%s\n", ref, r.Digest)
		}
	}
	return nil
}

// parseBases reads --base NAME=REF flags.
func parseBases(bases []string) (map[string]string, error) {
	over := map[string]string{}
	for _, b := range bases {
		n, ref, ok := strings.Cut(b, "=")
		if !ok || n == "" || ref == "" {
			return nil, usagef("--base %q: want NAME=REF", b)
		}
		over[n] = ref
	}
	return over, nil
}
