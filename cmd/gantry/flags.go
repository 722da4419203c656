package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/gantry-dev/gantry/assemble"
	"github.com/gantry-dev/gantry/layers"
	"github.com/gantry-dev/gantry/manifests"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
)

// defaultOutput is where a build with neither --push nor --output goes.
const defaultOutput = "oci:gantry-out"

// common holds the flags build and append share; each means the same in
// both.
type common struct {
	platform    string
	push        string
	tags        []string
	output      string
	insecure    bool
	json        bool
	cacheDir    string
	compression string
	level       int
	jobs        int
	verbose     bool
	quiet       bool
	progress    string
	caCert      string
	mirrors     []string
	regUser     string
	regPwStdin  bool
	registry    string
	digestFile  string
	relax       assemble.Relax
	maxLayers   int
}

func (c *common) register(cmd *cobra.Command, pushHelp string) {
	f := cmd.Flags()
	f.StringVar(&c.platform, "platform", "", "platforms to build: all, or a comma-separated list of os/arch[/variant] (default: every platform of the base)")
	f.StringVar(&c.push, "push", "", pushHelp)
	f.StringArrayVarP(&c.tags, "tag", "t", nil, "tag to write (repeatable; default: the config's tags, else latest)")
	f.StringVarP(&c.output, "output", "o", "", "also write the result to oci:DIR (an OCI layout) or tar:FILE (docker load, one platform)")
	f.BoolVar(&c.json, "json", false, "print results as JSON on stdout, one object per image")
	f.StringVar(&c.cacheDir, "cache-dir", "", "layer cache directory (default: $XDG_CACHE_HOME/gantry)")
	f.StringVar(&c.compression, "compression", "", "layer compression: gzip (default) or zstd (writes OCI media types)")
	f.IntVar(&c.level, "compression-level", 0, "compression level (gzip 1-9, zstd 1-4; default 1)")
	f.IntVar(&c.jobs, "jobs", 8, "concurrent uploads")
	f.StringVar(&c.digestFile, "digest-file", "", "write REF@DIGEST lines for every pushed reference to this file (for signing tools)")
	f.BoolVar(&c.relax.AllowRoot, "allow-root", false, "allow an image that runs as root")
	f.StringArrayVar(&c.relax.AllowSecrets, "allow-secret", nil, "allow this env key to carry a secret-looking value (repeatable)")
	f.StringArrayVar(&c.relax.AllowSecretFiles, "allow-secret-file", nil, "allow files matching this pattern that look like secrets, e.g. certs/*.pem (repeatable)")
	f.BoolVar(&c.relax.AllowWorldWritable, "allow-world-writable", false, "allow world-writable files in new layers")
	f.BoolVar(&c.relax.AllowSetuid, "allow-setuid", false, "allow setuid/setgid files in new layers")
	f.IntVar(&c.maxLayers, "max-layers", 0, "fail if an image has more layers than this (0: the config's maxLayers, else no limit)")
	c.registerRegistry(cmd)
}

// registerRegistry adds the flags of every command that talks to registries.
func (c *common) registerRegistry(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&c.insecure, "insecure", false, "allow plain HTTP and unverified TLS registries (localhost is always allowed HTTP)")
	f.StringVar(&c.caCert, "ca-cert", "", "PEM file of extra CA certificates to trust (a private registry's CA)")
	f.StringArrayVar(&c.mirrors, "mirror", nil, "pull bases of REGISTRY through MIRROR: REGISTRY=HOST[/prefix], e.g. docker.io=mirror.local:5000 (repeatable)")
	f.StringVar(&c.regUser, "registry-user", "", "user name for --registry (default registry: the push destination's); or GANTRY_REGISTRY_USER")
	f.BoolVar(&c.regPwStdin, "registry-password-stdin", false, "read the --registry-user password or token from stdin; or GANTRY_REGISTRY_PASSWORD")
	f.StringVar(&c.registry, "registry", "", "registry the --registry-user credentials are for; or GANTRY_REGISTRY")
	f.BoolVarP(&c.verbose, "verbose", "v", false, "log more detail to stderr, including each HTTP exchange (secrets redacted)")
	f.BoolVarP(&c.quiet, "quiet", "q", false, "print no progress, only warnings and errors")
	f.StringVar(&c.progress, "progress", "auto", "progress on stderr: auto (bars on a terminal, else plain), tty, plain or none")
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

func (c *common) platforms() (plats []v1.Platform, all bool, err error) {
	if c.platform == "" {
		return nil, false, nil
	}
	if c.platform == "all" {
		return nil, true, nil
	}
	for _, p := range strings.Split(c.platform, ",") {
		pl, err := manifests.ParsePlatform(strings.TrimSpace(p))
		if err != nil {
			return nil, false, usagef("--platform: %v", err)
		}
		plats = append(plats, pl)
	}
	return plats, false, nil
}

func (c *common) compressionOverride() (*layers.Compression, error) {
	if c.compression == "" && c.level == 0 {
		return nil, nil
	}
	comp, err := layers.Compression{Algorithm: c.compression, Level: c.level}.Normalize()
	if err != nil {
		return nil, usagef("--compression: %v", err)
	}
	return &comp, nil
}

