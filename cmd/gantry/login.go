package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/spf13/cobra"

	"github.com/gantry-dev/gantry/assemble"
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

// serverAddress is how config.json names a registry (Docker Hub has its
// historical URL).
func serverAddress(reg string) (string, error) {
	r, err := name.NewRegistry(reg)
	if err != nil {
		return "", usagef("%q is not a registry host", reg)
	}
	if r.RegistryStr() == name.DefaultRegistry {
		return authn.DefaultAuthKey, nil
	}
	return r.RegistryStr(), nil
}

func newLogin(stdin io.Reader, stdout, stderr io.Writer, getenv env) *cobra.Command {
	var (
		user          string
		passwordStdin bool
		insecure      bool
		caCert        string
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
			pw, err := io.ReadAll(io.LimitReader(stdin, 64<<10))
			if err != nil {
				return fmt.Errorf("reading the password from stdin: %w", err)
			}
			password := strings.TrimRight(string(pw), "\r\n")
			if password == "" {
				return usagef("--password-stdin: stdin was empty")
			}
			addr, err := serverAddress(args[0])
			if err != nil {
				return err
			}
			if err := checkLogin(cmd.Context(), args[0], user, password, insecure, caCert); err != nil {
				return err
			}
			cf, err := dockerConfig(getenv)
			if err != nil {
				return err
			}
			if err := cf.GetCredentialsStore(addr).Store(types.AuthConfig{ServerAddress: addr, Username: user, Password: password}); err != nil {
				return fmt.Errorf("saving credentials for %s: %w", args[0], err)
			}
			if err := cf.Save(); err != nil {
				return fmt.Errorf("saving %s: %w", cf.Filename, err)
			}
			fmt.Fprintf(stderr, "Login to %s succeeded; credentials saved in %s\n", args[0], cf.Filename)
			return nil
		},
	}
	cmd.Flags().StringVarP(&user, "username", "u", "", "user name")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password or token from stdin")
	cmd.Flags().BoolVar(&insecure, "insecure", false, "allow plain HTTP and unverified TLS")
	cmd.Flags().StringVar(&caCert, "ca-cert", "", "PEM file of CA certificates to trust for this registry")
	return cmd
}

// checkLogin asks the registry's /v2/ endpoint with the credentials, the way
// docker login does (Basic, or a Bearer token from the registry's realm).
func checkLogin(ctx context.Context, reg, user, password string, insecure bool, caCert string) error {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.NewRegistry(reg, opts...)
	if err != nil {
		return usagef("%q is not a registry host", reg)
	}
	base, err := assemble.NewTransport(assemble.Options{Insecure: insecure, CACert: caCert})
	if err != nil {
		return usageError{err}
	}
	auth := authn.FromConfig(authn.AuthConfig{Username: user, Password: password})
	rt, err := transport.NewWithContext(ctx, r, auth, base, []string{r.Scope("")})
	if err != nil {
		return fmt.Errorf("logging in to %s: %w", reg, assemble.RegistryErrorFor(err, reg))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.Scheme()+"://"+r.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return fmt.Errorf("logging in to %s: %w", reg, assemble.RegistryErrorFor(err, reg))
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &assemble.RegistryError{Err: fmt.Errorf("%d %s on %s", resp.StatusCode, strings.ToLower(http.StatusText(resp.StatusCode)), reg), Hint: "check the user name and password or token"}
	}
	return nil
}

func newLogout(stderr io.Writer, getenv env) *cobra.Command {
	return &cobra.Command{
		Use:   "logout REGISTRY",
		Short: "Remove a registry's credentials from ~/.docker/config.json",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := serverAddress(args[0])
			if err != nil {
				return err
			}
			cf, err := dockerConfig(getenv)
			if err != nil {
				return err
			}
			if err := cf.GetCredentialsStore(addr).Erase(addr); err != nil {
				return fmt.Errorf("removing credentials for %s: %w", args[0], err)
			}
			if err := cf.Save(); err != nil {
				return fmt.Errorf("saving %s: %w", cf.Filename, err)
			}
			fmt.Fprintf(stderr, "Removed the credentials for %s from %s\n", args[0], cf.Filename)
			return nil
		},
	}
}
