// Package attest describes what a build made, for the people and scanners
// that check it: one SPDX 2.3 SBOM and one in-toto statement with SLSA v1
// provenance per platform image, and the OCI 1.1 artifact manifests that
// attach them to the image as referrers. Everything it writes is a
// function of the build's inputs: no clock, no host name, no random IDs.
package attest
