package main

import (
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/assemble/buildenv"
	"github.com/gantry-dev/gantry/assemble/spec"
	"github.com/goccy/go-yaml"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"
)

// appendFlags are append's own flags: the one image, as gantry.yaml would
// describe it.
type appendFlags struct {
	base, owner, user, workdir, name          string
	layers, env, labels, ports, volumes, owns []string
	annotations                               []string
	fileMode, dirMode, split                  string
	precompress                               bool
	pyLock                                    string
	pyWheels                                  []string
	aptInstall, aptSources                    []string
	aptKeyring                                string
	entrypoint, cmd                           []string
	healthcheck                               string
	hcInterval, hcTimeout                     time.Duration
}

func (a *app) appendCmd() *cobra.Command {
	var (
		o  imageOptions
		af appendFlags
	)
	cmd := &cobra.Command{
		Use:   "append --base REF --layer SRC:DEST... [--push REF | --output oci:DIR|tar:FILE]",
		Short: "Append directories to a base image's every platform, in one command",
		Long: `Append layers made from local directories or files to a base image, set
config fields, and push or write the result: the crane-style one-liner, with
the same engine as gantry build. Every platform of the base gets the layers
unless --platform picks some.`,
		Example: `  # Serve a static site from nginx, as uid 1001, on every platform of the base
  gantry append --base nginx:alpine --layer ./out:/usr/share/nginx/html \
    --owner 1001:1001 --user appuser:1001:appgroup:1001 \
    --healthcheck 'wget -q -O /dev/null http://127.0.0.1:8080/health' \
    --push ghcr.io/acme/site:v1

  # Write a docker-loadable tarball for one platform
  gantry append --base python:3.13-slim --layer src:/app --platform linux/amd64 -o tar:app.tar`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			so, err := o.spec()
			if err != nil {
				return err
			}
			so.Annotations = buildenv.Read(cmd.Context(), ".", a.getenv.get).Annotations()
			ic, err := af.config(o.output.push, o.output.output)
			if err != nil {
				return err
			}
			s, err := spec.FromConfig(flagLocator{&af}, "", ic, so)
			if err != nil {
				return err
			}
			return a.runBuild(cmd.Context(), &o, []spec.ImageSpec{s}, o.output.destinations(true))
		},
	}
	f := cmd.Flags()
	f.StringVar(&af.base, "base", "", "base image: a registry reference or oci:DIR[:tag|@digest] (required)")
	f.StringArrayVar(&af.layers, "layer", nil, "add SRC (a directory or file) at DEST, an absolute path (repeatable; each is one layer)")
	f.StringVar(&af.owner, "owner", "", "numeric UID:GID owning every file of every --layer (default 0:0)")
	f.StringVar(&af.user, "user", "", "NAME:UID[:GROUP:GID] to add to /etc/passwd and /etc/group and run as")
	f.StringArrayVar(&af.owns, "own", nil, "directory the --user owns, created if missing (repeatable)")
	f.StringArrayVar(&af.env, "env", nil, "environment variable K=V (repeatable)")
	f.StringSliceVar(&af.entrypoint, "entrypoint", nil, "entrypoint, comma-separated")
	f.StringSliceVar(&af.cmd, "cmd", nil, "command, comma-separated")
	f.StringVar(&af.workdir, "workdir", "", "working directory")
	f.StringArrayVar(&af.labels, "label", nil, "label K=V (repeatable)")
	f.StringArrayVar(&af.ports, "port", nil, "exposed port N[/proto] (repeatable)")
	f.StringArrayVar(&af.volumes, "volume", nil, "volume path (repeatable)")
	f.StringVar(&af.healthcheck, "healthcheck", "", "HEALTHCHECK command as Dockerfile reads it: a JSON array is exec form, anything else shell form")
	f.DurationVar(&af.hcInterval, "healthcheck-interval", 0, "time between health checks (e.g. 10s)")
	f.DurationVar(&af.hcTimeout, "healthcheck-timeout", 0, "time a health check may take (e.g. 5s)")
	f.StringArrayVar(&af.annotations, "annotation", nil, "manifest annotation K=V (repeatable)")
	f.StringVar(&af.fileMode, "file-mode", "", "octal mode of every regular file of every --layer, e.g. 0444 (default: 0755 if executable, else 0644)")
	f.StringVar(&af.dirMode, "dir-mode", "", "octal mode of every directory of every --layer, e.g. 0555 (default 0755)")
	f.BoolVar(&af.precompress, "precompress", false, "add a deterministic x.gz beside each text file of every --layer (nginx gzip_static)")
	f.StringVar(&af.split, "split", "", "cut every --layer over twice this size into layers of about this size (e.g. 64MB), by path, so that a change rebuilds and uploads only its part")
	f.StringVar(&af.pyLock, "python-requirements", "", "install the Python packages this hash-pinned lock lists, per platform, as the first layer")
	f.StringArrayVar(&af.pyWheels, "python-wheels", nil, "wheel directory or PEP 503/691 index URL for --python-requirements (repeatable, tried in order)")
	f.StringArrayVar(&af.aptInstall, "apt-install", nil, "install this Debian package (NAME or NAME=VERSION) and what it depends on, per platform, as the first layer (repeatable)")
	f.StringArrayVar(&af.aptSources, "apt-source", nil, `apt source for --apt-install, "deb URI SUITE COMPONENT..." (repeatable; default: the base's own)`)
	f.StringVar(&af.aptKeyring, "apt-keyring", "", "keyring file the --apt-source archives are signed with (default: the base's trusted keys)")
	f.StringVar(&af.name, "name", "", "image name for --output references (default: from --push or the base)")
	o.add(f, "push the result to this reference, e.g. ghcr.io/acme/app:v1")
	return cmd
}

