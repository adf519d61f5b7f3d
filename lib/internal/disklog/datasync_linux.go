package disklog

import (
	"os"
	"syscall"
)

// datasync makes f's data durable without its timestamps (fdatasync): for
// the acked file, overwritten in place at a fixed size, that spares the
// journal commit a full fsync makes for the new mtime.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
