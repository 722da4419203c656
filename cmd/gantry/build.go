package main

import (
	"io"

	"github.com/gantry-dev/gantry/assemble"
	"github.com/spf13/cobra"
)

func newBuild(stdin io.Reader, stdout, stderr io.Writer, getenv env) *cobra.Command {
	var (
		c      common
		file   string
		images []string
		bases  []string
		locked bool
	)
	cmd := &cobra.Command{
		Use:   "build [-f gantry.yaml]",
		Short: "Build the images described in gantry.yaml",
		Long: `Build the images described in a config file (default ./gantry.yaml).

Each image's new layers are appended to every platform of its base (or those
--platform picks) and the result is pushed with --push, written with
--output, or, with neither, written as an OCI layout to ./gantry-out.`,
		Example: `  # Build every image of the file into ./gantry-out (an OCI layout)
  gantry build -f gantry.yaml

  # Push to a registry as PREFIX/NAME:TAG
  gantry build --push ghcr.io/acme --tag v1.2.0 --tag latest

  # CI: pull the base through a mirror, build one image, print JSON
  gantry build --image web --base web=mirror.local/library/nginx:alpine --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			plats, all, err := c.platforms()
			if err != nil {
				return err
			}
			comp, err := c.compressionOverride()
			if err != nil {
				return err
			}
			over, err := parseBases(bases)
			if err != nil {
				return err
			}
			specs, err := assemble.Load(file, getenv, assemble.LoadOptions{
				Images: images, Bases: over, Platforms: plats, AllPlatforms: all, Compression: comp, Relax: c.relax,
			})
			if err != nil {
				return err
			}
			for i := range specs {
				if c.maxLayers > 0 {
					specs[i].Policy.MaxLayers = c.maxLayers
				}
			}
			if locked {
				lockFile := assemble.LockPath(file)
				lock, err := assemble.ReadLock(lockFile)
				if err != nil {
					return usageError{err}
				}
				if err := assemble.ApplyLock(specs, lock, lockFile); err != nil {
					return usageError{err}
				}
			}
			return c.runBuild(cmd.Context(), stdin, stdout, stderr, getenv, specs, assemble.Destinations{Prefix: c.push, Tags: c.tags})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "gantry.yaml", "config file")
	f.StringArrayVar(&images, "image", nil, "build only this image (repeatable)")
	f.StringArrayVar(&bases, "base", nil, "override an image's base: NAME=REF (repeatable), e.g. to use a mirror")
	f.BoolVar(&locked, "locked", false, "build the bases pinned in gantry.lock (see gantry lock); fail if it is missing or stale")
	c.register(cmd, "push each image to PREFIX/NAME:TAG, e.g. ghcr.io/acme")
	return cmd
}