// config is the image these flags describe, for spec.FromConfig to
// validate like any image of gantry.yaml. Only the flags' own syntax
// (SRC:DEST, K=V, NAME:UID) is checked here.
func (af *appendFlags) config(push, output string) (spec.ImageConfig, error) {
	if af.base == "" {
		return spec.ImageConfig{}, usagef("--base is required")
	}
	ic := spec.ImageConfig{
		Name: af.imageName(push, output), Base: af.base, Workdir: af.workdir,
		Entrypoint: af.entrypoint, Cmd: af.cmd, Volumes: af.volumes,
	}
	for _, p := range af.ports {
		ic.Ports = append(ic.Ports, p)
	}
	var err error
	if ic.Layers, err = af.layerConfigs(); err != nil {
		return ic, err
	}
	if ic.User, err = af.userConfig(); err != nil {
		return ic, err
	}
	for _, kv := range af.env {
		k, v, err := keyValue("--env", kv)
		if err != nil {
			return ic, err
		}
		ic.Env = append(ic.Env, yaml.MapItem{Key: k, Value: v})
	}
	if ic.Annotations, err = keyValues("--annotation", af.annotations); err != nil {
		return ic, err
	}
	if ic.Labels, err = keyValues("--label", af.labels); err != nil {
		return ic, err
	}
	if af.healthcheck != "" {
		ic.Healthcheck = &spec.HealthcheckConfig{Test: af.healthcheck, Interval: duration(af.hcInterval), Timeout: duration(af.hcTimeout)}
	} else if af.hcInterval != 0 || af.hcTimeout != 0 {
		return ic, usagef("--healthcheck-interval and --healthcheck-timeout need --healthcheck")
	}
	return ic, nil
}

// layerConfigs reads --apt-install (the first layer: system packages
// change least), --python-requirements (dependencies change less often
// than code) and --layer SRC:DEST, each one layer owned
// by --owner.
func (af *appendFlags) layerConfigs() ([]spec.LayerConfig, error) {
	var out []spec.LayerConfig
	switch {
	case len(af.aptInstall) > 0:
		out = append(out, spec.LayerConfig{Debian: &spec.DebianConfig{Packages: af.aptInstall, Sources: af.aptSources, Keyring: af.aptKeyring}})
	case len(af.aptSources) > 0 || af.aptKeyring != "":
		return nil, usagef("--apt-source and --apt-keyring go with --apt-install")
	}
	switch {
	case af.pyLock != "":
		out = append(out, spec.LayerConfig{Python: &spec.PythonConfig{Requirements: af.pyLock, Wheels: af.pyWheels}, Owner: af.owner, FileMode: af.fileMode, DirMode: af.dirMode})
	case len(af.pyWheels) > 0:
		return nil, usagef("--python-wheels goes with --python-requirements")
	}
	for _, l := range af.layers {
		i := strings.LastIndex(l, ":/")
		if i <= 0 {
			return nil, usagef("--layer %q: want SRC:DEST with DEST absolute, e.g. ./out:/usr/share/nginx/html", l)
		}
		out = append(out, spec.LayerConfig{Name: l[i+1:], From: l[:i], To: l[i+1:], Owner: af.owner,
			FileMode: af.fileMode, DirMode: af.dirMode, Precompress: af.precompress, Split: af.split})
	}
	return out, nil
}

// userConfig reads --user and the --own directories.
func (af *appendFlags) userConfig() (*spec.UserConfig, error) {
	if af.user == "" {
		if len(af.owns) > 0 {
			return nil, usagef("--own %s needs --user", af.owns[0])
		}
		return nil, nil
	}
	u, err := parseUser(af.user)
	if err != nil {
		return nil, err
	}
	u.Owns = af.owns
	return u, nil
}

