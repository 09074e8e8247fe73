//go:build amd64

// The tests use x86_64 syscall numbers for the host's own calls.

package seccomp

import (
	"encoding/binary"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	moby "github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// dockerCaps is Docker's default capability set.
var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// defaultProfile resolves Docker's default profile for caps.
func defaultProfile(t testing.TB, caps ...string) *specs.LinuxSeccomp {
	t.Helper()
	p, err := resolveDefault(caps)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func resolveDefault(caps []string) (*specs.LinuxSeccomp, error) {
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
	return moby.GetDefaultProfile(rs)
}

// vm runs a compiled filter in golang.org/x/net/bpf's interpreter.
type vm struct {
	t  testing.TB
	vm *bpf.VM
}

func newVM(t testing.TB, cfg *specs.LinuxSeccomp) *vm {
	t.Helper()
	f, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]bpf.RawInstruction, len(f.Instructions))
	for i, ins := range f.Instructions {
		raw[i] = bpf.RawInstruction{Op: ins.Code, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	prog, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("filter does not disassemble")
	}
	m, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	return &vm{t: t, vm: m}
}

// run evaluates one syscall. The interpreter reads words big-endian, so
// each 32-bit field of seccomp_data is stored big-endian at the offset the
// kernel would have it (x86 keeps the low half of an argument first).
func (v *vm) run(audit, nr uint32, args ...uint64) uint32 {
	v.t.Helper()
	in := make([]byte, 64)
	binary.BigEndian.PutUint32(in[0:], nr)
	binary.BigEndian.PutUint32(in[4:], audit)
	for i, a := range args {
		binary.BigEndian.PutUint32(in[16+8*i:], uint32(a))
		binary.BigEndian.PutUint32(in[20+8*i:], uint32(a>>32))
	}
	r, err := v.vm.Run(in)
	if err != nil {
		v.t.Fatal(err)
	}
	return uint32(r)
}

const (
	retAllow  = unix.SECCOMP_RET_ALLOW
	retEPERM  = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	retENOSYS = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	retKillP  = unix.SECCOMP_RET_KILL_PROCESS
)

func TestCompileNilIsUnconfined(t *testing.T) {
	f, err := Compile(nil)
	if f != nil || err != nil {
		t.Fatalf("Compile(nil) = %v, %v; want nil, nil", f, err)
	}
}

func TestDockerDefaultProfile(t *testing.T) {
	v := newVM(t, defaultProfile(t, dockerCaps...))
	x64 := uint32(unix.AUDIT_ARCH_X86_64)
	i386 := uint32(unix.AUDIT_ARCH_I386)
	const (
		newns = unix.CLONE_NEWNS | unix.CLONE_NEWUSER
		vsock = 40
		alg   = 38
	)
	cases := []struct {
		name  string
		audit uint32
		nr    uint32
		args  []uint64
		want  uint32
	}{
		{"read", x64, unix.SYS_READ, nil, retAllow},
		{"execve", x64, unix.SYS_EXECVE, nil, retAllow},
		{"keyctl", x64, unix.SYS_KEYCTL, nil, retEPERM},
		{"add_key", x64, unix.SYS_ADD_KEY, nil, retEPERM},
		{"unshare", x64, unix.SYS_UNSHARE, []uint64{unix.CLONE_NEWUSER}, retEPERM},
		{"mount", x64, unix.SYS_MOUNT, nil, retEPERM},
		{"chroot (CAP_SYS_CHROOT)", x64, unix.SYS_CHROOT, nil, retAllow},
		{"ptrace (kernel >= 4.8)", x64, unix.SYS_PTRACE, nil, retAllow},
		{"open_by_handle_at (no CAP_DAC_READ_SEARCH)", x64, unix.SYS_OPEN_BY_HANDLE_AT, nil, retEPERM},
		{"personality(0)", x64, unix.SYS_PERSONALITY, []uint64{0}, retAllow},
		{"personality(0x20008)", x64, unix.SYS_PERSONALITY, []uint64{0x20008}, retAllow},
		{"personality(0xffffffff)", x64, unix.SYS_PERSONALITY, []uint64{0xffffffff}, retAllow},
		{"personality(ADDR_NO_RANDOMIZE)", x64, unix.SYS_PERSONALITY, []uint64{0x0040000}, retEPERM},
		{"personality(1<<32)", x64, unix.SYS_PERSONALITY, []uint64{1 << 32}, retEPERM},
		{"clone thread", x64, unix.SYS_CLONE, []uint64{unix.CLONE_VM | unix.CLONE_THREAD | unix.CLONE_SIGHAND}, retAllow},
		{"clone newns", x64, unix.SYS_CLONE, []uint64{newns}, retEPERM},
		{"clone3", x64, unix.SYS_CLONE3, nil, retENOSYS},
		{"socket inet", x64, unix.SYS_SOCKET, []uint64{unix.AF_INET}, retAllow},
		{"socket unix", x64, unix.SYS_SOCKET, []uint64{unix.AF_UNIX}, retAllow},
		{"socket netlink", x64, unix.SYS_SOCKET, []uint64{unix.AF_NETLINK}, retAllow},
		{"socket vsock", x64, unix.SYS_SOCKET, []uint64{vsock}, retEPERM},
		{"socket alg", x64, unix.SYS_SOCKET, []uint64{alg}, retEPERM},
		{"arch_prctl", x64, unix.SYS_ARCH_PRCTL, nil, retAllow},
		{"beyond the profile", x64, 1000, nil, retENOSYS},
		{"nr -1", x64, 0xffffffff, nil, retENOSYS},
		{"i386 read", i386, 3, nil, retAllow},
		{"i386 keyctl", i386, 288, nil, retEPERM},
		{"i386 socketcall", i386, 102, nil, retAllow},
		{"i386 personality(8)", i386, 136, []uint64{8}, retAllow},
		{"i386 personality(0x40000)", i386, 136, []uint64{0x40000}, retEPERM},
		{"x32 read", x64, x32SyscallBit + 0, nil, retAllow},
		{"x32 rt_sigaction", x64, x32SyscallBit + 512, nil, retAllow},
		{"x32 keyctl", x64, x32SyscallBit + unix.SYS_KEYCTL, nil, retEPERM},
		{"aarch64", unix.AUDIT_ARCH_AARCH64, 63, nil, retKillP},
	}
	for _, c := range cases {
		if got := v.run(c.audit, c.nr, c.args...); got != c.want {
			t.Errorf("%s: got %#x, want %#x", c.name, got, c.want)
		}
	}
}

func TestDockerDefaultProfileSysAdmin(t *testing.T) {
	v := newVM(t, defaultProfile(t, append([]string{"CAP_SYS_ADMIN"}, dockerCaps...)...))
	x64 := uint32(unix.AUDIT_ARCH_X86_64)
	for _, c := range []struct {
		name string
		nr   uint32
		args []uint64
	}{
		{"unshare", unix.SYS_UNSHARE, []uint64{unix.CLONE_NEWUSER}},
		{"clone newns", unix.SYS_CLONE, []uint64{unix.CLONE_NEWNS}},
		{"clone3", unix.SYS_CLONE3, nil},
		{"mount", unix.SYS_MOUNT, nil},
	} {
		if got := v.run(x64, c.nr, c.args...); got != retAllow {
			t.Errorf("%s with CAP_SYS_ADMIN: got %#x, want allow", c.name, got)
		}
	}
}

func uintp(v uint) *uint { return &v }

func TestCustomProfileActions(t *testing.T) {
	cfg := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EROFS))},
			{Names: []string{"getpid"}, Action: specs.ActKillProcess},
			{Names: []string{"gettid"}, Action: specs.ActKill},
			{Names: []string{"sync"}, Action: specs.ActTrap},
			{Names: []string{"syncfs"}, Action: specs.ActLog},
			{Names: []string{"fsync"}, Action: specs.ActTrace, ErrnoRet: uintp(7)},
			{Names: []string{"fdatasync"}, Action: specs.ActTrace},
			{Names: []string{"no_such_syscall", "umask"}, Action: specs.ActErrno},
		},
	}
	v := newVM(t, cfg)
	x64 := uint32(unix.AUDIT_ARCH_X86_64)
	for nr, want := range map[uint32]uint32{
		unix.SYS_MKDIR:     unix.SECCOMP_RET_ERRNO | uint32(unix.EROFS),
		unix.SYS_MKDIRAT:   unix.SECCOMP_RET_ERRNO | uint32(unix.EROFS),
		unix.SYS_GETPID:    unix.SECCOMP_RET_KILL_PROCESS,
		unix.SYS_GETTID:    unix.SECCOMP_RET_KILL_THREAD,
		unix.SYS_SYNC:      unix.SECCOMP_RET_TRAP,
		unix.SYS_SYNCFS:    unix.SECCOMP_RET_LOG,
		unix.SYS_FSYNC:     unix.SECCOMP_RET_TRACE | 7,
		unix.SYS_FDATASYNC: unix.SECCOMP_RET_TRACE | uint32(unix.EPERM),
		unix.SYS_UMASK:     retEPERM,
		unix.SYS_READ:      retAllow,
		1000:               retAllow, // ENOSYS stub only with an ERRNO default
	} {
		if got := v.run(x64, nr); got != want {
			t.Errorf("syscall %d: got %#x, want %#x", nr, got, want)
		}
	}
	// i386 is not listed: bad architecture.
	if got := v.run(unix.AUDIT_ARCH_I386, 3); got != retKillP {
		t.Errorf("unlisted i386: got %#x, want kill process", got)
	}
	// Number -1 is no syscall: default action.
	if got := v.run(x64, 0xffffffff); got != retAllow {
		t.Errorf("nr -1: got %#x, want the default action", got)
	}
	// x32 numbers on x86_64 are not x86_64 calls.
	if got := v.run(x64, x32SyscallBit); got != retKillP {
		t.Errorf("unlisted x32: got %#x, want kill process", got)
	}
}

