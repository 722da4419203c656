package layers

import (
	"io/fs"
	"log/slog"
	"slices"
	"strings"
)

// xattrReport collects the source files that have extended attributes, to
// warn about them once the walk is done.
type xattrReport struct {
	files []string // "path (attr, attr)": the first maxXattrWarnings, and all with a capability
	count int
	buf   []byte
}

// maxXattrWarnings is how many files with extended attributes are named one
// by one; the rest are counted.
const maxXattrWarnings = 10

// ignoredXattr: the host's SELinux label is policy of the machine, not of
// the file, and is on every file of such systems.
func ignoredXattr(name string) bool { return name == "security.selinux" }

// check records the extended attributes of hostPath, of mode m, if they
// matter (xattrsMatter).
func (r *xattrReport) check(hostPath string, m fs.FileMode) {
	if r == nil || !xattrsMatter(m) {
		return
	}
	var kept []string
	kept, r.buf = keptXattrs(hostPath, r.buf)
	r.note(hostPath, kept)
}

// xattrsMatter reports whether a file of mode m can carry attributes worth
// a warning: regular files and directories (a symlink's are the host's).
func xattrsMatter(m fs.FileMode) bool { return m.IsRegular() || m.IsDir() }

// keptXattrs lists the extended attributes of hostPath that a report names
// (all but ignoredXattr's), growing buf as it needs.
func keptXattrs(hostPath string, buf []byte) ([]string, []byte) {
	names, buf := listXattrs(hostPath, buf)
	kept := names[:0]
	for _, n := range names {
		if !ignoredXattr(n) {
			kept = append(kept, n)
		}
	}
	return kept, buf
}

// note records that hostPath has the extended attributes kept, if any.
func (r *xattrReport) note(hostPath string, kept []string) {
	if r == nil || len(kept) == 0 {
		return
	}
	r.count++
	// a lost file capability is always named: the program may not work
	if len(r.files) < maxXattrWarnings || slices.Contains(kept, "security.capability") {
		r.files = append(r.files, hostPath+" ("+strings.Join(kept, ", ")+")")
	}
}

func (r *xattrReport) warn(log *slog.Logger) {
	if r == nil || log == nil || r.count == 0 {
		return
	}
	for _, f := range r.files {
		log.Warn("layer source has extended attributes, which gantry does not copy into the layer; a file capability (security.capability) is lost: grant it at run time (--cap-add) or set it in the base", "file", f)
	}
	if more := r.count - len(r.files); more > 0 {
		log.Warn("more layer sources have extended attributes, which are not copied either", "files", more)
	}
}
