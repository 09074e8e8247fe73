package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// CVE-2019-5736: a container process that can reach our binary (through
// /proc/<pid>/exe of an init or exec'd helper inside its pid namespace)
// could write to it and take over the host. We never execute the host
// file: the init is executed from a memfd copy, sealed against every
// write, shrink and grow. One copy serves the life of this process.
var sealedSelf struct {
	once sync.Once
	f    *os.File
	err  error
}

// mfdExec is MFD_EXEC (Linux 6.3): keep the memfd executable even when
// vm.memfd_noexec would default to non-executable.
const mfdExec = 0x10

func sealedSelfExe() (*os.File, error) {
	sealedSelf.once.Do(func() {
		sealedSelf.f, sealedSelf.err = makeSealedSelf()
	})
	return sealedSelf.f, sealedSelf.err
}

func makeSealedSelf() (*os.File, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, err
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("berth-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|mfdExec)
	if errors.Is(err, unix.EINVAL) {
		fd, err = unix.MemfdCreate("berth-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, os.NewSyscallError("memfd_create", err)
	}
	// Move it out of the way of the fds children get (see selfExePath).
	if high, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 256); err == nil {
		unix.Close(fd)
		fd = high
	}
	f := os.NewFile(uintptr(fd), "memfd:berth-init")
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return nil, fmt.Errorf("copy self to memfd: %w", err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, os.NewSyscallError("fcntl(F_ADD_SEALS)", err)
	}
	return f, nil
}

// selfExePath names the sealed copy for execve in a child that passes
// nfiles fds. The child resolves /proc/self/fd/N itself (a child in a new
// user namespace may not look into our /proc/<pid>/fd), so N must not be
// among the fds the child is rearranging: the copy sits at fd >= 256.
func selfExePath(f *os.File, nfiles int) string {
	if int(f.Fd()) < nfiles+3 {
		return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd())
	}
	return fdPath(int(f.Fd()))
}
