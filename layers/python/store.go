package python

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gantry-dev/gantry/layers"
)

// storeManifest is what a verified wheel holds, so that a rebuild reads
// no zip.
type storeManifest struct {
	Format   int           `json:"format"`
	DistInfo string        `json:"distInfo"`
	DataDir  string        `json:"dataDir"`
	Name     string        `json:"name"` // METADATA Name
	Members  []storeMember `json:"members"`
}

type storeMember struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Exec   bool   `json:"exec,omitempty"`
}

const manifestFormat = 1

// store is the content-addressed file store under the install cache.
type store struct{ files, unpacked string }

func openStore(cache string) (store, error) {
	if cache == "" {
		return store{}, errors.New("python install: no cache directory")
	}
	s := store{files: filepath.Join(cache, "python", "files"), unpacked: filepath.Join(cache, "python", "unpacked")}
	for _, d := range []string{s.files, s.unpacked} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return store{}, fmt.Errorf("creating python file store: %w", err)
		}
	}
	return s, nil
}

func (s store) path(sha string) string { return filepath.Join(s.files, sha) }

// put copies r into the store, returning its sha256 and size; extra (if
// not nil) sees the same bytes. At most limit bytes are read.
func (s store) put(ctx context.Context, r io.Reader, limit int64, extra hash.Hash) (string, int64, error) {
	return layers.StoreFile(ctx, s.files, r, limit, extra)
}

// unpack returns what the wheel holds, extracting and verifying it against
// its RECORD unless the store has it from an earlier build.
func (s store) unpack(ctx context.Context, w Wheel) (*storeManifest, error) {
	mpath := filepath.Join(s.unpacked, w.SHA256+".json")
	if m, ok := s.cachedManifest(mpath); ok {
		return m, nil
	}
	m, err := s.extract(ctx, w)
	if err != nil {
		return nil, err
	}
	if err := s.saveManifest(mpath, m); err != nil {
		return nil, err
	}
	return m, nil
}

// cachedManifest reads the manifest at mpath if it is of this format and
// the store still has every member it lists.
func (s store) cachedManifest(mpath string) (*storeManifest, bool) {
	data, err := os.ReadFile(mpath)
	if err != nil {
		return nil, false
	}
	var m storeManifest
	if json.Unmarshal(data, &m) == nil && m.Format == manifestFormat && s.complete(&m) {
		return &m, true
	}
	return nil, false
}

// saveManifest writes m to mpath atomically.
func (s store) saveManifest(mpath string, m *storeManifest) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.unpacked, ".tmp-*")
	if err != nil {
		return fmt.Errorf("creating python store manifest: %w", err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing python store manifest: %w", err)
	}
	if err := os.Rename(tmp.Name(), mpath); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("storing python store manifest: %w", err)
	}
	return nil
}

// complete reports whether every member's content is in the store.
func (s store) complete(m *storeManifest) bool {
	for _, mem := range m.Members {
		fi, err := os.Stat(s.path(mem.SHA256))
		if err != nil || fi.Size() != mem.Size {
			return false
		}
	}
	return true
}

func newHash(alg string) hash.Hash {
	switch alg {
	case "sha256":
		return sha256.New()
	case "sha384":
		return sha512.New384()
	case "sha512":
		return sha512.New()
	}
	return nil
}

// extract copies every member of w into the store, checking each against
// the wheel's RECORD: same set of files, same hashes and sizes.
func (s store) extract(ctx context.Context, w Wheel) (*storeManifest, error) {
	wa, err := openWheel(w.Path, w.Filename)
	if err != nil {
		return nil, err
	}
	defer wa.Close()
	fn := w.Filename
	meta, err := checkWheelMetadata(wa, fn)
	if err != nil {
		return nil, err
	}
	record, err := readWheelRecord(wa, fn)
	if err != nil {
		return nil, err
	}
	m := &storeManifest{Format: manifestFormat, DistInfo: wa.distInfo, DataDir: wa.dataDir, Name: first(meta, "Name")}
	for _, name := range wa.names {
		if isRecordOrSignature(wa, name) {
			continue // RECORD is rewritten; its signatures no longer apply
		}
		rec, ok := record[name]
		if !ok {
			return nil, fmt.Errorf("%s: member %s is not in RECORD (the wheel was altered after it was built)", fn, name)
		}
		mem, err := s.extractMember(ctx, wa, fn, name, rec)
		if err != nil {
			return nil, err
		}
		m.Members = append(m.Members, mem)
	}
	return m, nil
}

