package layers

import (
	"bytes"
	"fmt"
	"path"
	"strings"

	"github.com/moby/patternmatcher"
)

// ErrSecret marks a file refused because it looks like a secret.
var ErrSecret = fmt.Errorf("looks like a secret")

// secretNames are files refused by name alone.
func secretName(rel string, dir bool) string {
	base := path.Base(rel)
	switch {
	case dir && base == ".git":
		return "a git repository (history can hold secrets)"
	case dir:
		return ""
	case envFile(base):
		return "an environment file"
	case sshPrivateKey(base):
		return "an SSH private key"
	case credentialsFile(rel, base):
		return "a credentials file"
	case registryCredentials(rel, base):
		return "registry credentials"
	}
	return ""
}

// envFile: .env and .env.<anything>, but for the examples committed with
// code (.env.example, .env.sample, .env.template).
func envFile(base string) bool {
	if base == ".env" {
		return true
	}
	return strings.HasPrefix(base, ".env.") && !strings.HasSuffix(base, ".example") && !strings.HasSuffix(base, ".sample") && !strings.HasSuffix(base, ".template")
}

// sshPrivateKey: the default names of SSH private keys.
func sshPrivateKey(base string) bool {
	switch base {
	case "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519":
		return true
	}
	return false
}

// credentialsFile: netrc, git's credential store, AWS credentials.
func credentialsFile(rel, base string) bool {
	return base == ".netrc" || base == ".git-credentials" || rel == ".aws/credentials" || strings.HasSuffix(rel, "/.aws/credentials")
}

// registryCredentials: a Kubernetes pull secret or a Docker client config.
func registryCredentials(rel, base string) bool {
	return base == ".dockerconfigjson" || base == "config.json" && strings.HasSuffix(path.Dir(rel), ".docker")
}

// secretContentCandidate reports files whose content decides (keys and
// package-manager configs), by name alone: the builder reads every such
// file it writes, whatever the Spec says, so the cache record holds what
// their content is and the guard can be applied on a hit as on a miss.
func secretContentCandidate(rel string) bool {
	base := path.Base(rel)
	switch path.Ext(base) {
	case ".pem", ".key", ".p8":
		return true
	}
	return base == ".npmrc" || base == ".pypirc"
}

// markSecret sets what the builder does with e's content: scan it (by name),
// and refuse it if it is a secret (the guard is on and no pattern allows it).
func (s *Spec) markSecret(e *Entry, rel string) {
	e.secretScan = secretContentCandidate(rel)
	e.secretRefuse = e.secretScan && s.SecretFiles && !s.allowed(rel)
}

// SecretFinding is a file whose content looked like a secret when its layer
// was built; the cache record keeps them.
type SecretFinding struct {
	Name string `json:"name"` // the entry's name in the image
	Why  string `json:"why"`  // "a private key", ...
}

func secretError(hostPath, why string) error {
	return fmt.Errorf("layer source %s %w (it holds %s): exclude it, or allow it with allowSecretFiles / --allow-secret-file", hostPath, ErrSecret, why)
}

// checkSecretFindings applies the guard, as the entries' Spec sets it now,
// to what the content scan found (on a hit, when the layer was built).
func checkSecretFindings(entries []Entry, found []SecretFinding) error {
	if len(found) == 0 {
		return nil
	}
	byName := make(map[string]*Entry, len(entries))
	for i := range entries {
		byName[entries[i].Name] = &entries[i]
	}
	for _, f := range found {
		if e := byName[f.Name]; e != nil && e.secretRefuse {
			return secretError(e.Source, f.Why)
		}
	}
	return nil
}

// secretContent says why data (of file base) is a secret, or "".
func secretContent(base string, data []byte) string {
	switch {
	case bytes.Contains(data, []byte("PRIVATE KEY-----")):
		return "a private key"
	case base == ".npmrc" && (bytes.Contains(data, []byte("_authToken")) || bytes.Contains(data, []byte("_auth=")) || bytes.Contains(data, []byte("_password"))):
		return "an npm token"
	case base == ".pypirc" && (bytes.Contains(data, []byte("password")) || bytes.Contains(data, []byte("pypi-"))):
		return "a PyPI password or token"
	}
	return ""
}

func (s *Spec) compileAllow() error {
	if s.allowMatcher != nil || len(s.AllowSecretFiles) == 0 {
		return nil
	}
	m, err := patternmatcher.New(s.AllowSecretFiles)
	if err != nil {
		return fmt.Errorf("allowSecretFiles patterns %q: %w", s.AllowSecretFiles, err)
	}
	s.allowMatcher = m
	return nil
}

func (s *Spec) allowed(rel string) bool {
	if s.allowMatcher == nil {
		return false
	}
	ok, err := s.allowMatcher.MatchesOrParentMatches(rel)
	return err == nil && ok
}

func (s *Spec) checkSecretName(hostPath, rel string, dir bool) error {
	if !s.SecretFiles {
		return nil
	}
	if why := secretName(rel, dir); why != "" && !s.allowed(rel) {
		return fmt.Errorf("layer source %s %w (%s): exclude it, add it to .gantryignore, or allow it with allowSecretFiles / --allow-secret-file", hostPath, ErrSecret, why)
	}
	return nil
}
