package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"

	"github.com/gantry-dev/gantry/assemble/attest"
	"github.com/gantry-dev/gantry/assemble/registry"
	"github.com/gantry-dev/gantry/manifests"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
)

func (a *app) sbomCmd() *cobra.Command {
	var platform string
	cmd := &cobra.Command{
		Use:   "sbom REF|oci:DIR[:NAME:TAG]",
		Short: "Print the SPDX SBOM attached to an image",
		Long: `Print the SPDX 2.3 JSON SBOM gantry attached to an image as an OCI referrer
(found through the registry's referrers API or the sha256-<digest> tag), or
listed beside it in an OCI layout gantry wrote (--output oci:DIR).
For an index, --platform picks the image (default: the only one, else
linux/<this machine's architecture>).`,
		Example: `  gantry sbom ghcr.io/acme/web:v1 --platform linux/arm64
  gantry sbom ghcr.io/acme/web:v1 | grype
  gantry sbom oci:gantry-out:web:latest --platform linux/amd64`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var want *v1.Platform
			if platform != "" {
				p, err := manifests.ParsePlatform(platform)
				if err != nil {
					return usagef("--platform: %v", err)
				}
				want = &p
			}
			if dir, ok := strings.CutPrefix(args[0], "oci:"); ok {
				dir, name, _ := strings.Cut(dir, ":") // oci:DIR[:NAME:TAG], as build prints it
				doc, err := attest.ReadSBOMLayout(dir, name, want)
				if err != nil {
					return err
				}
				return a.printJSON(doc)
			}
			p, log, err := a.log.display(a.stderr)
			if err != nil {
				return err
			}
			defer p.Wait()
			c, err := a.registry.client(a.stdin, a.getenv, args[0], log, p)
			if err != nil {
				return err
			}
			defer c.CloseIdleConnections()
			ref, err := c.ParseReference(args[0])
			if err != nil {
				return usagef("%q is not a valid reference: %v", args[0], err)
			}
			doc, err := attest.ReadSBOM(cmd.Context(), ref, want, c.RemoteOptions(cmd.Context())...)
			if err != nil {
				if errors.Is(err, attest.ErrNoSBOM) || errors.Is(err, attest.ErrNoImage) {
					return err // exit 1: the image, not the registry
				}
				return registry.Classify(err, ref.Context().String())
			}
			return a.printJSON(doc)
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "the platform whose SBOM to print: os/arch[/variant]")
	return cmd
}

// printJSON prints a JSON document indented, for people (and grype).
func (a *app) printJSON(doc []byte) error {
	var b bytes.Buffer
	if err := json.Indent(&b, doc, "", "  "); err != nil {
		b.Reset()
		b.Write(doc)
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
		b.WriteByte('\n')
	}
	_, err := a.stdout.Write(b.Bytes())
	return err
}
