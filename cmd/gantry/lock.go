package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/gantry-dev/gantry/assemble"
)

func newLock(stdin io.Reader, stdout, stderr io.Writer, getenv env) *cobra.Command {
	var (
		c      common
		file   string
		bases  []string
		update bool
	)
	cmd := &cobra.Command{
		Use:   "lock [-f gantry.yaml] [--update]",
		Short: "Pin each image's base to its current digests in gantry.lock",
		Long: `Resolve each image's base to its index digest and per-platform digests and
write them to gantry.lock beside the config file. gantry build --locked then
builds exactly those bases, and fails if the lock is missing or stale, so a
CI build does not change when a tag such as nginx:alpine moves. Commit the
lock file; refresh it with --update.`,
		Example: `  gantry lock                 # create gantry.lock
  gantry lock --update        # refresh it
  gantry build --locked --push ghcr.io/acme`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			over, err := parseBases(bases)
			if err != nil {
				return err
			}
			specs, err := assemble.Load(file, getenv, assemble.LoadOptions{Bases: over})
			if err != nil {
				return err
			}
			lockFile := assemble.LockPath(file)
			if _, err := os.Stat(lockFile); err == nil && !update {
				return usagef("%s exists; pass --update to refresh it", lockFile)
			} else if err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			progress, err := newProgress(c.progress, c.quiet, stderr)
			if err != nil {
				return err
			}
			defer progress.Wait()
			e, err := c.engine(stdin, getenv, c.logger(progress.Writer()), progress)
			if err != nil {
				return err
			}
			lock, err := e.Lock(cmd.Context(), specs)
			if err != nil {
				return err
			}
			if err := lock.Write(lockFile); err != nil {
				return err
			}
			fmt.Fprintln(stdout, lockFile)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "gantry.yaml", "config file")
	f.StringArrayVar(&bases, "base", nil, "override an image's base: NAME=REF (repeatable)")
	f.BoolVar(&update, "update", false, "replace an existing lock file")
	c.registerRegistry(cmd)
	return cmd
}
