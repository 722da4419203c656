package layers

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Cache is a directory of content-addressed layer blobs and the records that
// map a layer's selector (a hash of its entries' metadata and options) to
// them. Every file appears by rename, so concurrent builds sharing a cache
// never see a half-written entry.
type Cache struct {
	dir string
	// hadContent: the cache held content records when it was opened (a
	// cold cache's run skips the content-key pass, which cannot hit)
	hadContent bool
}

// DefaultCacheDir is $XDG_CACHE_HOME/gantry (or the platform's equivalent).
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding the user cache directory (pass --cache-dir): %w", err)
	}
	return filepath.Join(d, "gantry"), nil
}

// OpenCache creates (if needed) and opens the cache at dir.
func OpenCache(dir string) (*Cache, error) {
	for _, sub := range []string{"blobs/sha256", "layers", "content", "chunks", "base", "memo", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("creating cache directory: %w", err)
		}
	}
	c := &Cache{dir: dir}
	c.sweep()
	c.hadContent = c.hasContent()
	return c, nil
}

// Dir is the cache's root directory.
func (c *Cache) Dir() string { return c.dir }

func (c *Cache) blobPath(h v1.Hash) string {
	return filepath.Join(c.dir, "blobs", h.Algorithm, h.Hex)
}

// record is what a selector maps to.
type record struct {
	Digest           v1.Hash `json:"digest"`
	DiffID           v1.Hash `json:"diffID"`
	Size             int64   `json:"size"`
	UncompressedSize int64   `json:"uncompressedSize"`
	Compression      string  `json:"compression"`
	// BlobModTime is the blob file's mtime when it was written: a blob that
	// was since truncated or rewritten no longer matches and is a miss.
	BlobModTime int64 `json:"blobModTime"`
	// Secrets are the entries whose content looked like a secret (and was
	// allowed) when the layer was built: the guard is applied to them again
	// at every hit, with the allow-list of the build asking.
	Secrets []SecretFinding `json:"secrets,omitempty"`
	// ELF are the layer's ELF files, for the architecture gate on a hit.
	ELF []ELFFile `json:"elf,omitempty"`
	// Files are the layer's regular files and their SHA-256, for the SBOM
	// on a hit; a record without them (an older gantry's) is a miss.
	Files fileList `json:"files"`
	// Remote marks a layer a registry had (its blob is not in the cache):
	// a hit on it holds only once the registry shows it has it still.
	Remote bool `json:"remote,omitempty"`
}

// selectorRecord is where the record of a selector (the layer's entries'
// metadata) is kept; contentRecord, that of its bytes (Builder.contentKey),
// for a checkout whose files are the same bytes with new mtimes.
func (c *Cache) selectorRecord(selector string) string {
	return filepath.Join(c.dir, "layers", selector+".json")
}

func (c *Cache) contentRecord(contentKey string) string {
	return filepath.Join(c.dir, "content", contentKey+".json")
}

// hasContent reports whether any content record is kept.
func (c *Cache) hasContent() bool {
	d, err := os.Open(filepath.Join(c.dir, "content"))
	if err != nil {
		return false
	}
	defer d.Close()
	names, _ := d.Readdirnames(1)
	return len(names) > 0
}

// lookup reads the record in file rec: the layer it names in the cache,
// or (remote) the record of a layer a registry had, or neither on a miss.
// A record whose blob is missing, of the wrong size or rewritten is a miss.
func (c *Cache) lookup(rec string, comp Compression) (l *Layer, remote *record) {
	b, err := os.ReadFile(rec)
	if err != nil {
		return nil, nil
	}
	var r record
	if json.Unmarshal(b, &r) != nil || r.Compression != comp.Key() || r.Files == nil {
		return nil, nil
	}
	if r.Remote {
		return nil, &r
	}
	if !c.blobAsRecorded(r.Digest, r.Size, r.BlobModTime) {
		return nil, nil
	}
	return &Layer{
		digest: r.Digest, diffID: r.DiffID, size: r.Size, uncompressedSize: r.UncompressedSize,
		path: c.blobPath(r.Digest), compression: comp.Algorithm, cached: true,
		secrets: r.Secrets, elf: r.ELF, files: r.Files,
	}, nil
}

// blobAsRecorded reports whether blob h is in the cache as a record saw it
// written: of size bytes, with the mtime modTime (UnixNano). A blob that is
// missing, truncated or rewritten since is not.
func (c *Cache) blobAsRecorded(h v1.Hash, size, modTime int64) bool {
	fi, err := os.Stat(c.blobPath(h))
	return err == nil && fi.Size() == size && fi.ModTime().UnixNano() == modTime
}

