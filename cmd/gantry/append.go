package main

import (
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/assemble"
	"github.com/gantry-dev/gantry/layers"
	"github.com/gantry-dev/gantry/manifests"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"
)

type appendFlags struct {
	base, owner, user, workdir, name          string
	layers, env, labels, ports, volumes, owns []string
	entrypoint, cmd                           []string
	healthcheck                               string
	hcInterval, hcTimeout                     time.Duration
}

func newAppend(stdin io.Reader, stdout, stderr io.Writer, getenv env) *cobra.Command {
	var (
		c common
		a appendFlags
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
			spec, err := a.spec(&c)
			if err != nil {
				return err
			}
			dest := assemble.Destinations{Ref: c.push, Tags: c.tags}
			return c.runBuild(cmd.Context(), stdin, stdout, stderr, getenv, []assemble.ImageSpec{spec}, dest)
		},
	}
	f := cmd.Flags()
	f.StringVar(&a.base, "base", "", "base image: a registry reference or oci:DIR[:tag|@digest] (required)")
	f.StringArrayVar(&a.layers, "layer", nil, "add SRC (a directory or file) at DEST, an absolute path (repeatable; each is one layer)")
	f.StringVar(&a.owner, "owner", "", "numeric UID:GID owning every file of every --layer (default 0:0)")
	f.StringVar(&a.user, "user", "", "NAME:UID[:GROUP:GID] to add to /etc/passwd and /etc/group and run as")
	f.StringArrayVar(&a.owns, "own", nil, "directory the --user owns, created if missing (repeatable)")
	f.StringArrayVar(&a.env, "env", nil, "environment variable K=V (repeatable)")
	f.StringSliceVar(&a.entrypoint, "entrypoint", nil, "entrypoint, comma-separated")
	f.StringSliceVar(&a.cmd, "cmd", nil, "command, comma-separated")
	f.StringVar(&a.workdir, "workdir", "", "working directory")
	f.StringArrayVar(&a.labels, "label", nil, "label K=V (repeatable)")
	f.StringArrayVar(&a.ports, "port", nil, "exposed port N[/proto] (repeatable)")
	f.StringArrayVar(&a.volumes, "volume", nil, "volume path (repeatable)")
	f.StringVar(&a.healthcheck, "healthcheck", "", "HEALTHCHECK command as Dockerfile reads it: a JSON array is exec form, anything else shell form")
	f.DurationVar(&a.hcInterval, "healthcheck-interval", 0, "time between health checks (e.g. 10s)")
	f.DurationVar(&a.hcTimeout, "healthcheck-timeout", 0, "time a health check may take (e.g. 5s)")
	f.StringVar(&a.name, "name", "", "image name for --output references (default: from --push or the base)")
	c.register(cmd, "push the result to this reference, e.g. ghcr.io/acme/app:v1")
	return cmd
}

func (a *appendFlags) spec(c *common) (assemble.ImageSpec, error) {
	s := assemble.ImageSpec{Base: a.base, Workdir: a.workdir, Entrypoint: a.entrypoint, Cmd: a.cmd}
	if a.base == "" {
		return s, usagef("--base is required")
	}
	var err error
	if s.Platforms, _, err = c.platforms(); err != nil {
		return s, err
	}
	comp, err := c.compressionOverride()
	if err != nil {
		return s, err
	}
	if comp == nil {
		comp = &layers.Compression{Algorithm: layers.Gzip, Level: 1}
	}
	s.Compression = *comp
	s.Name = a.imageName(c.push)

	var owner *layers.Owner
	if a.owner != "" {
		o, err := assemble.ParseOwner(a.owner)
		if err != nil {
			return s, usagef("--owner: %v", err)
		}
		owner = &o
	}
	for _, l := range a.layers {
		i := strings.LastIndex(l, ":/")
		if i <= 0 {
			return s, usagef("--layer %q: want SRC:DEST with DEST absolute, e.g. ./out:/usr/share/nginx/html", l)
		}
		src, dst := l[:i], l[i+1:]
		if _, err := os.Lstat(src); err != nil {
			return s, usagef("--layer %q: %s does not exist", l, src)
		}
		s.Layers = append(s.Layers, assemble.LayerSpec{Name: dst, Spec: layers.Spec{
			Sources: []layers.Source{{From: src, To: dst}}, Owner: owner, SecretFiles: true,
		}})
	}
	if a.user != "" {
		u, err := parseUser(a.user)
		if err != nil {
			return s, err
		}
		s.User = &u
	}
	for _, d := range a.owns {
		if s.User == nil {
			return s, usagef("--own %s needs --user", d)
		}
		if !path.IsAbs(d) {
			return s, usagef("--own %q is not an absolute path", d)
		}
		s.Owns = append(s.Owns, d)
	}
	for _, kv := range a.env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return s, usagef("--env %q: want K=V", kv)
		}
		s.Env = append(s.Env, kv)
	}
	for _, kv := range a.labels {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return s, usagef("--label %q: want K=V", kv)
		}
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.Labels[k] = v
	}
	for _, p := range a.ports {
		ps, err := assemble.ParsePort(p)
		if err != nil {
			return s, usagef("--port: %v", err)
		}
		s.Ports = append(s.Ports, ps)
	}
	for _, v := range a.volumes {
		if !path.IsAbs(v) {
			return s, usagef("--volume %q is not an absolute path", v)
		}
		s.Volumes = append(s.Volumes, v)
	}
	if a.workdir != "" && !path.IsAbs(a.workdir) {
		return s, usagef("--workdir %q is not an absolute path", a.workdir)
	}
	s.Policy.MaxLayers = c.maxLayers
	c.relax.Apply(&s)
	if err := s.CheckSecrets(); err != nil {
		return s, usagef("--%v", err)
	}
	if a.healthcheck != "" {
		s.Healthcheck = &manifests.Healthcheck{Test: manifests.ShellOrExec(a.healthcheck), Interval: a.hcInterval, Timeout: a.hcTimeout}
	} else if a.hcInterval != 0 || a.hcTimeout != 0 {
		return s, usagef("--healthcheck-interval and --healthcheck-timeout need --healthcheck")
	}
	return s, nil
}

// imageName names the image in --output references: --name, else the last
// part of the --push repository, else of the base.
func (a *appendFlags) imageName(push string) string {
	if a.name != "" {
		return a.name
	}
	ref := push
	if ref == "" {
		ref = a.base
	}
	if dir, ok := strings.CutPrefix(ref, "oci:"); ok {
		return path.Base(strings.SplitN(dir, ":", 2)[0])
	}
	if r, err := name.ParseReference(ref); err == nil {
		return path.Base(r.Context().RepositoryStr())
	}
	return "image"
}

func parseUser(s string) (layers.User, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 2 && len(parts) != 4 {
		return layers.User{}, usagef("--user %q: want NAME:UID or NAME:UID:GROUP:GID", s)
	}
	uid, err := strconv.Atoi(parts[1])
	if err != nil {
		return layers.User{}, usagef("--user %q: uid %q is not a number", s, parts[1])
	}
	u := layers.User{Name: parts[0], UID: uid, Group: parts[0], GID: uid}
	if len(parts) == 4 {
		u.Group = parts[2]
		if u.GID, err = strconv.Atoi(parts[3]); err != nil {
			return layers.User{}, usagef("--user %q: gid %q is not a number", s, parts[3])
		}
	}
	if err := assemble.ValidateUser(u); err != nil {
		return layers.User{}, usagef("--user: %v", err)
	}
	return u, nil
}
