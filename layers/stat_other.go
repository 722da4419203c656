//go:build !linux

package layers

import (
	"io/fs"
	"syscall"
)

// hostStat: see stat_linux.go. Outside Linux the ctime is not read (its
// field's name differs between systems); inode and device still are.
type hostStat struct {
	id    fileID
	ctime int64
	nlink uint64
}

func statOf(fi fs.FileInfo) (hostStat, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return hostStat{}, false
	}
	return hostStat{id: fileID{uint64(st.Dev), uint64(st.Ino)}, nlink: uint64(st.Nlink)}, true
}
