package layers

import (
	"crypto/sha256"
	"encoding/hex"
)

// FileDigest is a regular file of a layer and the SHA-256 of the content
// the layer holds for it (for a precompressed ".gz", of the gzip). The
// builder hashes each file as it writes it, and the cache record keeps the
// list, so an SBOM of a cached layer reads no file again.
type FileDigest struct {
	Name   string `json:"name"` // the path in the image, without the leading "/"
	SHA256 string `json:"sha256"`
}

// Files lists the layer's regular files and their SHA-256, in the layer's
// order (built or cached).
func (l *Layer) Files() []FileDigest { return append([]FileDigest(nil), l.files...) }

func (n *notes) sawFile(name string, sum []byte) {
	n.files = append(n.files, FileDigest{Name: name, SHA256: hex.EncodeToString(sum)})
}

var emptySHA256 = sha256.Sum256(nil)
