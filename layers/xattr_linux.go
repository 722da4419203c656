package layers

import (
	"errors"
	"strings"
	"syscall"
)

// listXattrs returns the names of the extended attributes of the file at p
// (following a symlink: callers pass regular files and directories), or nil
// when there are none or they cannot be listed.
func listXattrs(p string, buf []byte) ([]string, []byte) {
	for {
		n, err := syscall.Listxattr(p, buf)
		if errors.Is(err, syscall.ERANGE) && len(buf) < 1<<20 {
			buf = make([]byte, 4*len(buf))
			continue
		}
		if err != nil || n <= 0 {
			return nil, buf
		}
		var names []string
		for _, name := range strings.Split(string(buf[:n]), "\x00") {
			if name != "" {
				names = append(names, name)
			}
		}
		return names, buf
	}
}