// hasBlob reports whether the blob of digest h is stored intact: of the
// given size and hashing to h.
func (c *Cache) hasBlob(h v1.Hash, size int64) bool {
	f, err := os.Open(c.blobPath(h))
	if err != nil {
		return false
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.Size() != size {
		return false
	}
	_, err = io.Copy(io.Discard, &verifier{rc: f, h: sha256.New(), want: h, size: size, name: f.Name()})
	return err == nil
}

// store records l in each of the record files recs: its blob in the
// cache, or (l.Remote) in a registry.
func (c *Cache) store(comp Compression, l *Layer, recs ...string) error {
	r := record{
		Digest: l.digest, DiffID: l.diffID, Size: l.size, UncompressedSize: l.uncompressedSize,
		Compression: comp.Key(), Secrets: l.secrets, ELF: l.elf, Files: l.files, Remote: l.Remote(),
	}
	if !r.Remote {
		fi, err := os.Stat(l.path)
		if err != nil {
			return fmt.Errorf("caching layer %s: %w", l.digest, err)
		}
		r.BlobModTime = fi.ModTime().UnixNano()
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if err := c.writeFile(rec, b); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes b to name atomically (temp file, then rename).
func (c *Cache) writeFile(name string, b []byte) error {
	f, err := c.tempFile("rec-*")
	if err != nil {
		return fmt.Errorf("writing cache: %w", err)
	}
	_, werr := f.Write(b)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing cache file %s: %w", name, err)
	}
	if err := os.Rename(f.Name(), name); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing cache file %s: %w", name, err)
	}
	return nil
}

// readFile reads a cache file; a missing one is (nil, nil).
func (c *Cache) readFile(name string) ([]byte, error) {
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// Blob returns the content-addressed blob h from the cache, or fetches,
// verifies and stores it. It is for small blobs such as base configs, so a
// rebuild need not download them again.
func (c *Cache) Blob(h v1.Hash, fetch func() ([]byte, error)) ([]byte, error) {
	if b, ok := c.readBlob(h); ok {
		return b, nil
	}
	b, err := fetch()
	if err != nil {
		return nil, err
	}
	got, _, err := v1.SHA256(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	if got != h {
		return nil, fmt.Errorf("blob %s has digest %s", h, got)
	}
	if err := c.writeFile(c.blobPath(h), b); err != nil {
		return nil, err
	}
	return b, nil
}

// readBlob reads the small blob h, if the cache has it intact.
func (c *Cache) readBlob(h v1.Hash) ([]byte, bool) {
	b, err := os.ReadFile(c.blobPath(h))
	if err != nil {
		return nil, false
	}
	got, _, err := v1.SHA256(bytes.NewReader(b))
	return b, err == nil && got == h
}

// Doc is a document recorded in the cache (Memo): its blob's path,
// digest and size.
type Doc struct {
	Path   string
	Digest v1.Hash
	Size   int64
}

// memoRecord names a recorded document's blob, and the blob file's mtime
// when it was written, so that a hit need not read it.
type memoRecord struct {
	Digest      v1.Hash `json:"digest"`
	Size        int64   `json:"size"`
	BlobModTime int64   `json:"blobModTime"`
}

// Memo returns the document recorded under key (made by what the key
// names, e.g. an image's SBOM), or has write make it and records it. A hit
// reads only the record: a blob that is missing, of another size or
// rewritten since (its mtime) is made again, as for a layer.
func (c *Cache) Memo(key string, write func(io.Writer) error) (Doc, error) {
	rec := filepath.Join(c.dir, "memo", key)
	var r memoRecord
	if b, err := os.ReadFile(rec); err == nil && json.Unmarshal(b, &r) == nil && r.Digest.Hex != "" && c.blobAsRecorded(r.Digest, r.Size, r.BlobModTime) {
		return Doc{Path: c.blobPath(r.Digest), Digest: r.Digest, Size: r.Size}, nil
	}
	f, err := c.tempFile("doc-*")
	if err != nil {
		return Doc{}, fmt.Errorf("writing cache: %w", err)
	}
	defer os.Remove(f.Name()) // once renamed, a no-op
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(f, h)}
	bw := bufio.NewWriterSize(cw, 1<<16)
	werr := write(bw)
	if werr == nil {
		werr = bw.Flush()
	}
	if err := errors.Join(werr, f.Close()); err != nil {
		return Doc{}, fmt.Errorf("writing cache file for %s: %w", key, err)
	}
	d := Doc{Digest: hashOf(h), Size: cw.n}
	d.Path = c.blobPath(d.Digest)
	// the same bytes stored already are kept, as for a layer: other
	// records check that file's mtime
	if !c.hasBlob(d.Digest, d.Size) {
		if err := os.Rename(f.Name(), d.Path); err != nil {
			return Doc{}, fmt.Errorf("writing cache file %s: %w", d.Path, err)
		}
	}
	fi, err := os.Stat(d.Path)
	if err != nil {
		return Doc{}, fmt.Errorf("writing cache file %s: %w", d.Path, err)
	}
	b, err := json.Marshal(memoRecord{Digest: d.Digest, Size: d.Size, BlobModTime: fi.ModTime().UnixNano()})
	if err != nil {
		return Doc{}, err
	}
	return d, c.writeFile(rec, b)
}
