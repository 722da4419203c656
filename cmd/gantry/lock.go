package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/gantry-dev/gantry/assemble/spec"
	"github.com/spf13/cobra"
)

func (a *app) lockCmd() *cobra.Command {
	var (
		file     string
		bases    []string
		update   bool
		cacheDir string
	)
	cmd := &cobra.Command{
		Use:   "lock [-f gantry.yaml] [--update]",
		Short: "Pin each image's base to its current digests in gantry.lock",
		Long: `Resolve each image's base to its index digest and per-platform digests and
write them to gantry.lock beside the config file. gantry build --locked then
builds exactly those bases, and fails if the lock is missing or stale, so a
CI build does not change when a tag such as nginx:alpine moves. A debian:
layer's packages are pinned too, per platform (name, version, architecture,
sha256, and the Release file's digest), and --locked installs exactly those.
Commit the lock file; refresh it with --update.`,
		Example: `  gantry lock                 # create gantry.lock
  gantry lock --update        # refresh it
  gantry build --locked --push ghcr.io/acme`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			over, err := parseBases(bases)
			if err != nil {
				return err
			}
			specs, err := spec.LoadContext(cmd.Context(), file, a.getenv, spec.Options{Bases: over})
			if err != nil {
				return err
			}
			lockFile := spec.LockPath(file)
			if _, err := os.Stat(lockFile); err == nil && !update {
				return usagef("%s exists; pass --update to refresh it", lockFile)
			} else if err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			p, log, err := a.log.display(a.stderr)
			if err != nil {
				return err
			}
			defer p.Wait()
			e, _, err := a.engine(cacheDir, "", nil, log, p)
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
			fmt.Fprintln(a.stdout, lockFile)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "gantry.yaml", "config file")
	f.StringArrayVar(&bases, "base", nil, "override an image's base: NAME=REF (repeatable)")
	f.BoolVar(&update, "update", false, "replace an existing lock file")
	f.StringVar(&cacheDir, "cache-dir", "", "cache directory for the Debian indexes a debian: layer reads (default: $XDG_CACHE_HOME/gantry)")
	return cmd
}
