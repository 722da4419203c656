// Command gantry assembles OCI images without a Docker daemon: it appends
// layers made from local directories to a base image's every platform,
// rewrites the config, and pushes or writes the result. The commands only
// turn flags into a spec and options for package assemble, and report.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/gantry-dev/gantry/assemble"
	"github.com/gantry-dev/gantry/assemble/buildenv"
	"github.com/gantry-dev/gantry/assemble/progress"
	"github.com/gantry-dev/gantry/assemble/registry"
	"github.com/gantry-dev/gantry/assemble/sink"
	"github.com/gantry-dev/gantry/assemble/spec"
	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK       = 0
	exitBuild    = 1
	exitUsage    = 2
	exitRegistry = 3
	// exitInterrupt is what shells give a command killed by SIGINT.
	exitInterrupt = 130
)

func main() {
	// A build streams its layers: what stays on the heap is what it keeps
	// for the image (entries, file lists, the SBOM). Collecting at 50%
	// growth rather than Go's default 100% keeps a 400 MB, 9k-file build
	// under 64 MB resident for ~2% more CPU, and scales with the input (a
	// memory limit would make a 100k-file build collect without pause).
	// GOGC in the environment still decides.
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(50)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	os.Exit(code)
}

// env looks up environment variables (os.LookupEnv, or a map in tests).
type env func(string) (string, bool)

func (e env) get(k string) string { v, _ := e(k); return v }

// app is one invocation: its inputs and outputs, and the flags every
// command shares.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         env
	log            logOptions
	registry       registryOptions
}

// run is the whole CLI, with its inputs and outputs passed in.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv env) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := a.root()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "gantry: error:", err)
	if ctx.Err() != nil { // Ctrl-C or SIGTERM
		return exitInterrupt
	}
	return exitCode(err)
}

// usageError is a mistake on the command line.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func exitCode(err error) int {
	var ue usageError
	var ce *spec.ConfigError
	var re *registry.Error
	switch {
	case errors.As(err, &ue), errors.As(err, &ce):
		return exitUsage
	case errors.As(err, &re):
		return exitRegistry
	}
	return exitBuild
}

func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "gantry",
		Short: "Assemble container images from directories, without a Docker daemon",
		Long: `gantry builds container images the way crane and ko do: it reads a base
image's manifests from a registry or an OCI layout, appends layers made from
local directories to every platform of the base, rewrites the image config
(user, env, ports, volumes, healthcheck, ...), and pushes the result or writes
it as an OCI layout or a docker-loadable tarball. No daemon, no RUN, no root.

Environment: DOCKER_CONFIG (registry credentials, as docker), SOURCE_DATE_EPOCH
(every mtime and the created time), XDG_CACHE_HOME (the layer cache),
GANTRY_REGISTRY_USER, GANTRY_REGISTRY_PASSWORD and GANTRY_REGISTRY (credentials
for one registry), GANTRY_REGISTRY_TIMEOUT (see --registry-timeout).

Exit codes: 0 success, 1 build error, 2 usage or config error, 3 registry
error, 130 interrupted.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version(),
		// an unknown command is a usage error (exit 2), not a build error
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for gantry (see gantry --help)", args[0])
			}
			return cmd.Help()
		},
	}
	root.SetVersionTemplate("gantry {{.Version}}\n")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see gantry %s --help)", err, c.Name())}
	})
	a.log.add(root.PersistentFlags())
	a.registry.add(root.PersistentFlags())
	root.AddCommand(a.buildCmd(), a.appendCmd(), a.lockCmd(), a.loginCmd(), a.logoutCmd(), a.kubeCmd(), a.resolveCmd(), a.sbomCmd(), a.versionCmd())
	return root
}

// engine makes the registry client and the engine for a command; push is
// the push destination, if any.
func (a *app) engine(cacheDir, push string, outputs []string, log *slog.Logger, p progress.Progress) (*assemble.Engine, *registry.Client, error) {
	epoch, err := spec.EpochFromEnv(a.getenv.get)
	if err != nil {
		return nil, nil, usageError{err}
	}
	c, err := a.registry.client(a.stdin, a.getenv, push, log, p)
	if err != nil {
		return nil, nil, err
	}
	run := buildenv.ReadRun(a.getenv.get)
	e, err := assemble.NewEngine(assemble.Options{
		CacheDir: cacheDir, Registry: c, Epoch: epoch, Logger: log, Progress: p, Outputs: outputs,
		Attest: assemble.AttestOptions{Version: version(), BuilderID: run.BuilderID, InvocationID: run.InvocationID},
	})
	return e, c, err
}

// runBuild is what build and append share once they have their specs.
func (a *app) runBuild(ctx context.Context, o *imageOptions, specs []spec.ImageSpec, dest sink.Destinations) error {
	results, err := a.build(ctx, o, specs, dest)
	if err != nil {
		return err
	}
	out := &o.output
	report := a.stdout
	if out.toStdout() {
		report = a.stderr // stdout holds the tarball
	}
	return out.report(report, results)
}

// build builds specs and writes them where o says (build, append, and the
// commands that deploy what they build), and returns what it wrote.
func (a *app) build(ctx context.Context, o *imageOptions, specs []spec.ImageSpec, dest sink.Destinations) ([]assemble.Result, error) {
	out := &o.output
	p, log, err := a.log.display(a.stderr)
	if err != nil {
		return nil, err
	}
	defer p.Wait()
	target := out.push
	if out.verify != "" {
		target = out.verify // credentials for --registry-user are for its registry
	}
	e, c, err := a.engine(o.build.cacheDir, target, out.paths(), log, p)
	if err != nil {
		return nil, err
	}
	defer c.CloseIdleConnections()
	sinks, err := out.sinks(c, dest, a.stdout, log)
	if err != nil {
		return nil, err
	}
	return e.Run(ctx, specs, sinks...)
}
