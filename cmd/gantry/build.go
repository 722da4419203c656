package main

import (
	"context"
	"path/filepath"

	"github.com/gantry-dev/gantry/assemble/buildenv"
	"github.com/gantry-dev/gantry/assemble/spec"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func (a *app) buildCmd() *cobra.Command {
	var (
		o  imageOptions
		fo fileOptions
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
			specs, err := fo.load(cmd.Context(), a.getenv, &o)
			if err != nil {
				return err
			}
			return a.runBuild(cmd.Context(), &o, specs, o.output.destinations(false))
		},
	}
	f := cmd.Flags()
	fo.add(f)
	o.add(f, "push each image to PREFIX/NAME:TAG, e.g. ghcr.io/acme")
	return cmd
}

// fileOptions pick the config file and its images, for the commands that
// build from one (build, resolve, kube).
type fileOptions struct {
	file   string
	images []string
	bases  []string
	locked bool
}

func (fo *fileOptions) add(f *pflag.FlagSet) {
	f.StringVarP(&fo.file, "file", "f", "gantry.yaml", "config file")
	f.StringArrayVar(&fo.images, "image", nil, "build only this image (repeatable)")
	f.StringArrayVar(&fo.bases, "base", nil, "override an image's base: NAME=REF (repeatable), e.g. to use a mirror")
	f.BoolVar(&fo.locked, "locked", false, "build the bases (and Debian packages) pinned in gantry.lock (see gantry lock); fail if it is missing or stale")
}

// load reads the config file's specs with the command line's changes.
func (fo *fileOptions) load(ctx context.Context, getenv env, o *imageOptions) ([]spec.ImageSpec, error) {
	so, err := o.spec()
	if err != nil {
		return nil, err
	}
	so.Images = fo.images
	so.Annotations = buildenv.Read(ctx, filepath.Dir(fo.file), getenv.get).Annotations()
	if so.Bases, err = parseBases(fo.bases); err != nil {
		return nil, err
	}
	specs, err := spec.LoadContext(ctx, fo.file, getenv, so)
	if err != nil {
		return nil, err
	}
	if fo.locked {
		lockFile := spec.LockPath(fo.file)
		lock, err := spec.ReadLock(lockFile)
		if err != nil {
			return nil, usageError{err}
		}
		if err := spec.ApplyLock(specs, lock, lockFile); err != nil {
			return nil, usageError{err}
		}
	}
	return specs, nil
}
