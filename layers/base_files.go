package layers

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sort"
)

// MaxBaseFileSize is the largest file gantry reads from a base image
// (/etc/passwd, /etc/group, ...): 16 MiB, some 200,000 accounts. Such a
// file is read whole (a merge must see every line); a larger one is an
// error, never cut short.
const MaxBaseFileSize = 16 << 20

// tooLarge is the error for a base file over MaxBaseFileSize.
func tooLarge(name string, size int64) error {
	return fmt.Errorf("base /%s is %s, over gantry's %d MiB limit for files it reads from a base image; use a base whose /%s is smaller", name, humanBytes(size), MaxBaseFileSize>>20, name)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// ReadFile returns the content of file name in the base, following
// symlinks (Resolve) and hard links. The file must be regular and at most
// MaxBaseFileSize. The files contentPath names come from the index; any
// other is read from its layer once and then kept in the cache.
func (b *BaseFS) ReadFile(ctx context.Context, name string) ([]byte, error) {
	data, _, _, err := b.readFile(ctx, name)
	return data, err
}

// readFile is ReadFile that also returns the file's metadata and the path
// that holds its content.
func (b *BaseFS) readFile(ctx context.Context, name string) ([]byte, BaseFile, string, error) {
	real, err := b.Resolve(ctx, name)
	if err != nil {
		return nil, BaseFile{}, "", err
	}
	for hop := 0; ; hop++ {
		rec, layer, ok, err := b.lookup(ctx, real)
		if err != nil {
			return nil, BaseFile{}, "", err
		}
		if !ok {
			return nil, BaseFile{}, "", fmt.Errorf("base image has no /%s: %w", real, fs.ErrNotExist)
		}
		switch rec.f.Type {
		case tar.TypeLink: // a hard link names its target from the root
			if hop >= maxSymlinkHops {
				return nil, BaseFile{}, "", fmt.Errorf("reading /%s in the base image: too many hard links", name)
			}
			if real, err = b.Resolve(ctx, rec.f.Linkname); err != nil {
				return nil, BaseFile{}, "", err
			}
			continue
		case tar.TypeReg:
		default:
			return nil, BaseFile{}, "", fmt.Errorf("base /%s is not a regular file", real)
		}
		if rec.size > MaxBaseFileSize {
			return nil, rec.f, real, tooLarge(real, rec.size)
		}
		var data []byte
		if rec.flags&recContent != 0 {
			err = b.withIndex(ctx, layer, func(ix *baseIndex) error {
				data, err = ix.content(rec)
				return err
			})
		} else {
			data, err = b.extract(ctx, layer, real)
		}
		return data, rec.f, real, err
	}
}

// extract reads the content of regular file name from layer i (the last
// entry of that name) and keeps it in the cache, by layer and name.
func (b *BaseFS) extract(ctx context.Context, i int, name string) ([]byte, error) {
	l := b.layers[i]
	dig, err := l.Digest()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(name))
	file := filepath.Join(b.cache.Dir(), "base", dig.Hex+"-"+hex.EncodeToString(sum[:16])+".file")
	if data, err := b.cache.readFile(file); err == nil && data != nil {
		return data, nil
	}
	var data []byte
	found := false
	_, err = b.readLayer(ctx, l, func(h *tar.Header, r io.Reader) error {
		if h.Typeflag != tar.TypeReg || cleanName(h.Name) != name {
			return nil
		}
		if h.Size > MaxBaseFileSize {
			return tooLarge(name, h.Size)
		}
		d, err := io.ReadAll(r)
		data, found = d, true
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading /%s from base layer %s: %w", name, dig, err)
	}
	if !found {
		return nil, fmt.Errorf("base layer %s has no regular file /%s, though its index says so; delete %s (or use an empty --cache-dir)", dig, name, indexPath(b.cache, dig.Hex))
	}
	if err := b.cache.writeFile(file, data); err != nil {
		return nil, err
	}
	return data, nil
}

// ReadDir lists the names in directory dir of the base (following
// symlinks to it), sorted, honouring whiteouts and opaque directories
// across layers. A directory that only its contents imply is listed too.
func (b *BaseFS) ReadDir(ctx context.Context, dir string) ([]string, error) {
	real, err := b.Resolve(ctx, dir)
	if err != nil {
		return nil, err
	}
	l := dirListing{dir: real, seen: map[string]bool{}, exists: real == ""}
	for i := len(b.layers) - 1; i >= 0; i-- {
		stop := false
		err := b.withIndex(ctx, i, func(ix *baseIndex) (err error) {
			stop, err = l.addLayer(ix)
			return err
		})
		if err != nil {
			return nil, err
		}
		if stop {
			break
		}
	}
	if !l.exists {
		return nil, fmt.Errorf("base image has no directory /%s: %w", real, fs.ErrNotExist)
	}
	sort.Strings(l.names)
	return l.names, nil
}

// dirListing gathers the names of directory dir from the layers that have
// it, the top one first.
type dirListing struct {
	dir    string
	seen   map[string]bool // names decided by an upper layer
	names  []string
	exists bool
}

// addLayer adds the names one layer gives the directory, and reports
// whether the layers below it count no more (the directory is hidden,
// opaque, or replaced by a file there).
func (l *dirListing) addLayer(ix *baseIndex) (stop bool, err error) {
	r, ok, err := ix.get(l.dir)
	if err != nil {
		return false, err
	}
	if l.dir != "" && ok && r.flags&recPresent != 0 && r.f.Type != tar.TypeDir {
		if !l.exists {
			return false, fmt.Errorf("base /%s is not a directory", l.dir)
		}
		return true, nil // replaced by a file here: nothing below counts
	}
	if ok && r.flags&(recPresent|recImplied) != 0 {
		l.exists = true
	}
	if err := l.addChildren(ix); err != nil {
		return false, err
	}
	hidden, err := ix.hides(l.dir)
	return hidden || ok && r.flags&recOpaque != 0, err
}

// addChildren adds the directory's children in one layer that no upper
// layer decided, then marks its whiteouts decided.
func (l *dirListing) addChildren(ix *baseIndex) error {
	var whiteouts []string
	err := ix.children(l.dir, func(base string, c idxRec) error {
		if c.flags&(recPresent|recImplied) != 0 && !l.seen[base] {
			l.seen[base] = true
			l.names = append(l.names, base)
		}
		if c.flags&recWhiteout != 0 {
			whiteouts = append(whiteouts, base)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, w := range whiteouts { // they hide the layers below only
		l.seen[w] = true
	}
	return nil
}