func (c *common) logger(w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	switch {
	case c.quiet:
		level = slog.LevelWarn
	case c.verbose:
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: dropTime}))
}

func dropTime(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 {
		return slog.Attr{}
	}
	return a
}

func (c *common) engine(stdin io.Reader, getenv env, log *slog.Logger, progress assemble.Progress) (*assemble.Engine, error) {
	epoch, err := assemble.EpochFromEnv(getenv.get)
	if err != nil {
		return nil, usageError{err}
	}
	mirrors := map[string]string{}
	for _, m := range c.mirrors {
		reg, host, ok := strings.Cut(m, "=")
		if !ok || reg == "" || host == "" {
			return nil, usagef("--mirror %q: want REGISTRY=HOST[/prefix], e.g. docker.io=mirror.local:5000", m)
		}
		mirrors[reg] = host
	}
	creds, err := c.credentials(stdin, getenv)
	if err != nil {
		return nil, err
	}
	return assemble.NewEngine(assemble.Options{
		CacheDir: c.cacheDir, Insecure: c.insecure, Jobs: c.jobs, Epoch: epoch, Logger: log,
		UserAgent: "gantry/" + version(), CACert: c.caCert, Mirrors: mirrors, Credentials: creds,
		Progress: progress,
	})
}

// credentials reads --registry-user and its password (stdin), or
// GANTRY_REGISTRY_USER and GANTRY_REGISTRY_PASSWORD. They are for --registry
// (or GANTRY_REGISTRY), else for the push destination's registry.
func (c *common) credentials(stdin io.Reader, getenv env) (*assemble.Credentials, error) {
	user, password, reg := c.regUser, "", c.registry
	if user == "" {
		user = getenv.get("GANTRY_REGISTRY_USER")
	}
	if reg == "" {
		reg = getenv.get("GANTRY_REGISTRY")
	}
	switch {
	case c.regPwStdin:
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
		dest := c.push
		if dest == "" {
			return nil, usagef("--registry-user: name the registry with --registry (or GANTRY_REGISTRY), or push with --push")
		}
		reg = registryOf(dest)
	}
	return &assemble.Credentials{Registry: reg, Username: user, Password: password}, nil
}

// registryOf is the registry host of a reference or prefix, by Docker's
// rule: a first part with a dot or a colon, or localhost, is a host.
func registryOf(ref string) string {
	first, _, _ := strings.Cut(ref, "/")
	if strings.ContainsAny(first, ".:") || first == "localhost" {
		return first
	}
	return name.DefaultRegistry
}

// sinks turns --push and --output into sinks; with neither, the result goes
// to an OCI layout in ./gantry-out.
func (c *common) sinks(e *assemble.Engine, dest assemble.Destinations, log *slog.Logger) ([]assemble.Sink, error) {
	var sinks []assemble.Sink
	if c.push != "" {
		sinks = append(sinks, e.RegistrySink(dest))
	}
	out := c.output
	if out == "" && c.push == "" {
		out = defaultOutput
		log.Info("no --push or --output: writing an OCI layout", "dir", strings.TrimPrefix(out, "oci:"))
	}
	if out != "" {
		kind, path, ok := strings.Cut(out, ":")
		switch {
		case !ok || path == "":
			return nil, usagef("--output %q: want oci:DIR or tar:FILE", out)
		case kind == "oci":
			sinks = append(sinks, assemble.LayoutSink(path, dest))
		case kind == "tar":
			sinks = append(sinks, assemble.TarballSink(path, dest))
		default:
			return nil, usagef("--output %q: want oci:DIR or tar:FILE", out)
		}
	}
	return sinks, nil
}

// report prints results: JSON objects with --json, else one reference per
// line (REF@DIGEST for pushed images).
func (c *common) report(w io.Writer, results []assemble.Result) error {
	if c.json {
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
			if strings.HasPrefix(ref, "oci:") {
				fmt.Fprintf(w, "%s %s\n", ref, r.Digest)
				continue
			}
			fmt.Fprintf(w, "%s@%s\n", ref, r.Digest)
		}
	}
	return nil
}

// runBuild is the part build and append share.
func (c *common) runBuild(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, getenv env, specs []assemble.ImageSpec, dest assemble.Destinations) error {
	progress, err := newProgress(c.progress, c.quiet, stderr)
	if err != nil {
		return err
	}
	defer progress.Wait()
	log := c.logger(progress.Writer())
	e, err := c.engine(stdin, getenv, log, progress)
	if err != nil {
		return err
	}
	sinks, err := c.sinks(e, dest, log)
	if err != nil {
		return err
	}
	results, err := e.Run(ctx, specs, sinks...)
	if err != nil {
		return err
	}
	if c.digestFile != "" {
		var b strings.Builder
		for _, r := range results {
			for _, ref := range r.References {
				if !strings.HasPrefix(ref, "oci:") && !strings.HasPrefix(ref, "tar:") {
					fmt.Fprintf(&b, "%s@%s\n", ref, r.Digest)
				}
			}
		}
		if err := os.WriteFile(c.digestFile, []byte(b.String()), 0o644); err != nil {
			return fmt.Errorf("--digest-file: %w", err)
		}
	}
	return c.report(stdout, results)
}
