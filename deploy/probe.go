package deploy

import (
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/manifests"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Docker's defaults for a HEALTHCHECK that leaves them out.
const (
	defaultInterval = 30 * time.Second
	defaultTimeout  = 30 * time.Second
	defaultRetries  = 3
)

// HTTPCheck is a healthcheck that is recognisably one HTTP GET of a
// loopback URL: a probe can make the same request.
type HTTPCheck struct {
	Scheme corev1.URIScheme
	Port   int
	Path   string // with the query, if any
}

// Command is the healthcheck as the argv a probe runs: exec form as it is,
// shell form under /bin/sh -c; nil for none (NONE, or no healthcheck).
func Command(hc *manifests.Healthcheck) []string {
	if hc == nil || len(hc.Test) == 0 {
		return nil
	}
	switch hc.Test[0] {
	case "CMD":
		return hc.Test[1:]
	case "CMD-SHELL":
		return []string{"/bin/sh", "-c", strings.Join(hc.Test[1:], " ")}
	}
	return nil
}

// RecogniseHTTP reads a healthcheck's command as an HTTP GET on loopback:
// wget (any non-2xx/3xx fails it), curl with -f/--fail, or python's
// urllib.request.urlopen one-liner; a shell form counts when it is a plain
// command with no shell syntax. Anything else, and any option not known to
// leave a plain GET, is not recognised.
func RecogniseHTTP(hc *manifests.Healthcheck) (HTTPCheck, bool) {
	argv := Command(hc)
	if len(argv) == 3 && argv[0] == "/bin/sh" && argv[1] == "-c" {
		if strings.ContainsAny(argv[2], "|&;<>()$`\\\"'*?[]{}~#\n") {
			return HTTPCheck{}, false
		}
		argv = strings.Fields(argv[2])
	}
	if len(argv) == 0 {
		return HTTPCheck{}, false
	}
	var u string
	var ok bool
	switch prog := path.Base(argv[0]); {
	case prog == "wget":
		u, ok = urlArg(argv[1:], wgetFlags)
	case prog == "curl":
		u, ok = curlURL(argv[1:])
	case pythonName.MatchString(prog):
		u, ok = pythonURL(argv[1:])
	}
	if !ok {
		return HTTPCheck{}, false
	}
	return loopbackURL(u)
}

var pythonName = regexp.MustCompile(`^python(3(\.\d+)?)?$`)

// Options of wget and curl that keep a request a plain GET, and whether
// each takes a value.
var (
	wgetFlags = map[string]bool{
		"-q": false, "--quiet": false, "--spider": false, "-S": false, "--server-response": false,
		"-O": true, "--output-document": true, "-T": true, "--timeout": true, "-t": true, "--tries": true,
		"-qO": true, "-U": true, "--user-agent": true, "-Y": true,
	}
	curlFlags = map[string]bool{
		"-f": false, "--fail": false, "-s": false, "--silent": false, "-S": false, "--show-error": false,
		"-L": false, "--location": false, "-k": false, "--insecure": false, "-fs": false, "-sf": false,
		"-fsS": false, "-sSf": false, "-fsSL": false, "-fSs": false, "-sS": false, "--fail-with-body": false,
		"-o": true, "--output": true, "-m": true, "--max-time": true, "--connect-timeout": true,
		"--retry": true, "-A": true, "--user-agent": true,
	}
)

// urlArg finds the one URL among args whose options are all in flags
// (--opt=value counts as the option with its value).
func urlArg(args []string, flags map[string]bool) (string, bool) {
	var u string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			if u != "" {
				return "", false // two URLs: not one GET
			}
			u = a
			continue
		}
		name, _, hasValue := strings.Cut(a, "=")
		takes, known := flags[name]
		if !known && attachedValue(a, flags) { // -O- or -qO/dev/null
			continue
		}
		if !known {
			return "", false
		}
		if takes && !hasValue {
			i++
		}
	}
	return u, u != ""
}

// attachedValue reports whether a is a short option that takes a value
// with the value attached, such as -O- or -qO/dev/null.
func attachedValue(a string, flags map[string]bool) bool {
	for f, takes := range flags {
		if takes && len(f) >= 2 && f[1] != '-' && len(a) > len(f) && strings.HasPrefix(a, f) {
			return true
		}
	}
	return false
}

