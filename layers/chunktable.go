package layers

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Each cached blob has a chunk table: where in it each chunk's compressed
// bytes are. A build loads the tables of the blobs cached last (of its
// compression) once, and copies from them the chunks it would otherwise
// compress again. One file per blob, written once, costs a build one
// create where a file per chunk cost ~800 on W-big.
const (
	// tablesRead is how many of the newest tables a build consults;
	// tablesKept, how many the cache keeps.
	tablesRead, tablesKept = 64, 128
	tableMagic             = "gantry-chunks-v2\n"    // v2: identities by chunkDomain
	tableRecord            = sha256.Size + 1 + 8 + 8 // hash, stored, offset, length
)

// chunkKey is a chunk's identity (see chunkDomain), and whether it is
// stored.
type chunkKey struct {
	hash   [sha256.Size]byte
	stored bool
}

// chunkLoc is where a compressed chunk sits in a cached blob.
type chunkLoc struct {
	Blob           v1.Hash
	Offset, Length int64
}

// chunkTable is where a blob has each of its chunks.
func (c *Cache) chunkTable(blob v1.Hash, comp Compression) string {
	return filepath.Join(c.dir, "chunks", blob.Hex+"-"+comp.keyHash()+".tab")
}

// chunkIndex reads the newest tables of comp's blobs; a table whose blob
// is missing, resized or rewritten since is left out.
func (c *Cache) chunkIndex(comp Compression) map[chunkKey]chunkLoc {
	suffix := "-" + comp.keyHash() + ".tab"
	tables := c.tables(suffix)
	index := map[chunkKey]chunkLoc{}
	for _, name := range tables[:min(len(tables), tablesRead)] {
		c.readTable(filepath.Join(c.dir, "chunks", name), strings.TrimSuffix(name, suffix), index)
	}
	return index
}

// tables lists the chunk tables whose names end in suffix, newest first.
func (c *Cache) tables(suffix string) []string {
	ents, _ := os.ReadDir(filepath.Join(c.dir, "chunks"))
	type table struct {
		name  string
		mtime int64
	}
	var tables []table
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && strings.HasSuffix(e.Name(), suffix) {
			tables = append(tables, table{e.Name(), fi.ModTime().UnixNano()})
		}
	}
	slices.SortFunc(tables, func(a, b table) int { return cmp.Compare(b.mtime, a.mtime) })
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.name
	}
	return names
}

// readTable adds the chunks of table file name (of blob hex) to index,
// keeping entries of newer tables (read first).
func (c *Cache) readTable(name, hex string, index map[chunkKey]chunkLoc) {
	b, err := os.ReadFile(name)
	if err != nil || !bytes.HasPrefix(b, []byte(tableMagic)) || len(b) < len(tableMagic)+16 {
		return
	}
	b = b[len(tableMagic):]
	size, mtime := int64(binary.BigEndian.Uint64(b)), int64(binary.BigEndian.Uint64(b[8:]))
	b = b[16:]
	blob := v1.Hash{Algorithm: "sha256", Hex: hex}
	fi, err := os.Stat(c.blobPath(blob))
	if err != nil || fi.Size() != size || fi.ModTime().UnixNano() != mtime || len(b)%tableRecord != 0 {
		return
	}
	for ; len(b) > 0; b = b[tableRecord:] {
		var k chunkKey
		copy(k.hash[:], b)
		k.stored = b[sha256.Size] == 1
		off := int64(binary.BigEndian.Uint64(b[sha256.Size+1:]))
		n := int64(binary.BigEndian.Uint64(b[sha256.Size+9:]))
		if _, ok := index[k]; ok || off < 0 || n <= 0 || off+n > size {
			continue
		}
		index[k] = chunkLoc{Blob: blob, Offset: off, Length: n}
	}
}

// storeChunks writes the table of blob (stored in the cache): where it has
// each of its chunks. The oldest tables beyond tablesKept are removed.
func (c *Cache) storeChunks(comp Compression, blob v1.Hash, spans []chunkSpan) error {
	fi, err := os.Stat(c.blobPath(blob))
	if err != nil {
		return fmt.Errorf("caching layer chunks: %w", err)
	}
	b := make([]byte, 0, len(tableMagic)+16+len(spans)*tableRecord)
	b = append(b, tableMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(fi.Size()))
	b = binary.BigEndian.AppendUint64(b, uint64(fi.ModTime().UnixNano()))
	for _, s := range spans {
		b = append(b, s.c.Hash[:]...)
		b = append(b, boolByte(s.c.Stored))
		b = binary.BigEndian.AppendUint64(b, uint64(s.off))
		b = binary.BigEndian.AppendUint64(b, uint64(s.len))
	}
	if err := c.writeFile(c.chunkTable(blob, comp), b); err != nil {
		return err
	}
	return c.pruneTables()
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// pruneTables removes the oldest chunk tables beyond tablesKept (their
// blobs stay: a selector record may still name them).
func (c *Cache) pruneTables() error {
	tables := c.tables(".tab")
	var errs []error
	for _, name := range tables[min(len(tables), tablesKept):] {
		if err := os.Remove(filepath.Join(c.dir, "chunks", name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
