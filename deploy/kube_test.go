package deploy

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/assemble/registrytest"
	"github.com/gantry-dev/gantry/assemble/spec"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const taskflow = "../testdata/taskflow/gantry.yaml"

// taskflowImages are TaskFlow's images, named by tag in a registry.
func taskflowImages(t *testing.T) []Image {
	t.Helper()
	specs, err := spec.Load(taskflow, func(string) (string, bool) { return "", false }, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out []Image
	for _, s := range specs {
		out = append(out, Image{Spec: s, Ref: TagRef("registry.example/acme", s)})
	}
	return out
}

func taskflowGroups(t *testing.T, pods ...Pod) []Group {
	t.Helper()
	g, err := Groups(taskflowImages(t), pods)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

var taskflowPod = Pod{Name: "taskflow", Images: []string{"taskflow-frontend", "taskflow-backend"}}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	file := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test ./deploy -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test ./deploy -update rewrites it); got:\n%s", file, got)
	}
}

// decoded is a kube stream read back strictly into the API types.
type decoded struct {
	deployments []appsv1.Deployment
	services    []corev1.Service
	secrets     []corev1.Secret // the commented templates
}

// decodeKube splits the stream into documents and decodes each strictly
// (an unknown or misspelt field fails), and the Secret templates in the
// comments too.
func decodeKube(t *testing.T, out []byte) decoded {
	t.Helper()
	var d decoded
	for _, doc := range strings.Split(string(out), "\n---\n") {
		doc = strings.TrimPrefix(doc, "---\n")
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("%v in\n%s", err, doc)
		}
		switch tm.Kind {
		case "Deployment":
			var x appsv1.Deployment
			strict(t, doc, &x)
			d.deployments = append(d.deployments, x)
		case "Service":
			var x corev1.Service
			strict(t, doc, &x)
			d.services = append(d.services, x)
		default:
			t.Fatalf("a document of kind %q:\n%s", tm.Kind, doc)
		}
		if tmpl := secretInComments(doc); tmpl != "" {
			var x corev1.Secret
			strict(t, tmpl, &x)
			d.secrets = append(d.secrets, x)
		}
	}
	return d
}

func strict(t *testing.T, doc string, v any) {
	t.Helper()
	if err := yaml.UnmarshalStrict([]byte(doc), v); err != nil {
		t.Fatalf("strict decoding: %v in\n%s", err, doc)
	}
}

