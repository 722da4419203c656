package main

import (
	"fmt"
	"io"
	"slices"

	"github.com/gantry-dev/gantry/assemble/sink"
	"github.com/gantry-dev/gantry/deploy"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func (a *app) kubeCmd() *cobra.Command {
	var (
		o      imageOptions
		fo     fileOptions
		pods   []string
		repo   string
		format string
	)
	cmd := &cobra.Command{
		Use:   "kube [-f gantry.yaml] [--pod NAME=IMAGE,IMAGE]...",
		Short: "Print Kubernetes manifests (or a compose file) for the images of gantry.yaml",
		Long: `Print ready-to-apply manifests for the images of a config file: a Deployment
and a Service per image (or per --pod, whose images run as containers of one
Pod), with probes from the healthcheck (httpGet for a GET on localhost, else
exec), the user as securityContext with a read-only root filesystem and an
emptyDir for every volume and owned directory, the env, the runtime settings
from a Secret per image (its template is in the comments), and the ports.

With --push the images are built and pushed first, and the manifests name
them by digest; otherwise by tag (PREFIX/NAME:TAG with --repo).
--format compose prints a compose file instead.`,
		Example: `  # TaskFlow's frontend and backend in one Pod
  gantry kube -f testdata/taskflow/gantry.yaml --pod taskflow=taskflow-frontend,taskflow-backend

  # Build, push, and name the images by digest
  gantry kube --push ghcr.io/acme --pod taskflow=taskflow-frontend,taskflow-backend | kubectl apply -f -

  # A compose file instead
  gantry kube --format compose --repo ghcr.io/acme > compose.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ps []deploy.Pod
			for _, s := range pods {
				p, err := deploy.ParsePod(s)
				if err != nil {
					return usageError{err}
				}
				ps = append(ps, p)
			}
			if format != "kube" && format != "compose" {
				return usagef("--format %q: want kube or compose", format)
			}
			if repo != "" && o.output.push != "" {
				return usagef("--repo and --push exclude each other: --push names the images by the digests it pushes")
			}
			images, err := a.deployImages(cmd, &o, &fo, repo)
			if err != nil {
				return err
			}
			groups, err := deploy.Groups(images, ps)
			if err != nil {
				return usageError{err}
			}
			if format == "compose" {
				return deploy.Compose(a.stdout, groups)
			}
			return deploy.Kube(a.stdout, groups)
		},
	}
	f := cmd.Flags()
	fo.add(f)
	f.StringArrayVar(&pods, "pod", nil, "run these images as containers of one Pod: NAME=IMAGE,IMAGE (repeatable)")
	f.StringVar(&repo, "repo", "", "name the images PREFIX/NAME:TAG without building them")
	f.StringVar(&format, "format", "kube", "what to print: kube (Deployments and Services) or compose (a compose file)")
	// build's groups, but --format here is what to print: the manifest
	// format stays the config file's
	build := pflag.NewFlagSet("build", pflag.ContinueOnError)
	o.add(build, "build and push each image to PREFIX/NAME:TAG first, and name it by digest")
	build.VisitAll(func(fl *pflag.Flag) {
		if fl.Name != "format" && fl.Name != "json" && fl.Name != "output" {
			f.AddFlag(fl)
		}
	})
	f.Lookup("image").Usage = "only this image (repeatable)"
	return cmd
}

// deployImages are the images of the config file with the references to
// run them by: built and pushed, by digest, with --push; else by tag.
func (a *app) deployImages(cmd *cobra.Command, o *imageOptions, fo *fileOptions, repo string) ([]deploy.Image, error) {
	specs, err := fo.load(cmd.Context(), a.getenv, o)
	if err != nil {
		return nil, err
	}
	if len(o.output.tags) > 0 {
		for i := range specs {
			specs[i].Tags = o.output.tags
		}
	}
	images := make([]deploy.Image, len(specs))
	for i, s := range specs {
		images[i] = deploy.Image{Spec: s, Ref: deploy.TagRef(repo, s)}
	}
	if o.output.push == "" {
		return images, nil
	}
	results, err := a.build(cmd.Context(), o, specs, sink.Destinations{Prefix: o.output.push, Tags: o.output.tags})
	if err != nil {
		return nil, err
	}
	if err := o.output.report(io.Discard, results); err != nil { // --digest-file
		return nil, err
	}
	for _, r := range results {
		i := slices.IndexFunc(images, func(im deploy.Image) bool { return im.Spec.Name == r.Name })
		ref := deploy.DigestRef(r.References, r.Digest)
		if i < 0 || ref == "" {
			return nil, fmt.Errorf("image %s: the build reported no pushed reference", r.Name)
		}
		images[i].Ref = ref
	}
	return images, nil
}
