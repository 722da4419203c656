package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/gantry-dev/gantry/assemble/spec"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// nameLabel selects a group's pods.
const nameLabel = "app.kubernetes.io/name"

// gracePeriod is how long a container with a preStop hook has to stop
// (Kubernetes' default, written out).
const gracePeriod = 30

// Kube writes ready-to-apply manifests for groups to w: per group a
// Deployment (its comments: notes and, when its images have runtime
// settings, a Secret template without values) and a Service on its ports.
func Kube(w io.Writer, groups []Group) error {
	var out bytes.Buffer
	for _, g := range groups {
		d, notes, err := Deployment(g)
		if err != nil {
			return err
		}
		out.WriteString("---\n")
		writeComments(&out, notes)
		for _, im := range g.Images {
			writeComments(&out, secretTemplate(im.Spec))
		}
		if err := marshal(&out, d); err != nil {
			return err
		}
		if svc := Service(g, d); svc != nil {
			out.WriteString("---\n")
			if err := marshal(&out, svc); err != nil {
				return err
			}
		}
	}
	_, err := w.Write(out.Bytes())
	return err
}

// marshal writes obj as YAML, without the empty fields the API types
// cannot leave out (status, strategy, resources).
func marshal(out *bytes.Buffer, obj any) error {
	j, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("writing the manifest: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		return fmt.Errorf("writing the manifest: %w", err)
	}
	delete(m, "status")
	prune(m)
	b, err := yaml.Marshal(m)
	if err != nil {
		return fmt.Errorf("writing the manifest: %w", err)
	}
	out.Write(b)
	return nil
}

// prune drops the empty strategy and resources mappings under v.
func prune(v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if em, ok := e.(map[string]any); ok && len(em) == 0 && (k == "strategy" || k == "resources") {
				delete(x, k)
				continue
			}
			prune(e)
		}
	case []any:
		for _, e := range x {
			prune(e)
		}
	}
}

func writeComments(out *bytes.Buffer, lines []string) {
	for _, l := range lines {
		out.WriteString(strings.TrimRight("# "+oneLine.Replace(l), " ") + "\n")
	}
}

var oneLine = strings.NewReplacer("\n", " ", "\r", " ")

// Deployment is g's Deployment, and notes on what it could not say.
func Deployment(g Group) (*appsv1.Deployment, []string, error) {
	labels := map[string]string{nameLabel: g.Name}
	pod := corev1.PodSpec{
		AutomountServiceAccountToken: new(false),
		SecurityContext:              &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
	}
	var notes []string
	var gids []int
	ports := map[string]string{} // port/proto → the image exposing it
	for _, im := range g.Images {
		c, vols, note, err := container(im)
		if err != nil {
			return nil, nil, err
		}
		if slices.ContainsFunc(pod.Containers, func(o corev1.Container) bool { return o.Name == c.Name }) {
			return nil, nil, fmt.Errorf("--pod %s: two images would both be container %s; give them distinct last path components", g.Name, c.Name)
		}
		for _, p := range c.Ports {
			key := fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol)
			if other, dup := ports[key]; dup {
				return nil, nil, fmt.Errorf("--pod %s: %s and %s both expose %s; containers of one pod share its ports", g.Name, other, im.Spec.Name, key)
			}
			ports[key] = im.Spec.Name
		}
		pod.Containers = append(pod.Containers, c)
		pod.Volumes = append(pod.Volumes, vols...)
		notes = append(notes, note...)
		if im.Spec.User != nil {
			gids = append(gids, im.Spec.User.GID)
		}
		if c.Lifecycle != nil {
			pod.TerminationGracePeriodSeconds = new(int64(gracePeriod))
		}
	}
	if len(gids) == len(g.Images) && allSame(gids) {
		pod.SecurityContext.FSGroup = new(int64(gids[0]))
	}
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: g.Name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: pod},
		},
	}
	return d, notes, nil
}

func allSame(xs []int) bool {
	for _, x := range xs {
		if x != xs[0] {
			return false
		}
	}
	return true
}

