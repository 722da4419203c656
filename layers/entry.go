// Package layers turns directories and files into deterministic, compressed
// and hashed OCI layers, and reads what it needs from base layers.
package layers

import (
	"archive/tar"
	"time"
)

// Entry is one member of a layer's tar stream: its header fields and where its
// content comes from. Entries carry no host-specific fields (no names, no
// atime/ctime), so the same entries always give the same tar bytes.
type Entry struct {
	// Name is the path inside the image, relative to "/" ("app/main.py").
	Name     string
	Type     byte // tar.TypeReg, tar.TypeDir, tar.TypeSymlink or tar.TypeLink
	Mode     int64
	UID, GID int
	Size     int64
	Linkname string

	// Source is the host file a regular entry is read from, if any.
	Source string
	// SourceMTime is the host file's mtime when it was walked; with the
	// file's ctime, inode and device (read by Walk) it takes part in the
	// cache selector and detects a file changing while it is read.
	SourceMTime time.Time
	// Data is inline content for generated entries (/etc/passwd, ...).
	Data []byte
	// Gzip marks an entry whose content is the deterministic gzip of Source
	// (a precompressed ".gz" sibling). Its Size is known only once written.
	Gzip bool

	inode        fileID   // set for host files with more than one link
	host         hostStat // the walked file's inode, device and ctime
	secretScan   bool     // read the content for private keys or tokens
	secretRefuse bool     // and refuse it if it holds one
}

type fileID struct{ dev, ino uint64 }

// tarSize is about what e takes in the tar stream: a header block and its
// content (for a file precompressed as it is written, its source's size).
func (e *Entry) tarSize() int64 { return max(e.Size, int64(len(e.Data))) + 512 }

func (e *Entry) header(mtime time.Time) *tar.Header {
	h := &tar.Header{
		Typeflag: e.Type,
		Name:     e.Name,
		Linkname: e.Linkname,
		Mode:     e.Mode,
		Uid:      e.UID,
		Gid:      e.GID,
		ModTime:  mtime,
	}
	if e.Type == tar.TypeDir {
		h.Name += "/"
	}
	if e.Type == tar.TypeReg {
		h.Size = e.Size
	}
	return h
}
