package assemble

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/gantry-dev/gantry/layers"
)

// imageFS looks paths up in the image being built: the new layers'
// entries over the base's filesystem, following symlinks in either.
type imageFS struct {
	base  *layers.BaseFS
	upper map[string]layers.Entry
}

// find returns what name is in the image, symlinks followed: its type and
// mode, and whether it exists.
func (f imageFS) find(ctx context.Context, name string) (typ byte, mode int64, ok bool, err error) {
	p := strings.Trim(path.Clean("/"+name), "/")
	for hop := 0; hop < 40; hop++ {
		if e, found := f.upper[p]; found {
			if e.Type != tar.TypeSymlink {
				return e.Type, e.Mode, true, nil
			}
			p = linkTarget(p, e.Linkname)
			continue
		}
		r, err := f.base.Resolve(ctx, p)
		if err != nil {
			return 0, 0, false, err
		}
		if _, found := f.upper[r]; found && r != p {
			p = r
			continue
		}
		bf, found, err := f.base.Lookup(ctx, r)
		if err != nil || !found {
			return 0, 0, false, err
		}
		return bf.Type, bf.Mode, true, nil
	}
	return 0, 0, false, fmt.Errorf("/%s: too many symlinks", name)
}

func linkTarget(p, link string) string {
	if path.IsAbs(link) {
		return strings.Trim(path.Clean(link), "/")
	}
	return strings.Trim(path.Clean("/"+path.Join(path.Dir(p), link)), "/")
}

// lookPath finds program as the image's shell would: a path as it is
// (relative to dir), else in each directory of PATH; an executable
// regular file.
func (f imageFS) lookPath(ctx context.Context, program, pathEnv, dir string) (string, bool, error) {
	var candidates []string
	switch {
	case strings.HasPrefix(program, "/"):
		candidates = []string{program}
	case strings.Contains(program, "/"):
		candidates = []string{path.Join("/", dir, program)}
	default:
		for _, d := range strings.Split(pathEnv, ":") {
			if d != "" {
				candidates = append(candidates, path.Join("/", d, program))
			}
		}
	}
	for _, c := range candidates {
		typ, mode, ok, err := f.find(ctx, c)
		if err != nil {
			return "", false, err
		}
		if ok && typ == tar.TypeReg && mode&0o111 != 0 {
			return c, true, nil
		}
	}
	return "", false, nil
}

// shellBuiltins are words a shell runs itself: a command line starting
// with one needs no program but the shell.
var shellBuiltins = map[string]bool{
	"[": true, "test": true, "true": true, "false": true, "exit": true, "echo": true, "printf": true, "cd": true,
	"set": true, ":": true, ".": true, "if": true, "for": true, "while": true, "case": true, "!": true, "{": true, "(": true,
	"command": true, "kill": true, "read": true, "trap": true, "wait": true, "eval": true,
}

// shellProgram is the program a shell command line starts, or "" when it
// starts with a builtin (or cannot be told without running a shell).
func shellProgram(line string) string {
	for _, w := range strings.Fields(line) {
		switch {
		case w == "exec":
			continue
		case strings.Contains(w, "=") && !strings.HasPrefix(w, "="): // VAR=value
			continue
		case shellBuiltins[w], strings.ContainsAny(w, "$`'\"(|;&<>"):
			return ""
		}
		return w
	}
	return ""
}

// fallbacks are programs a healthcheck commonly uses; the error names the
// ones the image has.
var fallbacks = []string{"wget", "curl", "python3", "python", "busybox", "nc"}

// programs refuses an image whose healthcheck or entrypoint/cmd names a
// program it does not have (resolved through the config's PATH and
// symlinks, executable; for the shell form /bin/sh too), unless allowed.
// Only what the build sets is checked (healthcheck; entrypoint or cmd):
// the base's own commands are the base's, and checking them would cost
// reading its layers on every push.
func (g gates) programs(ctx context.Context, fsys imageFS, config []byte, platform string, healthcheck, run bool) error {
	if g.policy.AllowMissingPrograms || !healthcheck && !run {
		return nil
	}
	c, err := readRunConfig(config)
	if err != nil {
		return err
	}
	pathEnv := c.path()
	uses := c.uses(healthcheck, run)
	for _, u := range uses {
		_, ok, err := fsys.lookPath(ctx, u.program, pathEnv, c.WorkingDir)
		if err != nil {
			return fmt.Errorf("looking for %s of %s: %w", u.program, u.what, err)
		}
		if !ok {
			return fmt.Errorf("%s runs %s, which %s does not have (PATH %s)%s; fix the command, add the program in a layer, or allow it with allowMissingPrograms / --allow-missing-program",
				u.what, u.program, platform, pathEnv, g.offers(ctx, fsys, pathEnv, c.WorkingDir, u.program))
		}
	}
	return nil
}

// runConfig is what the program gate reads of an image config.
type runConfig struct {
	Env         []string
	Entrypoint  []string
	Cmd         []string
	WorkingDir  string
	Healthcheck *struct{ Test []string }
}

func readRunConfig(config []byte) (runConfig, error) {
	var c struct {
		Config runConfig `json:"config"`
	}
	if err := json.Unmarshal(config, &c); err != nil {
		return runConfig{}, fmt.Errorf("reading config: %w", err)
	}
	return c.Config, nil
}

// path is the config's PATH, or the shell's default.
func (c runConfig) path() string {
	p := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range c.Env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			p = v
		}
	}
	return p
}

// programUse is a program the image must have, and what runs it.
type programUse struct{ what, program string }

// uses are the programs the entrypoint/cmd (when run) and the healthcheck
// (when healthcheck) need.
func (c runConfig) uses(healthcheck, run bool) []programUse {
	var uses []programUse
	if cmdline := append(append([]string(nil), c.Entrypoint...), c.Cmd...); run && len(cmdline) > 0 {
		uses = append(uses, programUse{"the entrypoint/cmd", cmdline[0]})
	}
	if hc := c.Healthcheck; healthcheck && hc != nil && len(hc.Test) > 1 {
		switch hc.Test[0] {
		case "CMD":
			uses = append(uses, programUse{"the healthcheck", hc.Test[1]})
		case "CMD-SHELL":
			uses = append(uses, programUse{"the healthcheck (shell form)", "/bin/sh"})
			if p := shellProgram(hc.Test[1]); p != "" {
				uses = append(uses, programUse{"the healthcheck", p})
			}
		}
	}
	return uses
}

// offers says which of the usual fallbacks the image has.
func (g gates) offers(ctx context.Context, fsys imageFS, pathEnv, dir, missing string) string {
	var have []string
	for _, p := range fallbacks {
		if p == path.Base(missing) {
			continue
		}
		if at, ok, err := fsys.lookPath(ctx, p, pathEnv, dir); err == nil && ok {
			have = append(have, at)
		}
	}
	if len(have) == 0 {
		return ""
	}
	return "; it has " + strings.Join(have, ", ")
}
