package layers

import (
	"archive/tar"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"unicode/utf8"
)

func entryFor(s Spec, hostPath, name string, fi fs.FileInfo) (Entry, error) {
	if !utf8.ValidString(name) {
		return Entry{}, fmt.Errorf("layer source %s: file name is not valid UTF-8; rename it or exclude it", hostPath)
	}
	e := Entry{Name: name, SourceMTime: fi.ModTime()}
	if s.Owner != nil {
		e.UID, e.GID = s.Owner.UID, s.Owner.GID
	}
	mode := fi.Mode()
	switch {
	case mode.IsRegular():
		e.Type = tar.TypeReg
		e.Size = fi.Size()
		e.Source = hostPath
		if hs, ok := statOf(fi); ok {
			e.host = hs
			if hs.nlink > 1 {
				e.inode = hs.id
			}
		}
		e.Mode = 0o644
		if mode.Perm()&0o111 != 0 {
			e.Mode = 0o755
		}
		if s.FileMode != 0 {
			e.Mode = int64(s.FileMode) & 0o7777
		}
	case mode.IsDir():
		e.Type = tar.TypeDir
		e.Mode = 0o755
		if s.DirMode != 0 {
			e.Mode = int64(s.DirMode) & 0o7777
		}
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(hostPath)
		if err != nil {
			return Entry{}, fmt.Errorf("layer source %s: %w", hostPath, unwrapPathError(err))
		}
		e.Type = tar.TypeSymlink
		e.Linkname = target
		e.Mode = 0o777
	default:
		return Entry{}, fmt.Errorf("layer source %s: is a %s; only regular files, directories and symlinks can go into a layer (exclude it)", hostPath, kind(mode))
	}
	return e, nil
}

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device file"
	}
	return "special file"
}

// linkHardLinks turns the second and later names of a multiply-linked host
// file into tar hard links to the first (content stored once).
func linkHardLinks(entries []Entry) {
	first := map[fileID]string{}
	for i := range entries {
		e := &entries[i]
		if e.Type != tar.TypeReg || e.inode == (fileID{}) || e.Gzip {
			continue
		}
		if name, ok := first[e.inode]; ok {
			e.Type, e.Linkname, e.Size, e.Source = tar.TypeLink, name, 0, ""
			continue
		}
		first[e.inode] = e.Name
	}
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
