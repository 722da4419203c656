// Package deploy turns gantry's images into what runs them: Kubernetes
// manifests and compose files generated from an image's spec (its
// healthcheck, user, volumes, ports, env and runtime settings), and the
// gantry://NAME references of existing manifests resolved to pushed digests.
package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"strings"

	"github.com/gantry-dev/gantry/assemble/spec"
)

// Image is one image to deploy: what gantry.yaml says of it and the
// reference to run it by (REPO:TAG, or REPO@sha256:... when this run pushed
// it).
type Image struct {
	Spec spec.ImageSpec
	Ref  string
}

// Group is what runs together: one Deployment (or, in compose, services
// sharing one network namespace). Name names the workload; Images are the
// containers, the first one the group's entry point.
type Group struct {
	Name   string
	Images []Image
}

// Groups puts images into groups: each pod (NAME → image names) is one
// group in the order given, and every image no pod names is a group of its
// own, in the images' order.
func Groups(images []Image, pods []Pod) ([]Group, error) {
	byName := map[string]Image{}
	var names []string
	for _, im := range images {
		byName[im.Spec.Name] = im
		names = append(names, im.Spec.Name)
	}
	inPod := map[string]string{}
	var groups []Group
	seen := map[string]bool{}
	for _, p := range pods {
		if err := checkName(p.Name); err != nil {
			return nil, fmt.Errorf("--pod %s: %w", p.Name, err)
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("--pod %s: named twice; give each pod one --pod", p.Name)
		}
		seen[p.Name] = true
		g := Group{Name: p.Name}
		for _, n := range p.Images {
			im, ok := byName[n]
			switch {
			case !ok:
				return nil, fmt.Errorf("--pod %s: no image %q (there are %s)", p.Name, n, strings.Join(names, ", "))
			case inPod[n] != "":
				return nil, fmt.Errorf("--pod %s: image %s is already in pod %s; an image runs in one pod", p.Name, n, inPod[n])
			}
			inPod[n] = p.Name
			g.Images = append(g.Images, im)
		}
		groups = append(groups, g)
	}
	for _, im := range images {
		if inPod[im.Spec.Name] != "" {
			continue
		}
		if seen[im.Spec.Name] {
			return nil, fmt.Errorf("--pod %s: the name is also an image's that is in no pod; name the pod otherwise", im.Spec.Name)
		}
		groups = append(groups, Group{Name: im.Spec.Name, Images: []Image{im}})
	}
	return groups, nil
}

// Pod is a --pod NAME=IMG,IMG flag.
type Pod struct {
	Name   string
	Images []string
}

// ParsePod reads NAME=IMG[,IMG...].
func ParsePod(s string) (Pod, error) {
	n, list, ok := strings.Cut(s, "=")
	if !ok || n == "" || list == "" {
		return Pod{}, fmt.Errorf("--pod %q: want NAME=IMAGE,IMAGE, e.g. taskflow=taskflow-frontend,taskflow-backend", s)
	}
	p := Pod{Name: n}
	for _, im := range strings.Split(list, ",") {
		im = strings.TrimSpace(im)
		if im == "" {
			return Pod{}, fmt.Errorf("--pod %q: an empty image name; want NAME=IMAGE,IMAGE", s)
		}
		p.Images = append(p.Images, im)
	}
	return p, nil
}

// checkName checks that n can name Kubernetes objects (a DNS-1123 label).
func checkName(n string) error {
	if len(n) == 0 || len(n) > 63 {
		return fmt.Errorf("a name must have 1 to 63 characters")
	}
	for i, r := range n {
		alnum := r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
		if !alnum && (r != '-' || i == 0 || i == len(n)-1) {
			return fmt.Errorf("%q is not a DNS label: use lower-case letters, digits and inner '-'", n)
		}
	}
	return nil
}

// volumeName names the scratch volume of dir in image (a DNS label, unique
// in a pod): IMAGE-PATH, shortened with a hash past 63 characters.
func volumeName(image, dir string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(image + "-" + strings.Trim(path.Clean(dir), "/")) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	n := strings.Trim(b.String(), "-")
	for strings.Contains(n, "--") {
		n = strings.ReplaceAll(n, "--", "-")
	}
	if len(n) > 63 {
		sum := sha256.Sum256([]byte(image + "\x00" + dir))
		n = strings.TrimRight(n[:54], "-") + "-" + hex.EncodeToString(sum[:4])
	}
	return n
}

// writableDirs are the directories an image's process writes: its volumes
// and the directories its user owns, each once, in that order.
func writableDirs(s spec.ImageSpec) []string {
	var out []string
	seen := map[string]bool{}
	for _, d := range append(append([]string{}, s.Volumes...), s.Owns...) {
		d = path.Clean(d)
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// TagRef is the reference of an image by its first tag: PREFIX/NAME:TAG, or
// NAME:TAG without a prefix.
func TagRef(prefix string, s spec.ImageSpec) string {
	tag := "latest"
	if len(s.Tags) > 0 {
		tag = s.Tags[0]
	}
	n := s.Name + ":" + tag
	if prefix != "" {
		n = strings.TrimRight(prefix, "/") + "/" + n
	}
	return n
}

// DigestRef is REPO@DIGEST for the first registry reference of a pushed
// image (references such as oci:DIR:NAME:TAG are not pullable), or "" when
// the image went to no registry.
func DigestRef(references []string, digest string) string {
	for _, ref := range references {
		if strings.HasPrefix(ref, "oci:") || strings.HasPrefix(ref, "tar:") {
			continue
		}
		repo := ref
		if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
			repo = ref[:i]
		}
		return repo + "@" + digest
	}
	return ""
}
