package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Filter is a compiled seccomp profile, ready to install.
type Filter struct {
	// Instructions is the classic BPF program, in order.
	Instructions []unix.SockFilter
	// Flags are the SECCOMP_FILTER_FLAG_* bits the profile asked for
	// (SECCOMP_FILTER_FLAG_TSYNC is always added by Install).
	Flags uint
}

// Load compiles cfg and installs it on the calling process. A nil cfg means
// unconfined: nothing is installed and Load returns nil. See the package
// documentation for the privileges it needs.
func Load(cfg *specs.LinuxSeccomp) error {
	f, err := Compile(cfg)
	if err != nil {
		return err
	}
	if f == nil {
		return nil
	}
	return f.Install()
}

// Install installs the filter on every thread of the calling process with
// seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC|f.Flags).
func (f *Filter) Install() error {
	if f == nil || len(f.Instructions) == 0 {
		return errors.New("seccomp: empty filter")
	}
	if len(f.Instructions) > maxInstructions {
		return fmt.Errorf("seccomp: filter has %d instructions, the kernel takes at most %d", len(f.Instructions), maxInstructions)
	}
	prog := unix.SockFprog{
		Len:    uint16(len(f.Instructions)),
		Filter: &f.Instructions[0],
	}
	flags := f.Flags | unix.SECCOMP_FILTER_FLAG_TSYNC
	var (
		r     uintptr
		errno unix.Errno
	)
	for {
		r, _, errno = unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&prog)))
		if errno != unix.EINTR {
			break
		}
	}
	runtime.KeepAlive(f.Instructions)
	switch {
	case errno == unix.EACCES:
		return fmt.Errorf("seccomp: install filter: %w (the thread needs no_new_privs or CAP_SYS_ADMIN)", os.NewSyscallError("seccomp", errno))
	case errno != 0:
		return fmt.Errorf("seccomp: install filter: %w", os.NewSyscallError("seccomp", errno))
	case r != 0:
		// With TSYNC the kernel returns the id of a thread that cannot
		// be synchronised (it already has a diverging filter).
		return fmt.Errorf("seccomp: install filter: thread %d cannot be synchronised", r)
	}
	return nil
}

// sockFilterSize is the size of struct sock_filter.
const sockFilterSize = 8

// MarshalBinary encodes the instructions as the kernel lays them out
// (struct sock_filter, native byte order), for handing a compiled filter
// to another process. Flags are not included.
func (f *Filter) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, len(f.Instructions)*sockFilterSize)
	for _, in := range f.Instructions {
		b = binary.NativeEndian.AppendUint16(b, in.Code)
		b = append(b, in.Jt, in.Jf)
		b = binary.NativeEndian.AppendUint32(b, in.K)
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary encoded.
func (f *Filter) UnmarshalBinary(b []byte) error {
	if len(b)%sockFilterSize != 0 {
		return fmt.Errorf("seccomp: program of %d bytes is not a whole number of instructions", len(b))
	}
	f.Instructions = make([]unix.SockFilter, len(b)/sockFilterSize)
	for i := range f.Instructions {
		p := b[i*sockFilterSize:]
		f.Instructions[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(p),
			Jt:   p[2],
			Jf:   p[3],
			K:    binary.NativeEndian.Uint32(p[4:]),
		}
	}
	return nil
}
