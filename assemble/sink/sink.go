// Package sink holds where built images go — a registry, an OCI image
// layout, a docker-loadable tarball — each behind assemble.Sink and made
// the same way: a constructor taking what it needs and the Destinations.
// A run prepares every sink before anything is written, writes each image,
// commits (tags last), and aborts on any failure, which leaves no partial
// output behind.
package sink

import "github.com/gantry-dev/gantry/assemble/spec"

// Destinations names where each image is tagged.
type Destinations struct {
	// Prefix: images go to PREFIX/NAME:TAG (gantry build --push).
	Prefix string
	// Ref: the one image goes to this reference (gantry append --push).
	Ref string
	// Tags replace each image's own tags (default "latest").
	Tags []string
}

// tags are the tags image s is written with.
func (d Destinations) tags(s spec.ImageSpec) []string {
	switch {
	case len(d.Tags) > 0:
		return d.Tags
	case len(s.Tags) > 0:
		return s.Tags
	}
	return []string{"latest"}
}