func TestDefaultErrnoRet(t *testing.T) {
	cfg := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: uintp(uint(unix.EACCES)),
		Syscalls:        []specs.LinuxSyscall{{Names: []string{"read", "kill"}, Action: specs.ActAllow}},
	}
	v := newVM(t, cfg)
	if got := v.run(unix.AUDIT_ARCH_X86_64, unix.SYS_WRITE); got != unix.SECCOMP_RET_ERRNO|uint32(unix.EACCES) {
		t.Errorf("write: got %#x, want EACCES", got)
	}
	if got := v.run(unix.AUDIT_ARCH_X86_64, unix.SYS_READ); got != retAllow {
		t.Errorf("read: got %#x, want allow", got)
	}
}

// TestArgComparisons checks every operator against Go's own arithmetic on
// random and boundary values, for 64-bit (x86_64) and 32-bit (i386)
// argument handling.
func TestArgComparisons(t *testing.T) {
	ops := map[specs.LinuxSeccompOperator]func(a, v, v2 uint64) bool{
		specs.OpEqualTo:      func(a, v, _ uint64) bool { return a == v },
		specs.OpNotEqual:     func(a, v, _ uint64) bool { return a != v },
		specs.OpLessThan:     func(a, v, _ uint64) bool { return a < v },
		specs.OpLessEqual:    func(a, v, _ uint64) bool { return a <= v },
		specs.OpGreaterThan:  func(a, v, _ uint64) bool { return a > v },
		specs.OpGreaterEqual: func(a, v, _ uint64) bool { return a >= v },
		specs.OpMaskedEqual:  func(a, v, v2 uint64) bool { return a&v == v2 },
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(base uint64) uint64 {
		switch rng.IntN(6) {
		case 0:
			return base
		case 1:
			return base + 1
		case 2:
			return base - 1
		case 3:
			return base ^ (1 << 32)
		case 4:
			return base&0xffffffff | uint64(rng.Uint32())<<32
		}
		return rng.Uint64()
	}
	for op, eval := range ops {
		for range 30 {
			v, v2 := pick(rng.Uint64()), rng.Uint64()
			if op == specs.OpMaskedEqual {
				v2 &= v
			}
			idx := uint(rng.IntN(6))
			cfg := &specs.LinuxSeccomp{
				DefaultAction: specs.ActErrno,
				Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86},
				Syscalls: []specs.LinuxSyscall{{
					Names: []string{"ioctl"}, Action: specs.ActAllow,
					Args: []specs.LinuxSeccompArg{{Index: idx, Value: v, ValueTwo: v2, Op: op}},
				}},
			}
			m := newVM(t, cfg)
			for range 20 {
				a := pick(v)
				args := make([]uint64, 6)
				args[idx] = a
				want := eval(a, v, v2)
				got := m.run(unix.AUDIT_ARCH_X86_64, unix.SYS_IOCTL, args...) == retAllow
				if got != want {
					t.Fatalf("x86_64 %s(arg%d=%#x, %#x, %#x): got %v, want %v", op, idx, a, v, v2, got, want)
				}
				// i386: 32-bit comparison of the low halves.
				want32 := eval(a&0xffffffff, v&0xffffffff, v2&0xffffffff)
				got32 := m.run(unix.AUDIT_ARCH_I386, 54, args...) == retAllow
				if got32 != want32 {
					t.Fatalf("i386 %s(arg%d=%#x, %#x, %#x): got %v, want %v", op, idx, a, v, v2, got32, want32)
				}
			}
		}
	}
}

