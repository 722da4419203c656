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
	case base == ".env" || strings.HasPrefix(base, ".env.") && !strings.HasSuffix(base, ".example") && !strings.HasSuffix(base, ".sample") && !strings.HasSuffix(base, ".template"):
		return "an environment file"
	case base == "id_rsa" || base == "id_dsa" || base == "id_ecdsa" || base == "id_ed25519":
		return "an SSH private key"
	case base == ".netrc" || base == ".git-credentials" || rel == ".aws/credentials" || strings.HasSuffix(rel, "/.aws/credentials"):
		return "a credentials file"
	case base == ".dockerconfigjson" || base == "config.json" && strings.HasSuffix(path.Dir(rel), ".docker"):
		return "registry credentials"
	}
	return ""
}

// secretContentCandidate reports files whose content decides: keys and
// package-manager configs.
func (s *Spec) secretContentCandidate(rel string) bool {
	if !s.SecretFiles || s.allowed(rel) {
		return false
	}
	base := path.Base(rel)
	switch path.Ext(base) {
	case ".pem", ".key", ".p8":
		return true
	}
	return base == ".npmrc" || base == ".pypirc"
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