// checkWheelMetadata checks the wheel's WHEEL version and that METADATA
// names the project and version of its file name; it returns METADATA.
func checkWheelMetadata(wa *wheelArchive, fn string) (map[string][]string, error) {
	wheelMeta, ok, err := wa.read(wa.distInfo + "/WHEEL")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s: no %s/WHEEL", fn, wa.distInfo)
	}
	wv := first(headers(wheelMeta), "Wheel-Version")
	if major, _, _ := strings.Cut(wv, "."); major != "1" {
		return nil, fmt.Errorf("%s: Wheel-Version %q is not supported (want 1.x)", fn, wv)
	}
	meta, err := wa.metadata()
	if err != nil {
		return nil, err
	}
	if n := first(meta, "Name"); normalizeName(n) != normalizeName(wa.name.Dist) {
		return nil, fmt.Errorf("%s: METADATA names project %q", fn, n)
	}
	if v := first(meta, "Version"); !sameVersion(v, wa.name.Version) {
		return nil, fmt.Errorf("%s: METADATA has version %q", fn, v)
	}
	return meta, nil
}

// readWheelRecord parses the wheel's RECORD and checks that every file it
// lists is in the wheel.
func readWheelRecord(wa *wheelArchive, fn string) (map[string]recordEntry, error) {
	recordName := wa.distInfo + "/RECORD"
	recordData, ok, err := wa.read(recordName)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s: no %s", fn, recordName)
	}
	record, err := parseRecord(fn, recordData)
	if err != nil {
		return nil, err
	}
	for name := range record {
		if _, ok := wa.files[name]; !ok && name != recordName && !strings.HasSuffix(name, "/") {
			return nil, fmt.Errorf("%s: RECORD lists %s, which the wheel does not have", fn, name)
		}
	}
	return record, nil
}

// isRecordOrSignature reports whether name is the wheel's RECORD or one of
// its signatures.
func isRecordOrSignature(wa *wheelArchive, name string) bool {
	recordName := wa.distInfo + "/RECORD"
	return name == recordName || name == recordName+".jws" || name == recordName+".p7s"
}

// extractMember copies one member into the store and checks it against
// its RECORD row.
func (s store) extractMember(ctx context.Context, wa *wheelArchive, fn, name string, rec recordEntry) (storeMember, error) {
	extra, err := recordHasher(fn, name, rec)
	if err != nil {
		return storeMember{}, err
	}
	f := wa.files[name]
	limit := int64(f.UncompressedSize64)
	if rec.size >= 0 {
		limit = rec.size
	}
	rc, err := f.Open()
	if err != nil {
		return storeMember{}, fmt.Errorf("%s: opening %s: %w", fn, name, err)
	}
	sum, n, err := s.put(ctx, rc, limit+1, extra)
	rc.Close()
	if err != nil {
		return storeMember{}, fmt.Errorf("%s: extracting %s: %w", fn, name, err)
	}
	if err := checkRecordRow(fn, name, rec, sum, n, extra); err != nil {
		return storeMember{}, err
	}
	return storeMember{Name: name, SHA256: sum, Size: n, Exec: f.Mode()&0o111 != 0}, nil
}

// recordHasher returns the hash to compute beside sha256 for a RECORD row
// of another algorithm (nil for sha256 or no hash), refusing a missing
// hash except on a .pyc and an unknown algorithm.
func recordHasher(fn, name string, rec recordEntry) (hash.Hash, error) {
	switch {
	case rec.alg == "" && strings.HasSuffix(name, ".pyc"):
		// PEP 376 allows .pyc files without a hash
	case rec.alg == "":
		return nil, fmt.Errorf("%s: RECORD has no hash for %s", fn, name)
	case rec.alg != "sha256":
		extra := newHash(rec.alg)
		if extra == nil {
			return nil, fmt.Errorf("%s: RECORD hashes %s with %s; want sha256, sha384 or sha512", fn, name, rec.alg)
		}
		return extra, nil
	}
	return nil, nil
}

// checkRecordRow compares a member's size and hash with its RECORD row.
func checkRecordRow(fn, name string, rec recordEntry, sum string, n int64, extra hash.Hash) error {
	if rec.size >= 0 && n != rec.size {
		return fmt.Errorf("%s: %s has %d bytes, RECORD says %d (the wheel was altered after it was built)", fn, name, n, rec.size)
	}
	got := mustHex(sum)
	if extra != nil {
		got = string(extra.Sum(nil))
	}
	if rec.alg != "" && got != rec.digest {
		return fmt.Errorf("%s: %s does not match its RECORD hash (the wheel was altered after it was built)", fn, name)
	}
	return nil
}

// fileSHA256 is the hex sha256 of the file at p.
func fileSHA256(ctx context.Context, p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("reading wheel: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, layers.ContextReader(ctx, f)); err != nil {
		return "", fmt.Errorf("reading wheel: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func mustHex(s string) string {
	b, _ := hex.DecodeString(s)
	return string(b)
}
