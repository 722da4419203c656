package layers

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Algorithms a layer can be compressed with.
const (
	Gzip = "gzip"
	Zstd = "zstd"
)

// Compression selects how new layers are compressed.
type Compression struct {
	Algorithm string // Gzip (default) or Zstd
	// Level is the gzip level (1-9, default 1) or the zstd level (1 fastest
	// ... 4 best, default 1).
	Level int
}

// Normalize fills defaults and validates c.
func (c Compression) Normalize() (Compression, error) {
	if c.Algorithm == "" {
		c.Algorithm = Gzip
	}
	switch c.Algorithm {
	case Gzip:
		if c.Level == 0 {
			c.Level = 1
		}
		if c.Level < 1 || c.Level > 9 {
			return c, fmt.Errorf("gzip level %d out of range 1-9", c.Level)
		}
	case Zstd:
		if c.Level == 0 {
			c.Level = 1
		}
		if c.Level < 1 || c.Level > 4 {
			return c, fmt.Errorf("zstd level %d out of range 1 (fastest) - 4 (best)", c.Level)
		}
	default:
		return c, fmt.Errorf("compression %q is not supported; use gzip or zstd", c.Algorithm)
	}
	return c, nil
}

// Key identifies everything that changes the compressed bytes: algorithm,
// level, how the stream is cut into members, and the compressor library's
// version.
func (c Compression) Key() string {
	return fmt.Sprintf("%s/%d/members-%d-%d-%d/%s", c.Algorithm, c.Level, targetChunk, maxChunk, storeAbove, libVersions())
}

// keyHash is a short file-name-safe form of Key.
func (c Compression) keyHash() string {
	h := sha256.Sum256([]byte(c.Key()))
	return hex.EncodeToString(h[:8])
}

func libVersions() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	var v []string
	for _, d := range bi.Deps {
		if strings.HasPrefix(d.Path, "github.com/klauspost/") {
			v = append(v, d.Path+"@"+d.Version)
		}
	}
	return strings.Join(v, ",")
}

// decompress returns a reader of the uncompressed bytes of r, whose format
// is detected from its magic number (gzip, zstd, or none).
func decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(4)
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		return zr, nil
	case len(magic) == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	default:
		return io.NopCloser(br), nil
	}
}

// historyPrefix starts the config history comment of a layer gantry made;
// the rest is its Compression.Key. A later build finding that layer's
// diffID in a registry knows from it whether the blob there is the one it
// would make itself, bit for bit.
const historyPrefix = "gantry: compressed as "

// HistoryComment is the config history comment of a layer compressed as c.
func (c Compression) HistoryComment() string {
	if n, err := c.Normalize(); err == nil {
		c = n
	}
	return historyPrefix + c.Key()
}

// CompressionOfComment returns the Compression.Key a history comment
// names, if gantry wrote it.
func CompressionOfComment(comment string) (string, bool) {
	return strings.CutPrefix(comment, historyPrefix)
}
