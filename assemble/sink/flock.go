package sink

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
)

// lockName is the lock file of an OCI layout: writers hold it exclusively
// (flock) while they read, change and replace index.json.
const lockName = ".gantry.lock"

// fileLock is an exclusive flock held on an open file.
type fileLock struct{ f *os.File }

// lockFile takes an exclusive flock on path, creating the file when it is
// missing, and waits for it as long as ctx allows. flock locks belong to
// the open file, so one process's writers exclude each other as other
// processes' do; the kernel drops a lock when its holder dies.
func lockFile(ctx context.Context, path string) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	err = poll(ctx, func() (bool, error) { return tryLock(f) })
	if err != nil {
		f.Close()
		return nil, err
	}
	return &fileLock{f}, nil
}

// tryLock takes an exclusive flock on f if nobody holds one.
func tryLock(f *os.File) (bool, error) {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, syscall.EWOULDBLOCK), errors.Is(err, syscall.EINTR):
		return false, nil
	}
	return false, &os.PathError{Op: "flock", Path: f.Name(), Err: err}
}

// unlock releases the lock; it may be called more than once, and on nil.
func (l *fileLock) unlock() {
	if l != nil && l.f != nil {
		l.f.Close() // closing the last descriptor releases the flock
		l.f = nil
	}
}

// newLock makes dir's lock file and holds it. The file is made and locked
// under a name of its own, then renamed to lockName, so that whoever finds
// lockName in dir finds it already held.
func newLock(dir string) (*fileLock, error) {
	f, err := os.CreateTemp(dir, lockName+"-*")
	if err != nil {
		return nil, err
	}
	ok, err := tryLock(f)
	if err == nil && !ok {
		err = &os.PathError{Op: "flock", Path: f.Name(), Err: syscall.EWOULDBLOCK}
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, lockName))
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &fileLock{f}, nil
}
