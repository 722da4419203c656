package debian

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
)

// ReadKeyring reads OpenPGP public keys, binary (.gpg) or armored (.asc).
func ReadKeyring(data []byte, name string) (openpgp.EntityList, error) {
	var (
		keys openpgp.EntityList
		err  error
	)
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN PGP")) {
		keys, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	} else {
		keys, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("reading keyring %s: %w", name, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("keyring %s holds no keys", name)
	}
	return keys, nil
}

// VerifyInRelease checks a clearsigned InRelease file against keys and
// returns the Release text it signs.
func VerifyInRelease(data []byte, keys openpgp.KeyRing) ([]byte, error) {
	b, rest := clearsign.Decode(data)
	if b == nil {
		return nil, errors.New("InRelease is not a clearsigned message")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("InRelease has data after its signature")
	}
	if _, err := b.VerifySignature(keys, nil); err != nil {
		return nil, signatureError(err)
	}
	return b.Plaintext, nil
}

// VerifyDetached checks Release against its detached signature
// (Release.gpg, armored or binary).
func VerifyDetached(release, sig []byte, keys openpgp.KeyRing) error {
	var err error
	if bytes.HasPrefix(bytes.TrimSpace(sig), []byte("-----BEGIN PGP")) {
		var blk *armor.Block
		if blk, err = armor.Decode(bytes.NewReader(sig)); err != nil {
			return fmt.Errorf("Release.gpg: %w", err)
		}
		_, err = openpgp.CheckDetachedSignature(keys, bytes.NewReader(release), blk.Body, nil)
	} else {
		_, err = openpgp.CheckDetachedSignature(keys, bytes.NewReader(release), bytes.NewReader(sig), nil)
	}
	if err != nil {
		return signatureError(err)
	}
	return nil
}

func signatureError(err error) error {
	if errors.Is(err, pgperrors.ErrUnknownIssuer) {
		return errors.New("the Release file is signed by a key the keyring does not have (give the archive's key with keyring: or signed-by=)")
	}
	return fmt.Errorf("bad Release signature: %w", err)
}

// Release is what gantry reads of a Release file.
type Release struct {
	Suite, Codename string
	Archs           []string
	Components      []string
	// Files maps a path below the suite ("main/binary-arm64/Packages.xz")
	// to its SHA256 and size.
	Files map[string]FileHash
	// ByHash says indexes can be fetched by their hash (Acquire-By-Hash).
	ByHash bool
	// ValidUntil is when the Release file expires (zero: never).
	ValidUntil time.Time
}

// FileHash is a SHA256 and size from a Release file.
type FileHash struct {
	SHA256 string
	Size   int64
}

// ParseRelease reads a Release file's fields and SHA256 list.
func ParseRelease(data []byte) (*Release, error) {
	paras, err := ParseControl(bytes.NewReader(data), "Release", false)
	if err != nil {
		return nil, err
	}
	if len(paras) != 1 {
		return nil, fmt.Errorf("Release has %d paragraphs, want 1", len(paras))
	}
	p := paras[0]
	r := &Release{Suite: p.Get("Suite"), Codename: p.Get("Codename"), Archs: strings.Fields(p.Get("Architectures")),
		Components: strings.Fields(p.Get("Components")), Files: map[string]FileHash{},
		ByHash: strings.EqualFold(p.Get("Acquire-By-Hash"), "yes")}
	for _, l := range Lines(p.Get("SHA256")) {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || !isSHA256(strings.ToLower(f[0])) {
			return nil, fmt.Errorf("Release: bad SHA256 line %q", l)
		}
		r.Files[f[2]] = FileHash{SHA256: strings.ToLower(f[0]), Size: n}
	}
	if len(r.Files) == 0 {
		return nil, errors.New("Release has no SHA256 file list")
	}
	if v := p.Get("Valid-Until"); v != "" {
		if r.ValidUntil, err = time.Parse(time.RFC1123, v); err != nil {
			return nil, fmt.Errorf("Release: Valid-Until %q is not a date", v)
		}
	}
	return r, nil
}
