//go:build unix

package disklog

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive lock on f without waiting (flock), held until
// f is closed: a second relay on the same directory fails at start.
func lockFile(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			return err
		}
	}
}
