package debian

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// BaseSources reads the base's own apt sources: /etc/apt/sources.list and
// /etc/apt/sources.list.d/*.list (one-line) and *.sources (deb822).
func BaseSources(ctx context.Context, base BaseFS) ([]*Archive, error) {
	var out []*Archive
	data, ok, err := base.ReadFile(ctx, "etc/apt/sources.list")
	if err != nil {
		return nil, fmt.Errorf("reading /etc/apt/sources.list in the base image: %w", err)
	}
	if ok {
		as, err := ParseSourcesList(data, "base image /etc/apt/sources.list")
		if err != nil {
			return nil, err
		}
		out = append(out, as...)
	}
	names, err := readDir(ctx, base, "etc/apt/sources.list.d")
	if err != nil {
		return nil, fmt.Errorf("listing /etc/apt/sources.list.d in the base image: %w", err)
	}
	sort.Strings(names)
	for _, n := range names {
		name := path.Join("etc/apt/sources.list.d", n)
		parse := ParseSourcesList
		switch {
		case strings.HasSuffix(n, ".sources"):
			parse = ParseSources
		case !strings.HasSuffix(n, ".list"):
			continue
		}
		data, ok, err := base.ReadFile(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("reading /%s in the base image: %w", name, err)
		}
		if !ok {
			continue
		}
		as, err := parse(data, "base image /"+name)
		if err != nil {
			return nil, err
		}
		out = append(out, as...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the base image has no apt sources (/etc/apt/sources.list, /etc/apt/sources.list.d): give sources:")
	}
	return out, nil
}

// keyDirs are where apt, and Debian's images, keep archive keys; without
// signed-by= a Release file may be signed by any of them.
var keyDirs = []string{"etc/apt/trusted.gpg.d", "usr/share/keyrings"}

// BaseKeys is the keyring the base trusts for a: its signed-by= (an
// inline key, or a keyring file in the base), else every key in
// /etc/apt/trusted.gpg, /etc/apt/trusted.gpg.d and /usr/share/keyrings.
func BaseKeys(ctx context.Context, base BaseFS, a *Archive) (openpgp.EntityList, error) {
	switch {
	case strings.HasPrefix(a.SignedBy, "-----BEGIN PGP"):
		return ReadKeyring([]byte(a.SignedBy), a.Where+" Signed-By")
	case a.SignedBy != "":
		var keys openpgp.EntityList
		for _, f := range strings.Split(a.SignedBy, ",") {
			k, err := baseKeyring(ctx, base, strings.TrimPrefix(f, "/"), true)
			if err != nil {
				return nil, fmt.Errorf("%s: signed-by=%s: %w", a.Where, f, err)
			}
			keys = append(keys, k...)
		}
		return keys, nil
	}
	keys, err := baseKeyring(ctx, base, "etc/apt/trusted.gpg", false)
	if err != nil {
		return nil, err
	}
	for _, dir := range keyDirs {
		names, err := readDir(ctx, base, dir)
		if err != nil {
			return nil, fmt.Errorf("listing /%s in the base image: %w", dir, err)
		}
		sort.Strings(names)
		for _, n := range names {
			if !strings.HasSuffix(n, ".gpg") && !strings.HasSuffix(n, ".asc") {
				continue
			}
			k, err := baseKeyring(ctx, base, path.Join(dir, n), false)
			if err != nil {
				return nil, err
			}
			keys = append(keys, k...)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: the base image has no archive keys (/etc/apt/trusted.gpg.d, /usr/share/keyrings): give keyring:", a.Where)
	}
	return keys, nil
}

func baseKeyring(ctx context.Context, base BaseFS, name string, must bool) (openpgp.EntityList, error) {
	data, ok, err := base.ReadFile(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("reading /%s in the base image: %w", name, err)
	}
	if !ok {
		if must {
			return nil, fmt.Errorf("the base image has no /%s", name)
		}
		return nil, nil
	}
	return ReadKeyring(data, "base image /"+name)
}