func TestArgsAndOr(t *testing.T) {
	cfg := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Syscalls: []specs.LinuxSyscall{
			// Different indexes: AND.
			{Names: []string{"kill"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 1, Op: specs.OpEqualTo}, {Index: 1, Value: 9, Op: specs.OpEqualTo}}},
			// Same index twice: OR (runc's behaviour).
			{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 2, Op: specs.OpEqualTo}, {Index: 0, Value: 10, Op: specs.OpEqualTo}}},
		},
	}
	v := newVM(t, cfg)
	x := uint32(unix.AUDIT_ARCH_X86_64)
	for _, c := range []struct {
		nr   uint32
		args []uint64
		want uint32
	}{
		{unix.SYS_KILL, []uint64{1, 9}, retAllow},
		{unix.SYS_KILL, []uint64{1, 15}, retEPERM},
		{unix.SYS_KILL, []uint64{2, 9}, retEPERM},
		{unix.SYS_SOCKET, []uint64{2}, retAllow},
		{unix.SYS_SOCKET, []uint64{10}, retAllow},
		{unix.SYS_SOCKET, []uint64{1}, retEPERM},
	} {
		if got := v.run(x, c.nr, c.args...); got != c.want {
			t.Errorf("nr %d %v: got %#x, want %#x", c.nr, c.args, got, c.want)
		}
	}
}

