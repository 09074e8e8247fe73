package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"

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

// procStartTime reads field 22 (starttime) of /proc/PID/stat.
func procStartTime(pid int) (uint64, error) {
	fields, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(string(fields[19]), 10, 64)
}

// procParent returns the parent of pid (field 4 of /proc/PID/stat) when
// pid is still the process that started at start.
func procParent(pid int, start uint64) (int, error) {
	fields, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	if st, err := strconv.ParseUint(string(fields[19]), 10, 64); err != nil || st != start {
		return 0, errors.New("another process")
	}
	return strconv.Atoi(string(fields[1]))
}

// procStat returns the fields of /proc/PID/stat after the command name:
// fields[0] is field 3 (state), fields[19] field 22 (starttime).
func procStat(pid int) ([][]byte, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, errors.New("malformed stat")
	}
	fields := bytes.Fields(b[i+1:])
	if len(fields) < 20 {
		return nil, errors.New("malformed stat")
	}
	return fields, nil
}
