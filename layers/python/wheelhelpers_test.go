package python

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/layers"
)

// zmember is one member of a test wheel.
type zmember struct {
	name string
	data string
	mode os.FileMode // 0 → 0644
}

// wheelSpec describes a test wheel; its RECORD is computed unless told
// otherwise.
type wheelSpec struct {
	dist, version, tag string
	members            []zmember
	wheelFile          string            // WHEEL contents, if not the default
	recordFields       map[string]string // member → "hash,size" replacing the computed one
	recordExtra        []string          // rows added to RECORD
	skipRecord         []string          // members left out of RECORD
}

// writeWheel writes a wheel into dir and returns its path.
func writeWheel(t testing.TB, dir string, w wheelSpec) string {
	t.Helper()
	if w.tag == "" {
		w.tag = "py3-none-any"
	}
	di := w.dist + "-" + w.version + ".dist-info"
	if w.wheelFile == "" {
		w.wheelFile = "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: " + w.tag + "\n"
	}
	members := append([]zmember{
		{name: di + "/METADATA", data: fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\n", w.dist, w.version)},
		{name: di + "/WHEEL", data: w.wheelFile},
	}, w.members...)
	var rec strings.Builder
	for _, m := range members {
		skip := false
		for _, s := range w.skipRecord {
			skip = skip || s == m.name
		}
		sum := sha256.Sum256([]byte(m.data))
		fields := fmt.Sprintf("sha256=%s,%d", base64.RawURLEncoding.EncodeToString(sum[:]), len(m.data))
		if f, ok := w.recordFields[m.name]; ok {
			fields = f
		}
		if !skip {
			fmt.Fprintf(&rec, "%s,%s\n", m.name, fields)
		}
	}
	for _, r := range w.recordExtra {
		rec.WriteString(r + "\n")
	}
	fmt.Fprintf(&rec, "%s/RECORD,,\n", di)
	record := rec.String()
	members = append(members, zmember{name: di + "/RECORD", data: record})
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		h := &zip.FileHeader{Name: m.name, Method: zip.Deflate, Modified: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
		mode := m.mode
		if mode == 0 {
			mode = 0o644
		}
		h.SetMode(mode)
		f, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(m.data))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, w.dist+"-"+w.version+"-"+w.tag+".whl")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// wheelOf returns a Wheel for a file, as Select would (sha256 computed).
func wheelOf(t testing.TB, p string) Wheel {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return Wheel{Filename: filepath.Base(p), Path: p, SHA256: hex.EncodeToString(sum[:])}
}

func fileSHA(t testing.TB, p string) string {
	t.Helper()
	return wheelOf(t, p).SHA256
}

// content returns an entry's bytes.
func content(t testing.TB, e layers.Entry) []byte {
	t.Helper()
	if e.Data != nil {
		return e.Data
	}
	b, err := os.ReadFile(e.Source)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
