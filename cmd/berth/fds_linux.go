package main

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// markInheritedCloseOnExec marks every fd above stdio close-on-exec, as
// the keeper and the daemon start. Whatever started them (a shell, a CI
// runner) may have left fds open without the flag, and every child
// inherits those: the daemon's, the containers' inits (which close them
// before the command, but the Go reaper kept them) and the hooks it runs.
// What berth opens itself is close-on-exec already.
func markInheritedCloseOnExec() {
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return
	}
	ents, err := os.ReadDir("/proc/self/fd") // before Linux 5.11
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}