// secretInComments is the Secret template of a document's comments,
// uncommented.
func secretInComments(doc string) string {
	var b strings.Builder
	in := false
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(l, "#") {
			break
		}
		l = strings.TrimPrefix(strings.TrimPrefix(l, "#"), " ")
		if l == "---" {
			in = true
			continue
		}
		if in {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// The done-when: one Deployment, two containers with httpGet
// probes on /health:8080 and /api/health:8000 every 10 s with a 5 s
// timeout, run as 1001, read-only root with emptyDirs for the volumes and
// owned directories, DATABASE_URL and OPENROUTER_API_KEY from a Secret.
func TestKubeTaskFlowPod(t *testing.T) {
	var out bytes.Buffer
	if err := Kube(&out, taskflowGroups(t, taskflowPod)); err != nil {
		t.Fatal(err)
	}
	golden(t, "taskflow-pod.yaml", out.Bytes())
	d := decodeKube(t, out.Bytes())
	if len(d.deployments) != 1 || len(d.services) != 1 || len(d.secrets) != 1 {
		t.Fatalf("%d deployments, %d services, %d secret templates", len(d.deployments), len(d.services), len(d.secrets))
	}
	pod := d.deployments[0].Spec.Template.Spec
	if len(pod.Containers) != 2 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	want := map[string]struct {
		path string
		port int
		dirs []string
	}{
		"taskflow-frontend": {"/health", 8080, []string{"/var/log/nginx", "/tmp/app", "/var/cache/nginx", "/tmp/nginx"}},
		"taskflow-backend":  {"/api/health", 8000, []string{"/app/logs", "/app/config", "/tmp/app"}},
	}
	emptyDirs := map[string]bool{}
	for _, v := range pod.Volumes {
		if v.EmptyDir != nil {
			emptyDirs[v.Name] = true
		}
		if errs := validation.IsDNS1123Label(v.Name); len(errs) > 0 {
			t.Errorf("volume %s: %v", v.Name, errs)
		}
	}
	for _, c := range pod.Containers {
		w := want[c.Name]
		for what, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
			if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != w.path || p.HTTPGet.Port.IntValue() != w.port || p.PeriodSeconds != 10 || p.TimeoutSeconds != 5 {
				t.Errorf("%s: %s probe %+v", c.Name, what, p)
			}
		}
		if c.ReadinessProbe.FailureThreshold != 3 || c.StartupProbe.FailureThreshold != 4 {
			t.Errorf("%s: failure thresholds %d, %d", c.Name, c.ReadinessProbe.FailureThreshold, c.StartupProbe.FailureThreshold)
		}
		sc := c.SecurityContext
		if sc == nil || *sc.RunAsUser != 1001 || *sc.RunAsGroup != 1001 || !*sc.RunAsNonRoot || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: securityContext %+v", c.Name, sc)
		}
		var mounted []string
		for _, m := range c.VolumeMounts {
			if !emptyDirs[m.Name] {
				t.Errorf("%s: %s is not an emptyDir", c.Name, m.MountPath)
			}
			mounted = append(mounted, m.MountPath)
		}
		if !slices.Equal(mounted, w.dirs) {
			t.Errorf("%s: mounts %q, want %q", c.Name, mounted, w.dirs)
		}
	}
	if fs := pod.SecurityContext.FSGroup; fs == nil || *fs != 1001 {
		t.Errorf("fsGroup %v", fs)
	}
	secretEnv := map[string]bool{}
	for _, e := range pod.Containers[1].Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == "taskflow-backend" && e.ValueFrom.SecretKeyRef.Key == e.Name {
			secretEnv[e.Name] = e.ValueFrom.SecretKeyRef.Optional != nil && *e.ValueFrom.SecretKeyRef.Optional
		}
	}
	if opt, ok := secretEnv["DATABASE_URL"]; !ok || opt {
		t.Errorf("DATABASE_URL from the Secret, required: %v", secretEnv)
	}
	if opt, ok := secretEnv["OPENROUTER_API_KEY"]; !ok || !opt {
		t.Errorf("OPENROUTER_API_KEY from the Secret, optional: %v", secretEnv)
	}
	if s := d.secrets[0]; s.Name != "taskflow-backend" || len(s.StringData) != 2 || s.StringData["DATABASE_URL"] != "" {
		t.Errorf("secret template %+v", s)
	}
	if ports := d.services[0].Spec.Ports; len(ports) != 2 || ports[0].Port != 8080 || ports[1].Port != 8000 {
		t.Errorf("service ports %+v", ports)
	}
	if d.services[0].Spec.Selector[nameLabel] != "taskflow" || d.deployments[0].Spec.Selector.MatchLabels[nameLabel] != "taskflow" {
		t.Error("the Service does not select the Deployment's pods")
	}
	if hook := pod.Containers[0].Lifecycle; hook == nil || hook.PreStop == nil || !strings.Contains(strings.Join(hook.PreStop.Exec.Command, " "), "kill -QUIT 1") {
		t.Errorf("frontend stops on SIGQUIT: preStop %+v", hook)
	}
	if pod.Containers[1].Lifecycle != nil {
		t.Error("backend stops on SIGTERM but has a preStop hook")
	}
}

// Without --pod, each image is its own Deployment and Service.
func TestKubeTaskFlowSeparate(t *testing.T) {
	var out bytes.Buffer
	if err := Kube(&out, taskflowGroups(t)); err != nil {
		t.Fatal(err)
	}
	golden(t, "taskflow.yaml", out.Bytes())
	d := decodeKube(t, out.Bytes())
	if len(d.deployments) != 2 || len(d.services) != 2 || d.deployments[1].Name != "taskflow-backend" {
		t.Fatalf("%d deployments, %d services", len(d.deployments), len(d.services))
	}
	if d.deployments[0].Spec.Template.Spec.Containers[0].Image != "registry.example/acme/taskflow-frontend:latest" {
		t.Errorf("image %s", d.deployments[0].Spec.Template.Spec.Containers[0].Image)
	}
}

