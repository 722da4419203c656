//go:build unix

package layers

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive flock on f without waiting (a new file:
// nobody else has it; a leftover: nobody holds it); the lock goes with the
// descriptor.
func lockFile(f *os.File, _ bool) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