func TestMostRestrictiveWins(t *testing.T) {
	cfg := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"kill"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0, Op: specs.OpEqualTo}}},
			{Names: []string{"kill"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 1, Value: 9, Op: specs.OpLessEqual}}},
			{Names: []string{"kill"}, Action: specs.ActKillProcess, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: specs.OpEqualTo}}},
		},
	}
	v := newVM(t, cfg)
	x := uint32(unix.AUDIT_ARCH_X86_64)
	for _, c := range []struct {
		args []uint64
		want uint32
	}{
		{[]uint64{5, 0}, retEPERM},  // allow and errno both match: errno
		{[]uint64{1, 0}, retKillP},  // all three match: kill
		{[]uint64{5, 15}, retAllow}, // none match: default
	} {
		if got := v.run(x, unix.SYS_KILL, c.args...); got != c.want {
			t.Errorf("kill%v: got %#x, want %#x", c.args, got, c.want)
		}
	}
}

// TestFarJumps builds a profile whose rules span far more than 255
// instructions and checks every rule still routes right.
func TestFarJumps(t *testing.T) {
	var names []string
	for name := range sysX86_64() {
		names = append(names, name)
	}
	cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess}
	for i, n := range names {
		cfg.Syscalls = append(cfg.Syscalls, specs.LinuxSyscall{
			Names: []string{n}, Action: specs.ActErrno, ErrnoRet: uintp(uint(i % 4000)),
			Args: []specs.LinuxSeccompArg{{Index: 2, Value: uint64(i) << 33, Op: specs.OpGreaterEqual}},
		})
	}
	v := newVM(t, cfg)
	for i, n := range names {
		nr := sysX86_64()[n]
		if got, want := v.run(unix.AUDIT_ARCH_X86_64, nr, 0, 0, uint64(i)<<33), unix.SECCOMP_RET_ERRNO|uint32(i%4000); got != want {
			t.Fatalf("%s: got %#x, want %#x", n, got, want)
		}
		if i > 0 {
			if got := v.run(unix.AUDIT_ARCH_X86_64, nr, 0, 0, uint64(i)<<33-1); got != retKillP {
				t.Fatalf("%s below bound: got %#x, want kill", n, got)
			}
		}
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  specs.LinuxSeccomp
		want string
	}{
		{"no default", specs.LinuxSeccomp{}, "defaultAction is required"},
		{"bad default", specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_MAYBE"}, `unknown action "SCMP_ACT_MAYBE"`},
		{"notify", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActNotify}}}, "SCMP_ACT_NOTIFY is not supported"},
		{"listener", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/run/x.sock"}, "listenerPath"},
		{"errno on allow", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow, ErrnoRet: uintp(1)}}}, "errnoRet is only valid"},
		{"index", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}}, "index 6 out of range"},
		{"op", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_ABOUT"}}}}}, `unknown operator "SCMP_CMP_ABOUT"`},
		{"arch", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"SCMP_ARCH_Z80"}}, `unknown architecture "SCMP_ARCH_Z80"`},
		{"flag", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_FAST"}}, `unknown flag`},
		{"no names", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Action: specs.ActErrno}}}, "no names"},
	}
	for _, c := range cases {
		_, err := Compile(&c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to contain %q", c.name, err, c.want)
		}
	}
}

