package verify

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/gantry-dev/gantry/layers"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// entry is what the comparison sees of a tar member.
type entry struct {
	hdr *tar.Header
	sum string // of a regular file's content
}

type tarStream struct {
	tr   *tar.Reader
	done bool
}

func (s *tarStream) next() (*entry, error) {
	if s.done {
		return nil, nil
	}
	h, err := s.tr.Next()
	if errors.Is(err, io.EOF) {
		s.done = true
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	e := &entry{hdr: h}
	if h.Typeflag == tar.TypeReg {
		sum := sha256.New()
		if _, err := io.Copy(sum, s.tr); err != nil {
			return nil, err
		}
		e.sum = "sha256:" + hex.EncodeToString(sum.Sum(nil))
	}
	return e, nil
}

// firstPathDifference reads two layers side by side (gantry writes entries
// sorted by name) and returns the first path whose entry differs, and how.
func firstPathDifference(ctx context.Context, local, at v1.Layer) (string, string, error) {
	lr, err := local.Uncompressed()
	if err != nil {
		return "", "", err
	}
	defer lr.Close()
	rr, err := at.Uncompressed()
	if err != nil {
		return "", "", err
	}
	defer rr.Close()
	a := &tarStream{tr: tar.NewReader(layers.ContextReader(ctx, lr))}
	b := &tarStream{tr: tar.NewReader(layers.ContextReader(ctx, rr))}
	for {
		ea, err := a.next()
		if err != nil {
			return "", "", fmt.Errorf("reading the rebuilt layer: %w", err)
		}
		eb, err := b.next()
		if err != nil {
			return "", "", fmt.Errorf("reading the layer at the reference: %w", err)
		}
		switch {
		case ea == nil && eb == nil:
			return "", "", nil
		case eb == nil || ea != nil && ea.hdr.Name < eb.hdr.Name:
			return clean(ea.hdr.Name), "only in the rebuild", nil
		case ea == nil || eb.hdr.Name < ea.hdr.Name:
			return clean(eb.hdr.Name), "only at the reference", nil
		}
		if what := entryDifference(ea, eb); what != "" {
			return clean(ea.hdr.Name), what, nil
		}
	}
}

func clean(name string) string {
	for len(name) > 0 && (name[len(name)-1] == '/') {
		name = name[:len(name)-1]
	}
	return name
}

// entryDifference says how two entries of the same name differ, or "".
func entryDifference(a, b *entry) string {
	ha, hb := a.hdr, b.hdr
	switch {
	case ha.Typeflag != hb.Typeflag:
		return fmt.Sprintf("type %c rebuilt, %c at the reference", ha.Typeflag, hb.Typeflag)
	case a.sum != b.sum:
		return fmt.Sprintf("content %s (%d bytes) rebuilt, %s (%d bytes) at the reference", a.sum, ha.Size, b.sum, hb.Size)
	case ha.Mode != hb.Mode:
		return fmt.Sprintf("mode %04o rebuilt, %04o at the reference", ha.Mode, hb.Mode)
	case ha.Uid != hb.Uid || ha.Gid != hb.Gid:
		return fmt.Sprintf("owner %d:%d rebuilt, %d:%d at the reference", ha.Uid, ha.Gid, hb.Uid, hb.Gid)
	case ha.Linkname != hb.Linkname:
		return fmt.Sprintf("link to %q rebuilt, %q at the reference", ha.Linkname, hb.Linkname)
	case !ha.ModTime.Equal(hb.ModTime):
		return fmt.Sprintf("mtime %s rebuilt, %s at the reference (SOURCE_DATE_EPOCH?)", ha.ModTime.UTC().Format("2006-01-02T15:04:05Z"), hb.ModTime.UTC().Format("2006-01-02T15:04:05Z"))
	}
	return ""
}
