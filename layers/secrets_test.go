package layers

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretGuardOnCacheHit: the content guard does not depend on the
// cache. A key built with an allow pattern, then built again without it, is
// refused although the second build is a hit; so is a layer first built with
// the guard off.
func TestSecretGuardOnCacheHit(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]file{
		"certs/server.key": {data: "-----BEGIN PRIVATE KEY-----\nMII...\n-----END PRIVATE KEY-----\n"},
		"certs/ca.pem":     {data: "-----BEGIN CERTIFICATE-----\nMII...\n"},
		".npmrc":           {data: "registry=https://registry.npmjs.org/\n"},
		"app.js":           {data: "console.log(1)"},
	})
	cache := newCache(t)
	b := &Builder{Cache: cache, MTime: testMTime}
	ctx := context.Background()
	spec := func(allow ...string) Spec {
		return Spec{Sources: []Source{{From: src, To: "/app"}}, SecretFiles: true, AllowSecretFiles: allow}
	}
	build := func(s Spec) (*Layer, error) { return b.Build(ctx, mustWalk(t, s)) }
	refused := func(step string, l *Layer, err error) {
		t.Helper()
		if !errors.Is(err, ErrSecret) || !strings.Contains(err.Error(), filepath.Join(src, "certs", "server.key")) || !strings.Contains(err.Error(), "a private key") {
			t.Errorf("%s: built %v, error %v; want the key refused, named", step, l, err)
		}
	}

	l, err := build(spec())
	refused("no allow pattern, miss", l, err)
	l, err = build(spec("certs/*.key"))
	if err != nil || l.Cached() {
		t.Fatalf("with an allow pattern: %v (cached %v)", err, l != nil && l.Cached())
	}
	l, err = build(spec())
	refused("no allow pattern, hit", l, err)
	if st := b.Stats(); st.Hits != 1 {
		t.Errorf("stats %+v: the refused build was not a hit (the test does not test the hit)", st)
	}
	l, err = build(spec("certs/*.key"))
	if err != nil || !l.Cached() {
		t.Errorf("allowed again: %v", err)
	}
	// allowed by a parent directory pattern, too
	if l, err = build(spec("certs")); err != nil || !l.Cached() {
		t.Errorf("allowed by directory: %v", err)
	}

	// Built with the guard off, then on: refused on the hit.
	off := spec()
	off.SecretFiles = false
	other := &Builder{Cache: newCache(t), MTime: testMTime}
	if _, err := other.Build(ctx, mustWalk(t, off)); err != nil {
		t.Fatalf("guard off: %v", err)
	}
	l, err = other.Build(ctx, mustWalk(t, spec()))
	refused("guard turned on, hit", l, err)
	if st := other.Stats(); st.Hits != 1 {
		t.Errorf("stats %+v, want the second build to be a hit", st)
	}
}
