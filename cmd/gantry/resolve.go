package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/gantry-dev/gantry/assemble/sink"
	"github.com/gantry-dev/gantry/assemble/spec"
	"github.com/gantry-dev/gantry/deploy"
	"github.com/spf13/cobra"
)

func (a *app) resolveCmd() *cobra.Command {
	var (
		o         imageOptions
		fo        fileOptions
		manifests []string
		write     bool
	)
	cmd := &cobra.Command{
		Use:   "resolve [-f gantry.yaml] --push PREFIX --manifests DIR|FILE...",
		Short: "Build and push the images that manifests name as gantry://NAME, and print the manifests with their digests",
		Long: `Build and push, as gantry build does, the images of gantry.yaml that the given
Kubernetes or compose YAML files name as gantry://NAME (ko's ko:// convention;
any string value, such as image: gantry://web), then print the files with each
of them replaced by the pushed REGISTRY/REPO@sha256:... (the index digest).
Every other byte stays as it was: comments, key order, documents.

Directories are read for *.yaml and *.yml files. A name that gantry.yaml does
not have is an error naming the file and line, before anything is built.
--write changes the files in place (each replaced atomically) instead of
printing them; --json prints what was replaced (file, line, name, image), one
object per line, instead of the YAML.`,
		Example: `  gantry resolve -f gantry.yaml --push ghcr.io/acme --manifests k8s/ | kubectl apply -f -
  gantry resolve --push ghcr.io/acme --manifests deploy.yaml --write --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(manifests) == 0 {
				return usagef("give the YAML to resolve with --manifests DIR|FILE")
			}
			if o.output.push == "" {
				return usagef("gantry resolve pushes the images it puts in the manifests: give --push PREFIX")
			}
			if o.output.toStdout() {
				return usagef("--output tar:- would mix the tarball with the manifests on stdout; write it to a file")
			}
			ms, err := deploy.ReadManifests(manifests)
			if err != nil {
				return usageError{err}
			}
			images, err := a.resolveBuild(cmd, &o, &fo, ms)
			if err != nil {
				return err
			}
			return a.resolveWrite(ms, images, write, o.output.json)
		},
	}
	f := cmd.Flags()
	fo.add(f)
	f.StringArrayVarP(&manifests, "manifests", "m", nil, "a YAML file, or a directory of them, to resolve (repeatable)")
	f.BoolVarP(&write, "write", "w", false, "replace the files in place instead of printing them")
	o.add(f, "push each image to PREFIX/NAME:TAG, e.g. ghcr.io/acme (required)")
	return cmd
}

// resolveBuild checks the manifests' names against the config file, builds
// and pushes the images they name (or those --image picks), and returns
// each name's REPO@DIGEST.
func (a *app) resolveBuild(cmd *cobra.Command, o *imageOptions, fo *fileOptions, ms []*deploy.Manifest) (map[string]string, error) {
	all := *fo
	all.images = nil
	specs, err := all.load(cmd.Context(), a.getenv, o)
	if err != nil {
		return nil, err
	}
	var known []string
	for _, s := range specs {
		known = append(known, s.Name)
	}
	if err := deploy.CheckNames(ms, known, fo.file); err != nil {
		return nil, usageError{err}
	}
	want := fo.images
	if len(want) == 0 {
		want = deploy.Names(ms)
	}
	var picked []spec.ImageSpec
	for _, s := range specs {
		if slices.Contains(want, s.Name) {
			picked = append(picked, s)
		}
	}
	for _, n := range deploy.Names(ms) {
		if !slices.Contains(want, n) {
			return nil, usagef("the manifests name %s%s, which --image leaves out; add --image %s", deploy.Scheme, n, n)
		}
	}
	if len(picked) == 0 {
		return nil, usagef("the manifests name no image as %sNAME and --image picks none: nothing to build", deploy.Scheme)
	}
	results, err := a.build(cmd.Context(), o, picked, sink.Destinations{Prefix: o.output.push, Tags: o.output.tags})
	if err != nil {
		return nil, err
	}
	if err := o.output.report(io.Discard, results); err != nil { // --digest-file
		return nil, err
	}
	images := map[string]string{}
	for _, r := range results {
		ref := deploy.DigestRef(r.References, r.Digest)
		if ref == "" {
			return nil, fmt.Errorf("image %s: the build reported no pushed reference", r.Name)
		}
		images[r.Name] = ref
	}
	return images, nil
}

// resolveWrite replaces the references and prints the manifests, or
// writes them in place (each file only once every file has resolved) and
// prints FILE:LINE NAME IMAGE per replacement; with asJSON it prints the
// replacements as JSON instead.
func (a *app) resolveWrite(ms []*deploy.Manifest, images map[string]string, write, asJSON bool) error {
	var reps []deploy.Replacement
	resolved := make([][]byte, len(ms))
	for i, m := range ms {
		data, r, err := m.Resolve(images)
		if err != nil {
			return err
		}
		resolved[i] = data
		reps = append(reps, r...)
	}
	if write {
		for i, m := range ms {
			if len(m.Refs) > 0 {
				if err := deploy.WriteFile(m.Path, resolved[i]); err != nil {
					return err
				}
			}
		}
	}
	switch {
	case asJSON:
		enc := json.NewEncoder(a.stdout)
		for _, r := range reps {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
	case write:
		for _, r := range reps {
			fmt.Fprintf(a.stdout, "%s:%d %s%s %s\n", r.File, r.Line, deploy.Scheme, r.Name, r.Image)
		}
	default:
		_, err := a.stdout.Write(joinDocuments(resolved))
		return err
	}
	return nil
}

// joinDocuments is one YAML stream of files' streams: a --- between two
// (unless the second starts with its own), each ending in a line break.
func joinDocuments(files [][]byte) []byte {
	var out bytes.Buffer
	for i, data := range files {
		if i > 0 {
			if b := out.Bytes(); len(b) > 0 && b[len(b)-1] != '\n' {
				out.WriteByte('\n')
			}
			if !bytes.HasPrefix(data, []byte("---")) {
				out.WriteString("---\n")
			}
		}
		out.Write(data)
	}
	return out.Bytes()
}
