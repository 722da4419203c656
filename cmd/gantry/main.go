// Command gantry assembles OCI images without a Docker daemon: it appends
// layers made from local directories to a base image's every platform,
// rewrites the config, and pushes or writes the result.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/gantry-dev/gantry/assemble"
	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK       = 0
	exitBuild    = 1
	exitUsage    = 2
	exitRegistry = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	os.Exit(code)
}

// env looks up environment variables (os.LookupEnv, or a map in tests).
type env func(string) (string, bool)

func (e env) get(k string) string { v, _ := e(k); return v }

// run is the whole CLI, with its inputs and outputs passed in.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv env) int {
	root := newRoot(stdin, stdout, stderr, getenv)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "gantry: error:", err)
	return exitCode(err)
}

// usageError is a mistake on the command line.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func exitCode(err error) int {
	var ue usageError
	var ce *assemble.ConfigError
	var re *assemble.RegistryError
	switch {
	case errors.As(err, &ue), errors.As(err, &ce):
		return exitUsage
	case errors.As(err, &re):
		return exitRegistry
	}
	return exitBuild
}

func newRoot(stdin io.Reader, stdout, stderr io.Writer, getenv env) *cobra.Command {
	root := &cobra.Command{
		Use:   "gantry",
		Short: "Assemble container images from directories, without a Docker daemon",
		Long: `gantry builds container images the way crane and ko do: it reads a base
image's manifests from a registry or an OCI layout, appends layers made from
local directories to every platform of the base, rewrites the image config
(user, env, ports, volumes, healthcheck, ...), and pushes the result or writes
it as an OCI layout or a docker-loadable tarball. No daemon, no RUN, no root.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see gantry %s --help)", err, c.Name())}
	})
	root.AddCommand(newBuild(stdin, stdout, stderr, getenv), newAppend(stdin, stdout, stderr, getenv),
		newLock(stdin, stdout, stderr, getenv), newLogin(stdin, stdout, stderr, getenv), newLogout(stderr, getenv), newVersion(stdout))
	return root
}
