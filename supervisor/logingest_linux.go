package supervisor

import (
	"os"

	"golang.org/x/sys/unix"
)

// punchHole frees the blocks of f in [off, off+n) while keeping its size,
// so readers' offsets stay valid and the data reads back as zeros.
func punchHole(f *os.File, off, n int64) error {
	if n <= 0 {
		return nil
	}
	for {
		err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("fallocate", err)
		}
		return nil
	}
}
