package main

import (
	"path/filepath"

	"github.com/gantry-dev/gantry/assemble/buildenv"
	"github.com/gantry-dev/gantry/assemble/sink"
	"github.com/gantry-dev/gantry/assemble/spec"
	"github.com/spf13/cobra"
)

func (a *app) buildCmd() *cobra.Command {
	var (
		o      imageOptions
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
			so, err := o.spec()
			if err != nil {
				return err
			}
			so.Images = images
			so.Annotations = buildenv.Read(cmd.Context(), filepath.Dir(file), a.getenv.get).Annotations()
			if so.Bases, err = parseBases(bases); err != nil {
				return err
			}
			specs, err := spec.LoadContext(cmd.Context(), file, a.getenv, so)
			if err != nil {
				return err
			}
			if locked {
				lockFile := spec.LockPath(file)
				lock, err := spec.ReadLock(lockFile)
				if err != nil {
					return usageError{err}
				}
				if err := spec.ApplyLock(specs, lock, lockFile); err != nil {
					return usageError{err}
				}
			}
			return a.runBuild(cmd.Context(), &o, specs, sink.Destinations{Prefix: o.output.push, Tags: o.output.tags})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "gantry.yaml", "config file")
	f.StringArrayVar(&images, "image", nil, "build only this image (repeatable)")
	f.StringArrayVar(&bases, "base", nil, "override an image's base: NAME=REF (repeatable), e.g. to use a mirror")
	f.BoolVar(&locked, "locked", false, "build the bases (and Debian packages) pinned in gantry.lock (see gantry lock); fail if it is missing or stale")
	o.add(f, "push each image to PREFIX/NAME:TAG, e.g. ghcr.io/acme")
	return cmd
}