// curlURL is urlArg for curl, which must have --fail to fail on an HTTP
// error status as a probe does.
func curlURL(args []string) (string, bool) {
	fail := false
	for _, a := range args {
		takes, known := curlFlags[a]
		if a == "--fail" || a == "--fail-with-body" || known && !takes && !strings.HasPrefix(a, "--") && strings.Contains(a, "f") {
			fail = true
		}
	}
	if !fail {
		return "", false
	}
	return urlArg(args, curlFlags)
}

// urlopen is python's urllib.request.urlopen of a literal URL, with an
// optional timeout.
var urlopen = regexp.MustCompile(`urlopen\(\s*(['"])([^'"\s]+)['"]\s*(,\s*timeout\s*=\s*[0-9.]+\s*)?\)`)

// pythonURL reads `python3 -c "...urllib.request.urlopen('URL')..."`: one
// urlopen of a literal URL and no other request.
func pythonURL(args []string) (string, bool) {
	if len(args) != 2 || args[0] != "-c" {
		return "", false
	}
	script := args[1]
	m := urlopen.FindAllStringSubmatch(script, -1)
	if len(m) != 1 || strings.Count(script, "urlopen") != 1 || strings.Contains(script, "Request(") || strings.Contains(script, "data=") {
		return "", false
	}
	return m[0][2], true
}

// loopbackURL accepts an http(s) URL on a loopback host.
func loopbackURL(raw string) (HTTPCheck, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Fragment != "" {
		return HTTPCheck{}, false
	}
	c := HTTPCheck{Scheme: corev1.URISchemeHTTP, Port: 80}
	switch u.Scheme {
	case "http":
	case "https":
		c.Scheme, c.Port = corev1.URISchemeHTTPS, 443
	default:
		return HTTPCheck{}, false
	}
	switch u.Hostname() {
	case "127.0.0.1", "localhost", "::1", "0.0.0.0":
	default:
		return HTTPCheck{}, false
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return HTTPCheck{}, false
		}
		c.Port = n
	}
	c.Path = u.EscapedPath()
	if c.Path == "" {
		c.Path = "/"
	}
	if u.RawQuery != "" {
		c.Path += "?" + u.RawQuery
	}
	return c, true
}

// Timing is a healthcheck's schedule in whole seconds, Docker's defaults
// filled in.
type Timing struct {
	Interval, Timeout, StartPeriod time.Duration
	Retries                        int
}

// TimingOf is hc's schedule with Docker's defaults for what it leaves out.
func TimingOf(hc *manifests.Healthcheck) Timing {
	t := Timing{Interval: hc.Interval, Timeout: hc.Timeout, StartPeriod: hc.StartPeriod, Retries: hc.Retries}
	if t.Interval <= 0 {
		t.Interval = defaultInterval
	}
	if t.Timeout <= 0 {
		t.Timeout = defaultTimeout
	}
	if t.Retries <= 0 {
		t.Retries = defaultRetries
	}
	return t
}

// seconds rounds d up to whole seconds, at least 1.
func seconds(d time.Duration) int32 {
	s := int32((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// Probes are the readiness, liveness and startup probes of a healthcheck
// (startup nil without a start period); all nil without a healthcheck.
func Probes(hc *manifests.Healthcheck) (readiness, liveness, startup *corev1.Probe) {
	argv := Command(hc)
	if argv == nil {
		return nil, nil, nil
	}
	var h corev1.ProbeHandler
	if c, ok := RecogniseHTTP(hc); ok {
		h.HTTPGet = &corev1.HTTPGetAction{Path: c.Path, Port: intstr.FromInt32(int32(c.Port)), Scheme: c.Scheme}
	} else {
		h.Exec = &corev1.ExecAction{Command: argv}
	}
	t := TimingOf(hc)
	probe := func(failures int32) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: h, PeriodSeconds: seconds(t.Interval), TimeoutSeconds: seconds(t.Timeout), FailureThreshold: failures}
	}
	readiness, liveness = probe(int32(t.Retries)), probe(int32(t.Retries))
	if t.StartPeriod > 0 {
		// Docker does not count failures within the start period: the
		// startup probe allows the start period and then retries more
		startup = probe(int32((t.StartPeriod+t.Interval-1)/t.Interval) + int32(t.Retries))
	}
	return readiness, liveness, startup
}
