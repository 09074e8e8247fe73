package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/supervisor/runtime/initbin"
)

// CVE-2019-5736: a container process that can reach our binary (through
// /proc/<pid>/exe of an init or exec'd helper inside its pid namespace)
// could write to it and take over the host. We never execute the host
// file: the init is executed from a memfd copy, sealed against every
// write, shrink and grow. One copy serves the life of this process.
var sealedSelf, sealedInit, sealedExec sealedExe

// sealedExe is one sealed copy, made once.
type sealedExe struct {
	once sync.Once
	f    *os.File
	mem  []byte // its pages, when kept mapped (keepResident)
	err  error
}

// mfdExec is MFD_EXEC (Linux 6.3): keep the memfd executable even when
// vm.memfd_noexec would default to non-executable.
const mfdExec = 0x10

func sealedSelfExe() (*os.File, error) {
	sealedSelf.once.Do(func() {
		src, err := os.Open("/proc/self/exe")
		if err != nil {
			sealedSelf.err = err
			return
		}
		defer src.Close()
		// Not kept resident (35 MB in the daemon's RSS, for a build
		// without the small inits): see keepResident.
		sealedSelf.f, sealedSelf.err = makeSealedExe("berth-init", src)
	})
	return sealedSelf.f, sealedSelf.err
}

// initBinary is the small init (tests set it to one they built).
var initBinary = initbin.Binary

// initExe is the executable Create starts as a container's init: the
// small init embedded at build time (package initbin) or, without one,
// berth itself.
func initExe() (*os.File, error) {
	if len(initBinary) == 0 {
		return sealedSelfExe()
	}
	return sealedInit.load("berth-init", initBinary, initbin.Binary)
}

// execBinary is the small init built with cgo (tests set it to one they
// built).
var execBinary = initbin.ExecBinary

// execExe is the executable Exec starts: the small cgo init embedded at
// build time or, without one, berth itself. Its copy is made at the first
// exec and kept resident as the init's is (a daemon whose containers
// have health checks runs it every few seconds).
func execExe() (*os.File, error) {
	if len(execBinary) == 0 {
		return sealedSelfExe()
	}
	return sealedExec.load("berth-exec", execBinary, initbin.ExecBinary)
}

// load makes the sealed copy of bin, once, and keeps it resident.
// embedded is where the build keeps its own copy of bin.
func (s *sealedExe) load(name string, bin, embedded []byte) (*os.File, error) {
	s.once.Do(func() {
		s.f, s.err = makeSealedExe(name, bytes.NewReader(bin))
		if s.err == nil {
			s.mem = keepResident(s.f)
		}
		// The copy faulted the embedded bytes in: give those clean pages
		// of berth's own file back, or they stay in the daemon's RSS.
		// (Only those: a test's binary lives on the heap.)
		if len(embedded) > 0 && unsafe.SliceData(bin) == unsafe.SliceData(embedded) {
			dropPages(bin)
		}
	})
	return s.f, s.err
}

// LoadInit makes the sealed copy of the init most containers start with
// now rather than at the first Create, so that a long-lived process (the
// daemon) has it from the start and its memory is there before any
// container is: the C init, or the Go one in a build without it. (The Go
// init's copy, where there is a C init, waits for a container that needs
// it: a user namespace, a terminal, in-container hooks.)
func LoadInit() error {
	if exe, err := cinitExe(); exe != nil || err != nil {
		return err
	}
	_, err := initExe()
	return err
}

// makeSealedExe copies src into a sealed memfd.
func makeSealedExe(name string, src io.Reader) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|mfdExec)
	if errors.Is(err, unix.EINVAL) {
		fd, err = unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, os.NewSyscallError("memfd_create", err)
	}
	// At 256 or above, clear of the low fds the daemon opens and closes
	// all the time. Children get the copy by its place among their files,
	// not by this number (see withSelfExe).
	if high, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 256); err == nil {
		unix.Close(fd)
		fd = high
	}
	f := os.NewFile(uintptr(fd), "memfd:"+name)
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return nil, fmt.Errorf("copy %s to memfd: %w", name, err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, os.NewSyscallError("fcntl(F_ADD_SEALS)", err)
	}
	return f, nil
}

// keepResident maps the sealed copy f and locks it in memory, for speed,
// and returns the mapping (nil when that failed: the copy works without
// it, only slower once marked, as follows). An exec maps the copy's
// pages into the new process sixteen at a time ("fault-around"), but
// skips pages marked for reclaim, and the kernel marks them so when it
// tries to drop them (echo 1 >/proc/sys/vm/drop_caches, memory pressure)
// while nothing maps them, as between container starts: shmem pages are
// never clean, so they stay, and so does the mark. From then on every
// page an init touches was a page fault of its own, about 480 instead of
// 240 per container start here, for the life of the daemon. The kernel
// leaves mapped and locked pages alone. The mapping counts in the
// process's RSS, so only the small inits are kept (0.7 MB for the C init,
// 2.9 MB for the Go one, and 3.8 MB for berth-exec once there was one),
// not berth's own copy.
func keepResident(f *os.File) []byte {
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return nil
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil
	}
	if err := unix.Mlock(mem); err != nil {
		_ = unix.Munmap(mem)
		return nil
	}
	return mem
}

// reset drops the copy (tests that swap the init binary).
func (s *sealedExe) reset() {
	if s.f != nil {
		s.f.Close()
	}
	if s.mem != nil {
		_ = unix.Munmap(s.mem)
	}
	*s = sealedExe{}
}

// withSelfExe appends the sealed copy f to the files a child gets and
// returns them with the path the child execs it by: /proc/self/fd/N, N
// being its place among them. Go's fork dups the error pipe and any fd
// it must move to just above the highest fd passed, and a busy daemon
// has hundreds open, so no fixed number of the parent's is safe from
// that in the child (an up of 50 with 12 creates at once once passed
// fd 255 and the child clobbered the copy at 256 and failed to exec it
// with EACCES); its own place among the passed files is. The child's
// view of /proc/self is used, as one in a new user namespace may not
// look into our /proc/<pid>/fd. The init closes it at its exec (it is
// past the files it keeps, see prepareFds).
func withSelfExe(files []*os.File, f *os.File) ([]*os.File, string) {
	return append(files, f), fdPath(3 + len(files))
}

// dropPages lets the kernel drop the whole pages of b, which must be
// read-only data of the executable (they come back from the file).
func dropPages(b []byte) {
	page := uintptr(os.Getpagesize())
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	end := start + uintptr(len(b))
	first := (start + page - 1) &^ (page - 1)
	last := end &^ (page - 1)
	if last <= first {
		return
	}
	_ = unix.Madvise(b[first-start:last-start], unix.MADV_DONTNEED)
}
