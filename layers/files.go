package layers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
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

// fileList is how a cache record keeps a layer's files: one JSON string of
// "<sha256 hex> <name>\x00" items (a name holds no NUL), which decodes into
// one string that every FileDigest points into: for 220k files, one object
// for the garbage collector to scan rather than 440k. An older record's
// array of objects decodes too.
type fileList []FileDigest

func (fl fileList) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	for _, f := range fl {
		b.WriteString(f.SHA256)
		b.WriteByte(' ')
		b.WriteString(f.Name)
		b.WriteByte(0)
	}
	return json.Marshal(b.String())
}

func (fl *fileList) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '[' {
		return json.Unmarshal(data, (*[]FileDigest)(fl))
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	out := make(fileList, 0, strings.Count(s, "\x00"))
	for s != "" {
		item, rest, ok := strings.Cut(s, "\x00")
		sum, name, ok2 := strings.Cut(item, " ")
		if !ok || !ok2 {
			return fmt.Errorf("file list item %q is not \"<sha256> <name>\"", item)
		}
		out = append(out, FileDigest{Name: name, SHA256: sum})
		s = rest
	}
	*fl = out
	return nil
}
