package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/gantry-dev/gantry/assemble"
	"github.com/gantry-dev/gantry/layers"
	"github.com/gantry-dev/gantry/manifests"
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
}

func (c *common) register(cmd *cobra.Command, pushHelp string) {
	f := cmd.Flags()
	f.StringVar(&c.platform, "platform", "", "platforms to build: all, or a comma-separated list of os/arch[/variant] (default: every platform of the base)")
	f.StringVar(&c.push, "push", "", pushHelp)
	f.StringArrayVarP(&c.tags, "tag", "t", nil, "tag to write (repeatable; default: the config's tags, else latest)")
	f.StringVarP(&c.output, "output", "o", "", "also write the result to oci:DIR (an OCI layout) or tar:FILE (docker load, one platform)")
	f.BoolVar(&c.insecure, "insecure", false, "allow plain HTTP and unverified TLS registries (localhost is always allowed HTTP)")
	f.BoolVar(&c.json, "json", false, "print results as JSON on stdout, one object per image")
	f.StringVar(&c.cacheDir, "cache-dir", "", "layer cache directory (default: $XDG_CACHE_HOME/gantry)")
	f.StringVar(&c.compression, "compression", "", "layer compression: gzip (default) or zstd (writes OCI media types)")
	f.IntVar(&c.level, "compression-level", 0, "compression level (gzip 1-9, zstd 1-4; default 1)")
	f.IntVar(&c.jobs, "jobs", 8, "concurrent uploads")
	f.BoolVarP(&c.verbose, "verbose", "v", false, "log more detail to stderr")
	f.BoolVarP(&c.quiet, "quiet", "q", false, "log only warnings and errors")
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

func (c *common) logger(stderr io.Writer) *slog.Logger {
	level := slog.LevelInfo
	switch {
	case c.quiet:
		level = slog.LevelWarn
	case c.verbose:
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level, ReplaceAttr: dropTime}))
}

func dropTime(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 {
		return slog.Attr{}
	}
	return a
}

func (c *common) engine(getenv env, log *slog.Logger) (*assemble.Engine, error) {
	epoch, err := assemble.EpochFromEnv(getenv.get)
	if err != nil {
		return nil, usageError{err}
	}
	return assemble.NewEngine(assemble.Options{
		CacheDir: c.cacheDir, Insecure: c.insecure, Jobs: c.jobs, Epoch: epoch, Logger: log,
		UserAgent: "gantry/" + version(),
	})
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
func (c *common) runBuild(ctx context.Context, stdout, stderr io.Writer, getenv env, specs []assemble.ImageSpec, dest assemble.Destinations) error {
	log := c.logger(stderr)
	e, err := c.engine(getenv, log)
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
	return c.report(stdout, results)
}
