package debian

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// maxControl bounds a .deb's control.tar member (uncompressed).
const maxControl = 64 << 20

// arReader reads the members of an ar archive (a .deb is one).
type arReader struct {
	r      *bufio.Reader
	remain int64 // of the current member, plus its padding byte
}

func newArReader(r io.Reader) (*arReader, error) {
	br := bufio.NewReader(r)
	magic := make([]byte, 8)
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != "!<arch>\n" {
		return nil, errors.New("not a .deb (no ar header)")
	}
	return &arReader{r: br}, nil
}

// next skips to the next member and returns its name and size; its content
// is then read from a.r, at most size bytes.
func (a *arReader) next() (string, int64, error) {
	if _, err := io.CopyN(io.Discard, a.r, a.remain); err != nil {
		return "", 0, fmt.Errorf("truncated ar member: %w", err)
	}
	hdr := make([]byte, 60)
	if _, err := io.ReadFull(a.r, hdr); err != nil {
		if errors.Is(err, io.EOF) {
			return "", 0, io.EOF
		}
		return "", 0, fmt.Errorf("truncated ar header: %w", err)
	}
	if string(hdr[58:60]) != "`\n" {
		return "", 0, errors.New("bad ar member header")
	}
	name := strings.TrimSuffix(strings.TrimSpace(string(hdr[0:16])), "/")
	size, err := strconv.ParseInt(strings.TrimSpace(string(hdr[48:58])), 10, 64)
	if err != nil || size < 0 {
		return "", 0, fmt.Errorf("ar member %q: bad size", name)
	}
	a.remain = size + size%2
	return name, size, nil
}

// member is the content of the current ar member, its padding left for
// next to skip.
func (a *arReader) member(size int64) io.Reader {
	return &countingReader{r: io.LimitReader(a.r, size), n: &a.remain}
}

type countingReader struct {
	r io.Reader
	n *int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n -= int64(n)
	return n, err
}

// decompressor opens a tar member by its name's extension.
func decompressor(name string, r io.Reader) (io.Reader, func(), error) {
	switch {
	case strings.HasSuffix(name, ".xz"):
		zr, err := xz.NewReader(r)
		return zr, func() {}, err
	case strings.HasSuffix(name, ".zst"):
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	case strings.HasSuffix(name, ".gz"):
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, err
		}
		return zr, func() { zr.Close() }, nil
	case strings.HasSuffix(name, ".tar"):
		return r, func() {}, nil
	}
	return nil, nil, fmt.Errorf("%s: unsupported compression (xz, zstd, gzip or none)", name)
}

// readDeb reads a .deb: its control member's files (control, md5sums,
// conffiles, maintainer scripts, triggers, ...) into memory and each
// member of its data archive through data, in order.
func readDeb(r io.Reader, data func(h *tar.Header, r io.Reader) error) (map[string][]byte, error) {
	ar, err := newArReader(r)
	if err != nil {
		return nil, err
	}
	var control map[string][]byte
	seenData := false
	for {
		name, size, err := ar.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch {
		case name == "debian-binary":
			b, _ := io.ReadAll(io.LimitReader(ar.member(size), 64))
			if !bytes.HasPrefix(b, []byte("2.")) {
				return nil, fmt.Errorf("debian-binary is %q, want 2.x", bytes.TrimSpace(b))
			}
		case strings.HasPrefix(name, "control.tar"):
			if control, err = readControl(name, ar.member(size)); err != nil {
				return nil, err
			}
		case strings.HasPrefix(name, "data.tar"):
			if err := walkTar(name, ar.member(size), data); err != nil {
				return nil, err
			}
			seenData = true
		}
	}
	if control == nil || control["control"] == nil || !seenData {
		return nil, errors.New("not a .deb: no control file or no data member")
	}
	return control, nil
}

func readControl(name string, r io.Reader) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := walkTar(name, r, func(h *tar.Header, r io.Reader) error {
		base := strings.TrimPrefix(h.Name, "./")
		if h.Typeflag != tar.TypeReg || strings.Contains(base, "/") {
			return nil
		}
		b, err := io.ReadAll(io.LimitReader(r, maxControl+1))
		if err != nil {
			return err
		}
		if len(b) > maxControl {
			return fmt.Errorf("%s: %s is over %d MiB", name, base, maxControl>>20)
		}
		out[base] = b
		return nil
	})
	return out, err
}

func walkTar(name string, r io.Reader, fn func(*tar.Header, io.Reader) error) error {
	zr, done, err := decompressor(name, r)
	if err != nil {
		return err
	}
	defer done()
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		if err := fn(h, tr); err != nil {
			return err
		}
	}
}
