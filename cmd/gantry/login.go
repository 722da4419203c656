package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
	"github.com/gantry-dev/gantry/assemble/registry"
	"github.com/spf13/cobra"
)

// dockerConfig loads the docker config.json other tools use: in
// $DOCKER_CONFIG, else ~/.docker.
func dockerConfig(getenv env) (*configfile.ConfigFile, error) {
	dir := getenv.get("DOCKER_CONFIG")
	if dir == "" {
		dir = filepath.Join(getenv.get("HOME"), ".docker")
	}
	cf, err := config.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(dir, config.ConfigFileName), err)
	}
	return cf, nil
}

func (a *app) loginCmd() *cobra.Command {
	var (
		user          string
		passwordStdin bool
	)
	cmd := &cobra.Command{
		Use:   "login REGISTRY -u USER --password-stdin",
		Short: "Log in to a registry, saving credentials in ~/.docker/config.json",
		Long: `Log in to a registry. The credentials are checked against the registry and
saved where docker, crane and skopeo read them: ~/.docker/config.json (or
$DOCKER_CONFIG), in its credsStore when one is configured.`,
		Example: `  echo "$GHCR_TOKEN" | gantry login ghcr.io -u "$GITHUB_ACTOR" --password-stdin`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if user == "" || !passwordStdin {
				return usagef("give -u USER and --password-stdin (a password on the command line would be in the shell history)")
			}
			pw, err := io.ReadAll(io.LimitReader(a.stdin, 64<<10))
			if err != nil {
				return fmt.Errorf("reading the password from stdin: %w", err)
			}
			password := strings.TrimRight(string(pw), "\r\n")
			if password == "" {
				return usagef("--password-stdin: stdin was empty")
			}
			addr, err := registry.ConfigKey(args[0])
			if err != nil {
				return usageError{err}
			}
			c, err := registry.New(registry.Options{Insecure: a.registry.insecure, CACert: a.registry.caCert, UserAgent: "gantry/" + version()})
			if err != nil {
				return usageError{err}
			}
			if err := c.CheckLogin(cmd.Context(), args[0], user, password); err != nil {
				return err
			}
			cf, err := dockerConfig(a.getenv)
			if err != nil {
				return err
			}
			if err := cf.GetCredentialsStore(addr).Store(types.AuthConfig{ServerAddress: addr, Username: user, Password: password}); err != nil {
				return fmt.Errorf("saving credentials for %s: %w", args[0], err)
			}
			if err := cf.Save(); err != nil {
				return fmt.Errorf("saving %s: %w", cf.Filename, err)
			}
			fmt.Fprintf(a.stderr, "Login to %s succeeded; credentials saved in %s\n", args[0], cf.Filename)
			return nil
		},
	}
	cmd.Flags().StringVarP(&user, "username", "u", "", "user name")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password or token from stdin")
	return cmd
}

func (a *app) logoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout REGISTRY",
		Short: "Remove a registry's credentials from ~/.docker/config.json",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := registry.ConfigKey(args[0])
			if err != nil {
				return usageError{err}
			}
			cf, err := dockerConfig(a.getenv)
			if err != nil {
				return err
			}
			if err := cf.GetCredentialsStore(addr).Erase(addr); err != nil {
				return fmt.Errorf("removing credentials for %s: %w", args[0], err)
			}
			if err := cf.Save(); err != nil {
				return fmt.Errorf("saving %s: %w", cf.Filename, err)
			}
			fmt.Fprintf(a.stderr, "Removed the credentials for %s from %s\n", args[0], cf.Filename)
			return nil
		},
	}
}
