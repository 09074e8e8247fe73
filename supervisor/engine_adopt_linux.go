package supervisor

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// waitPidfd waits until the process pid that started at start has exited.
// The pidfd is non-blocking and registered with the Go netpoller, so the
// wait holds no thread. A process that is already gone (or a pid that
// names another process) returns at once.
func waitPidfd(pid int, start uint64) error {
	if pid <= 0 {
		return nil
	}
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil // already gone (reaped)
	}
	f := os.NewFile(uintptr(fd), fmt.Sprintf("pidfd:%d", pid))
	defer f.Close()
	// The pidfd pins the process it was opened on: if that one has
	// the expected start time, it is the container's init.
	if st, err := procStartTime(pid); err != nil || st != start {
		return nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Read(func(fd uintptr) bool {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
		return err == nil && n > 0
	})
}