func TestFlags(t *testing.T) {
	f, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow}})
	if err != nil {
		t.Fatal(err)
	}
	if f.Flags != unix.SECCOMP_FILTER_FLAG_LOG|unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW {
		t.Errorf("flags = %#x", f.Flags)
	}
}

func BenchmarkCompileDefault(b *testing.B) {
	p := defaultProfile(b, dockerCaps...)
	for b.Loop() {
		if _, err := Compile(p); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDockerProfileARM64 compiles for an arm64 host (aarch64 plus the
// 32-bit arm ABI) and checks the same rules with arm64 numbers.
func TestDockerProfileARM64(t *testing.T) {
	old := goarch
	goarch = "arm64"
	t.Cleanup(func() { goarch = old })
	cfg := defaultProfile(t, dockerCaps...)
	cfg.Architectures = []specs.Arch{specs.ArchAARCH64, specs.ArchARM, specs.ArchX86_64}
	v := newVM(t, cfg)
	a64, a32 := uint32(unix.AUDIT_ARCH_AARCH64), uint32(unix.AUDIT_ARCH_ARM)
	for _, c := range []struct {
		name  string
		audit uint32
		nr    uint32
		args  []uint64
		want  uint32
	}{
		{"read", a64, sysAARCH64()["read"], nil, retAllow},
		{"openat", a64, sysAARCH64()["openat"], nil, retAllow},
		{"keyctl", a64, sysAARCH64()["keyctl"], nil, retEPERM},
		{"unshare", a64, sysAARCH64()["unshare"], []uint64{unix.CLONE_NEWUSER}, retEPERM},
		{"personality(0)", a64, sysAARCH64()["personality"], []uint64{0}, retAllow},
		{"personality(0x40000)", a64, sysAARCH64()["personality"], []uint64{0x40000}, retEPERM},
		{"clone newuser", a64, sysAARCH64()["clone"], []uint64{unix.CLONE_NEWUSER}, retEPERM},
		{"clone thread", a64, sysAARCH64()["clone"], []uint64{unix.CLONE_THREAD | unix.CLONE_VM | unix.CLONE_SIGHAND}, retAllow},
		{"clone3", a64, sysAARCH64()["clone3"], nil, retENOSYS},
		{"arm read", a32, sysARM()["read"], nil, retAllow},
		{"arm keyctl", a32, sysARM()["keyctl"], nil, retEPERM},
		{"x86_64 is not this host's", unix.AUDIT_ARCH_X86_64, 0, nil, retKillP},
	} {
		if got := v.run(c.audit, c.nr, c.args...); got != c.want {
			t.Errorf("%s: got %#x, want %#x", c.name, got, c.want)
		}
	}
}

// A compiled filter survives the trip to the init: the decoded program is
// the compiled one, instruction for instruction.
func TestFilterBinaryRoundTrip(t *testing.T) {
	f, err := Compile(defaultProfile(t, dockerCaps...))
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 8*len(f.Instructions) {
		t.Fatalf("%d bytes for %d instructions", len(b), len(f.Instructions))
	}
	var g Filter
	if err := g.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g.Instructions, f.Instructions) {
		t.Fatal("decoded program differs from the compiled one")
	}
	if err := g.UnmarshalBinary(b[:len(b)-3]); err == nil {
		t.Fatal("a truncated program decoded without error")
	}
}
