package debian

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/klauspost/compress/gzip"
	"github.com/ulikunitz/xz"
)

// maxIndex bounds an uncompressed Packages index (bookworm main amd64 is
// some 45 MiB).
const maxIndex = 512 << 20

// Index is one archive's verified Release and the packages it lists for
// one architecture (and "all").
type Index struct {
	Archive *Archive
	// ReleaseDigest is the sha256 of the InRelease (or Release) file.
	ReleaseDigest string
	Packages      []*Package
}

// loadIndex fetches and verifies the archive's Release file for arch and
// the Packages indexes of its components.
func (f *fetcher) loadIndex(ctx context.Context, a *Archive, arch string, keys openpgp.KeyRing) (*Index, error) {
	text, digest, err := f.release(ctx, a, keys)
	if err != nil {
		return nil, err
	}
	rel, err := ParseRelease(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.distURL("Release"), err)
	}
	if !rel.ValidUntil.IsZero() && time.Now().After(rel.ValidUntil) && !a.AnyAge {
		return nil, fmt.Errorf("%s: the Release file expired on %s (Valid-Until): an old copy, or a mirror that stopped updating; for a snapshot.debian.org source add [check-valid-until=no]", a.distURL("Release"), rel.ValidUntil.Format(time.RFC1123))
	}
	ix := &Index{Archive: a, ReleaseDigest: digest}
	for _, comp := range a.Components {
		found := false
		for _, ar := range []string{arch, "all"} {
			name, fh, ok := packagesFile(rel, comp, ar)
			if !ok {
				continue
			}
			found = found || ar == arch
			pkgs, err := f.packages(ctx, a, name, fh, rel.ByHash)
			if err != nil {
				return nil, err
			}
			ix.Packages = append(ix.Packages, pkgs...)
		}
		if !found {
			return nil, fmt.Errorf("%s: its Release lists no Packages index for %s/%s (architectures: %s)", a, comp, arch, strings.Join(rel.Archs, " "))
		}
	}
	return ix, nil
}

// packagesFile picks the Packages index of comp/arch the Release lists:
// xz, else gzip, else uncompressed.
func packagesFile(rel *Release, comp, arch string) (string, FileHash, bool) {
	for _, ext := range []string{".xz", ".gz", ""} {
		name := comp + "/binary-" + arch + "/Packages" + ext
		if fh, ok := rel.Files[name]; ok {
			return name, fh, true
		}
	}
	return "", FileHash{}, false
}

func (a *Archive) distURL(name string) string {
	return a.URI + "/dists/" + a.Suite + "/" + name
}

// release fetches InRelease, or Release and Release.gpg when the archive
// has no InRelease, and verifies the signature. It returns the signed
// text and the sha256 of the file fetched.
func (f *fetcher) release(ctx context.Context, a *Archive, keys openpgp.KeyRing) ([]byte, string, error) {
	data, err := f.small(ctx, a.distURL("InRelease"))
	if err == nil {
		text, err := VerifyInRelease(data, keys)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", a.distURL("InRelease"), err)
		}
		return text, sha256Hex(data), nil
	}
	if !errors.Is(err, errNotFound) {
		return nil, "", err
	}
	text, err := f.small(ctx, a.distURL("Release"))
	if err != nil {
		return nil, "", err
	}
	sig, err := f.small(ctx, a.distURL("Release.gpg"))
	if err != nil {
		return nil, "", err
	}
	if err := VerifyDetached(text, sig, keys); err != nil {
		return nil, "", fmt.Errorf("%s: %w", a.distURL("Release"), err)
	}
	return text, sha256Hex(text), nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// packages fetches (or finds in the cache) one Packages index, checked
// against the Release's hash, and parses it.
func (f *fetcher) packages(ctx context.Context, a *Archive, name string, fh FileHash, byHash bool) ([]*Package, error) {
	url := a.distURL(name)
	if byHash {
		dir := name[:strings.LastIndexByte(name, '/')]
		url = a.distURL(dir + "/by-hash/SHA256/" + fh.SHA256)
	}
	if _, err := f.blob(ctx, url, fh.SHA256, fh.Size); err != nil {
		return nil, err
	}
	file, err := f.verified(fh.SHA256)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	var r io.Reader = file
	switch {
	case strings.HasSuffix(name, ".xz"):
		if r, err = xz.NewReader(file); err != nil {
			return nil, fmt.Errorf("%s: %w", url, err)
		}
	case strings.HasSuffix(name, ".gz"):
		zr, err := gzip.NewReader(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", url, err)
		}
		defer zr.Close()
		r = zr
	}
	data, err := io.ReadAll(io.LimitReader(r, maxIndex+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", url, err)
	}
	if len(data) > maxIndex {
		return nil, fmt.Errorf("%s: over %d MiB uncompressed", url, maxIndex>>20)
	}
	// the whole file is read, so its hash has been checked
	if _, err := io.Copy(io.Discard, file); err != nil {
		return nil, err
	}
	paras, err := ParseControl(bytes.NewReader(data), url, false)
	if err != nil {
		return nil, err
	}
	pkgs, err := ParsePackages(paras, url, true)
	if err != nil {
		return nil, err
	}
	for _, p := range pkgs {
		p.Origin = a
	}
	return pkgs, nil
}
