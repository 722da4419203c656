package layers

import (
	"io/fs"
	"syscall"
)

// hostStat is what the cache selector and the change check take from a host
// file's stat beyond size and mtime: as git's index does, its inode, device
// and ctime, which any write (even one that restores the mtime) changes.
type hostStat struct {
	id    fileID
	ctime int64 // nanoseconds
	nlink uint64
}

func statOf(fi fs.FileInfo) (hostStat, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return hostStat{}, false
	}
	return hostStat{id: fileID{uint64(st.Dev), st.Ino}, ctime: st.Ctim.Nano(), nlink: uint64(st.Nlink)}, true
}