func TestComposeTaskFlow(t *testing.T) {
	var out bytes.Buffer
	if err := Compose(&out, taskflowGroups(t, taskflowPod)); err != nil {
		t.Fatal(err)
	}
	golden(t, "taskflow-compose.yaml", out.Bytes())
	var f ComposeFile
	strict(t, out.String(), &f)
	fe, be := f.Services["taskflow-frontend"], f.Services["taskflow-backend"]
	if fe == nil || be == nil {
		t.Fatalf("services %v", f.Services)
	}
	if fe.NetworkMode != "service:taskflow-backend" || fe.DependsOn["taskflow-backend"].Condition != "service_healthy" || len(fe.Ports) != 0 || len(be.Ports) != 2 {
		t.Errorf("frontend does not share the backend's network: %+v", fe)
	}
	if fe.User != "1001:1001" || !fe.ReadOnly || !slices.Contains(fe.Tmpfs, "/var/cache/nginx") || !slices.Contains(fe.Volumes, "taskflow-frontend-var-log-nginx:/var/log/nginx") {
		t.Errorf("frontend %+v", fe)
	}
	if !slices.Contains(be.Environment, "DATABASE_URL=${DATABASE_URL:?DATABASE_URL is required}") || !slices.Contains(be.Environment, "OPENROUTER_API_KEY=${OPENROUTER_API_KEY:-}") {
		t.Errorf("backend env %q", be.Environment)
	}
	if be.Healthcheck == nil || be.Healthcheck.Interval != "10s" || be.Healthcheck.Timeout != "5s" || be.Healthcheck.Retries != 3 {
		t.Errorf("backend healthcheck %+v", be.Healthcheck)
	}
	if !strings.Contains(out.String(), "    user: \"1001:1001\"\n") {
		t.Error("the user is not quoted (YAML 1.1 reads 1000:50 as a number)")
	}

	// docker-compose (Debian's) checks the file against the Compose schema
	dc := registrytest.LookPath(t, "docker-compose")
	file := filepath.Join(t.TempDir(), "compose.yaml")
	if err := os.WriteFile(file, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(dc, "-f", file, "config", "-q")
	cmd.Env = append(os.Environ(), "DATABASE_URL=postgres://db/taskflow")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("docker-compose config: %v\n%s", err, b)
	}
	cmd = exec.Command(dc, "-f", file, "config", "-q") // a required setting unset fails
	cmd.Env = slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, "DATABASE_URL=") })
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "DATABASE_URL is required") {
		t.Errorf("docker-compose without DATABASE_URL: %v\n%s", err, b)
	}
}

func TestGroupsErrors(t *testing.T) {
	images := taskflowImages(t)
	for _, pods := range [][]Pod{
		{{Name: "p", Images: []string{"nope"}}},
		{{Name: "p", Images: []string{"taskflow-frontend"}}, {Name: "q", Images: []string{"taskflow-frontend"}}},
		{{Name: "p", Images: []string{"taskflow-frontend"}}, {Name: "p", Images: []string{"taskflow-backend"}}},
		{{Name: "Bad_Name", Images: []string{"taskflow-frontend"}}},
		{{Name: "taskflow-backend", Images: []string{"taskflow-frontend"}}},
	} {
		if _, err := Groups(images, pods); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: %v", pods, err)
		}
	}
	for _, s := range []string{"p", "=a", "p=", "p=a,,b"} {
		if _, err := ParsePod(s); err == nil {
			t.Errorf("ParsePod(%q) passed", s)
		}
	}
	if p, err := ParsePod("p=a, b"); err != nil || !slices.Equal(p.Images, []string{"a", "b"}) {
		t.Errorf("ParsePod: %+v %v", p, err)
	}
}

func TestVolumeName(t *testing.T) {
	long := "/" + strings.Repeat("very-long-directory/", 5)
	for dir, want := range map[string]string{
		"/var/cache/nginx": "web-var-cache-nginx",
		"/tmp//x_y.z/":     "web-tmp-x-y-z",
		long:               "",
	} {
		got := volumeName("web", dir)
		if errs := validation.IsDNS1123Label(got); len(errs) > 0 || want != "" && got != want {
			t.Errorf("volumeName(%q) = %q %v", dir, got, errs)
		}
	}
	if volumeName("web", long) == volumeName("web", long+"x") {
		t.Error("long names collide")
	}
}
