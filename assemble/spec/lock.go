package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// LockFileName is the lock file's name, beside the config file.
const LockFileName = "gantry.lock"

// LockFile pins each image's base to the digests it resolved to, so a
// build with --locked is the same build even after nginx:alpine moves.
type LockFile struct {
	Version int                   `json:"version"`
	Images  map[string]LockedBase `json:"images"`
}

// LockedBase is one image's pinned base.
type LockedBase struct {
	// Base is the reference as the config file (or --base) gives it.
	Base      string `json:"base"`
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	// Platforms maps os/arch[/variant] to that platform's manifest digest.
	Platforms map[string]string `json:"platforms"`
	// Debian pins each debian: layer's packages: layer name → platform →
	// what was installed.
	Debian map[string]map[string]DebianLock `json:"debian,omitempty"`
}

// LockPath is the lock file for a config file.
func LockPath(configFile string) string {
	return filepath.Join(filepath.Dir(configFile), LockFileName)
}

// ReadLock reads a lock file.
func ReadLock(file string) (*LockFile, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s does not exist: run gantry lock to create it", file)
	}
	if err != nil {
		return nil, fmt.Errorf("reading lock file: %w", err)
	}
	var l LockFile
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%s is not a valid lock file (%v): run gantry lock --update", file, err)
	}
	if l.Version != 1 {
		return nil, fmt.Errorf("%s has version %d; this gantry reads version 1", file, l.Version)
	}
	return &l, nil
}

// Write writes the lock file atomically, with sorted keys.
func (l *LockFile) Write(file string) error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing lock file: %w", err)
	}
	if err := os.Rename(tmp, file); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing lock file: %w", err)
	}
	return nil
}

// Locked is s's entry for a lock file, from what its base resolved to.
func (s *ImageSpec) Locked(digest v1.Hash, mediaType string, platforms map[string]string) LockedBase {
	return LockedBase{Base: s.baseAsWritten(), Digest: digest.String(), MediaType: mediaType, Platforms: platforms}
}

// ApplyLock pins every spec's base to the lock's digest, failing if the
// lock lacks an image or was made for another base.
func ApplyLock(specs []ImageSpec, l *LockFile, file string) error {
	for i := range specs {
		s := &specs[i]
		lb, ok := l.Images[s.Name]
		if !ok {
			return fmt.Errorf("%s is stale: it has no entry for image %s; run gantry lock --update", file, s.Name)
		}
		if lb.Base != s.baseAsWritten() {
			return fmt.Errorf("%s is stale for image %s: it pins base %s but the build uses %s; run gantry lock --update", file, s.Name, lb.Base, s.baseAsWritten())
		}
		h, err := v1.NewHash(lb.Digest)
		if err != nil {
			return fmt.Errorf("%s: image %s: digest %q: %w", file, s.Name, lb.Digest, err)
		}
		s.Pin = &Pin{Digest: h, Platforms: lb.Platforms}
		if err := applyDebianLock(s, lb, file); err != nil {
			return err
		}
	}
	return nil
}

// Pin fixes a base to a digest (from the lock file).
type Pin struct {
	Digest    v1.Hash
	Platforms map[string]string
}

// Check verifies what base ref resolved to — its digest and each platform's
// (os/arch[/variant] → digest) — against the pin.
func (p *Pin) Check(ref string, digest v1.Hash, platforms map[string]v1.Hash) error {
	if digest != p.Digest {
		return fmt.Errorf("base %s resolved to %s, but the lock pins %s", ref, digest, p.Digest)
	}
	for _, ps := range slices.Sorted(maps.Keys(platforms)) {
		d := platforms[ps]
		if want, ok := p.Platforms[ps]; !ok || want != d.String() {
			return fmt.Errorf("base %s platform %s is %s, but the lock pins %q; run gantry lock --update", ref, ps, d, want)
		}
	}
	return nil
}