// keyValues reads repeated K=V flag values into a map (nil when none).
func keyValues(flag string, kvs []string) (map[string]string, error) {
	var m map[string]string
	for _, kv := range kvs {
		k, v, err := keyValue(flag, kv)
		if err != nil {
			return nil, err
		}
		if m == nil {
			m = map[string]string{}
		}
		m[k] = v
	}
	return m, nil
}

// keyValue splits a K=V flag value.
func keyValue(flag, kv string) (string, string, error) {
	k, v, ok := strings.Cut(kv, "=")
	if !ok || k == "" {
		return "", "", usagef("%s %q: want K=V", flag, kv)
	}
	return k, v, nil
}

func duration(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// imageName names the image in --output references and a tarball's
// RepoTags: --name, else the last part of the --push repository, else for
// -o tar:FILE the file's name (never the base's: docker load of nginx:latest
// would replace the user's own nginx), else the base's.
func (af *appendFlags) imageName(push, output string) string {
	if af.name != "" {
		return af.name
	}
	if file, ok := strings.CutPrefix(output, "tar:"); ok && push == "" {
		n := strings.ToLower(strings.TrimSuffix(filepath.Base(file), filepath.Ext(file)))
		if n == "-" || n == "" || !validName.MatchString(n) {
			return "image"
		}
		return n
	}
	ref := push
	if ref == "" {
		ref = af.base
	}
	if dir, ok := strings.CutPrefix(ref, "oci:"); ok {
		dir, _, _ = strings.Cut(dir, "@") // oci:DIR@sha256:...
		return path.Base(strings.SplitN(dir, ":", 2)[0])
	}
	if r, err := name.ParseReference(ref); err == nil {
		return path.Base(r.Context().RepositoryStr())
	}
	return "image"
}

// validName is a repository name's last component.
var validName = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)

// parseUser reads --user NAME:UID[:GROUP:GID].
func parseUser(s string) (*spec.UserConfig, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 2 && len(parts) != 4 {
		return nil, usagef("--user %q: want NAME:UID or NAME:UID:GROUP:GID", s)
	}
	uid, err := strconv.Atoi(parts[1])
	if err != nil {
		return nil, usagef("--user %q: uid %q is not a number", s, parts[1])
	}
	u := &spec.UserConfig{Name: parts[0], UID: &uid}
	if len(parts) == 4 {
		gid, err := strconv.Atoi(parts[3])
		if err != nil {
			return nil, usagef("--user %q: gid %q is not a number", s, parts[3])
		}
		u.Group, u.GID = parts[2], &gid
	}
	return u, nil
}

// flagLocator names the flag behind a field of the image append builds, so
// that the validator's errors speak of flags, not of gantry.yaml.
type flagLocator struct{ af *appendFlags }

func (l flagLocator) Errorf(p, format string, args ...any) error {
	return &spec.ConfigError{Path: l.flag(p), Msg: fmt.Sprintf(format, args...)}
}

// layerFlag names the flag behind field rest of layer i.
func (l flagLocator) layerFlag(i int, rest string) string {
	if len(l.af.aptInstall) > 0 {
		if i == 0 {
			return aptFlag(rest)
		}
		i-- // the other layers come after the system packages
	}
	if l.af.pyLock != "" {
		if i == 0 {
			if strings.HasPrefix(rest, "python.wheels") {
				return "--python-wheels"
			}
			return "--python-requirements"
		}
		i-- // the --layer flags come after the packages
	}
	switch rest {
	case "owner":
		return "--owner"
	case "fileMode":
		return "--file-mode"
	case "dirMode":
		return "--dir-mode"
	case "split":
		return "--split"
	}
	if i < len(l.af.layers) {
		return fmt.Sprintf("--layer %q", l.af.layers[i])
	}
	return "--layer"
}

func (l flagLocator) flag(p string) string {
	field, rest, _ := strings.Cut(p, ".")
	base, index, _ := strings.Cut(field, "[")
	i, _ := strconv.Atoi(strings.TrimSuffix(index, "]"))
	switch base {
	case "layers":
		return l.layerFlag(i, rest)
	case "env":
		return "--env " + rest
	case "user":
		if strings.HasPrefix(rest, "owns") {
			return "--own"
		}
		return "--user"
	case "ports":
		return "--port"
	case "volumes":
		return "--volume"
	case "labels":
		return "--label"
	case "platforms":
		return "--platform"
	case "tags":
		return "--tag"
	case "annotations":
		return "--annotation"
	case "name", "base", "workdir", "healthcheck", "entrypoint", "cmd", "compression":
		return "--" + base
	}
	return p
}

// aptFlag names the --apt-* flag behind field rest of the debian: layer.
func aptFlag(rest string) string {
	switch {
	case strings.HasPrefix(rest, "debian.sources"):
		return "--apt-source"
	case strings.HasPrefix(rest, "debian.keyring"):
		return "--apt-keyring"
	}
	return "--apt-install"
}