// container is one image's container, its scratch volumes, and notes.
func container(im Image) (corev1.Container, []corev1.Volume, []string, error) {
	s := im.Spec
	name := path.Base(s.Name)
	if err := checkName(name); err != nil {
		return corev1.Container{}, nil, nil, fmt.Errorf("image %s cannot name a container: %w", s.Name, err)
	}
	c := corev1.Container{Name: name, Image: im.Ref, Env: envVars(s)}
	c.ReadinessProbe, c.LivenessProbe, c.StartupProbe = Probes(s.Healthcheck)
	for _, p := range s.Ports {
		num, proto, _ := strings.Cut(p, "/")
		n, err := strconv.Atoi(num)
		if err != nil {
			return c, nil, nil, fmt.Errorf("image %s: port %q: %w", s.Name, p, err)
		}
		c.Ports = append(c.Ports, corev1.ContainerPort{Name: proto + "-" + num, ContainerPort: int32(n), Protocol: corev1.Protocol(strings.ToUpper(proto))})
	}
	c.SecurityContext = &corev1.SecurityContext{
		AllowPrivilegeEscalation: new(false),
		ReadOnlyRootFilesystem:   new(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	if u := s.User; u != nil {
		c.SecurityContext.RunAsUser, c.SecurityContext.RunAsGroup = new(int64(u.UID)), new(int64(u.GID))
		if u.UID != 0 {
			c.SecurityContext.RunAsNonRoot = new(true)
		}
	}
	var vols []corev1.Volume
	for _, dir := range writableDirs(s) {
		v := volumeName(name, dir)
		vols = append(vols, corev1.Volume{Name: v, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: v, MountPath: dir})
	}
	notes := []string{fmt.Sprintf("%s: the root filesystem is read-only; %d emptyDir volumes hold what it writes (volumes and user.owns of gantry.yaml), empty at start", name, len(vols))}
	if sig, ok := stopSignal(s.StopSignal); ok {
		c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{
			Command: []string{"/bin/sh", "-c", fmt.Sprintf("kill -%s 1 && sleep %d", sig, gracePeriod)},
		}}}
		notes = append(notes, fmt.Sprintf("%s: stops on %s, but Kubernetes sends SIGTERM: the preStop hook sends %s to PID 1 first (it needs /bin/sh and kill in the image)", name, s.StopSignal, s.StopSignal))
	}
	if c.ReadinessProbe != nil && c.ReadinessProbe.Exec != nil {
		notes = append(notes, fmt.Sprintf("%s: the healthcheck is not a plain HTTP GET on localhost, so the probes run it as a command", name))
	}
	return c, vols, notes, nil
}

// stopSignal is the signal name kill takes (QUIT, or a number) when sig is
// set and is not SIGTERM.
func stopSignal(sig string) (string, bool) {
	s := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(sig)), "SIG")
	if s == "" || s == "TERM" || s == "15" {
		return "", false
	}
	return s, true
}

// envVars are the image's env from gantry.yaml (so the deployment shows and
// can change them) and its runtime settings from its Secret.
func envVars(s spec.ImageSpec) []corev1.EnvVar {
	var env []corev1.EnvVar
	for _, kv := range s.Env {
		k, v, _ := strings.Cut(kv, "=")
		env = append(env, corev1.EnvVar{Name: k, Value: v})
	}
	for _, re := range s.RuntimeEnv {
		ref := &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: SecretName(s)}, Key: re.Name}
		if !re.Required {
			ref.Optional = new(true)
		}
		env = append(env, corev1.EnvVar{Name: re.Name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: ref}})
	}
	return env
}

// SecretName names the Secret holding an image's runtime settings.
func SecretName(s spec.ImageSpec) string { return path.Base(s.Name) }

// secretTemplate is the Secret an image's runtime settings come from,
// without values, as comment lines (none without runtime settings).
func secretTemplate(s spec.ImageSpec) []string {
	if len(s.RuntimeEnv) == 0 {
		return nil
	}
	n := SecretName(s)
	lines := []string{
		fmt.Sprintf("Secret %s: the runtime settings of %s. Create it with", n, s.Name),
		fmt.Sprintf("  kubectl create secret generic %s %s", n, literals(s.RuntimeEnv)),
		"or apply this with the values filled in:",
		"---",
		"apiVersion: v1",
		"kind: Secret",
		"metadata:",
		"  name: " + n,
		"type: Opaque",
		"stringData:",
	}
	for _, re := range s.RuntimeEnv {
		what := "optional"
		if re.Required {
			what = "required"
		}
		if re.Description != "" {
			what += ": " + re.Description
		}
		lines = append(lines, fmt.Sprintf("  %s: \"\"  # %s", re.Name, what))
	}
	return lines
}

func literals(env []spec.RuntimeEnv) string {
	var parts []string
	for _, re := range env {
		parts = append(parts, "--from-literal="+re.Name+"=...")
	}
	return strings.Join(parts, " ")
}

// Service is the Service on every port of d's containers, or nil without
// ports.
func Service(g Group, d *appsv1.Deployment) *corev1.Service {
	var ports []corev1.ServicePort
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			ports = append(ports, corev1.ServicePort{Name: p.Name, Port: p.ContainerPort, TargetPort: intstr.FromString(p.Name), Protocol: p.Protocol})
		}
	}
	if len(ports) == 0 {
		return nil
	}
	labels := map[string]string{nameLabel: g.Name}
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: g.Name, Labels: labels},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: ports},
	}
}
