//go:build amd64

// The tests use x86_64 syscall numbers for the host's own calls.

package seccomp

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// reference evaluates a profile for one x86_64 call the slow, obvious way,
// following the semantics in the package documentation.
func reference(cfg *specs.LinuxSeccomp, nr uint32, args []uint64) uint32 {
	ret := func(act specs.LinuxSeccompAction, errno *uint) uint32 {
		r, err := actionRet(act, errno)
		if err != nil {
			panic(err)
		}
		return r
	}
	defRet := ret(cfg.DefaultAction, cfg.DefaultErrnoRet)
	if nr == 0xffffffff {
		if cfg.DefaultAction == specs.ActErrno {
			return unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
		}
		return defRet
	}
	holds := func(c specs.LinuxSeccompArg) bool {
		a := args[c.Index]
		switch c.Op {
		case specs.OpEqualTo:
			return a == c.Value
		case specs.OpNotEqual:
			return a != c.Value
		case specs.OpLessThan:
			return a < c.Value
		case specs.OpLessEqual:
			return a <= c.Value
		case specs.OpGreaterThan:
			return a > c.Value
		case specs.OpGreaterEqual:
			return a >= c.Value
		case specs.OpMaskedEqual:
			return a&c.Value == c.ValueTwo
		}
		panic(c.Op)
	}
	var (
		maxNr, best uint32
		known, hit  bool
		anyKnown    bool
		bestRank    int
	)
	for _, sc := range cfg.Syscalls {
		r := ret(sc.Action, sc.ErrnoRet)
		for _, name := range sc.Names {
			n, ok := sysX86_64()[name]
			if !ok {
				continue
			}
			maxNr, anyKnown = max(maxNr, n), true
			if n != nr {
				continue
			}
			known = true
			for _, conj := range splitArgs(sc.Args) {
				all := true
				for _, c := range conj {
					all = all && holds(c)
				}
				// First match of the most restrictive rank wins.
				if all && (!hit || rank(r) < bestRank) {
					hit, best, bestRank = true, r, rank(r)
				}
			}
		}
	}
	switch {
	case hit:
		return best
	case !known && cfg.DefaultAction == specs.ActErrno && len(cfg.Syscalls) > 0 && anyKnown && nr > maxNr:
		return unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	}
	return defRet
}

var (
	propNames = []string{"read", "write", "open", "close", "ioctl", "kill", "socket", "clone", "personality",
		"mmap", "futex", "getpid", "unshare", "keyctl", "setns", "mount", "bpf", "listns", "no_such_call",
		"process_vm_readv", "rseq_slice_yield", "arch_prctl"}
	propValues = []uint64{0, 1, 2, 7, 0x7fffffff, 0x80000000, 0xffffffff, 1 << 32, 1<<32 + 1, 0xffffffff00000000, ^uint64(0)}
	propOps    = []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual,
		specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual}
	propActs = []specs.LinuxSeccompAction{specs.ActAllow, specs.ActErrno, specs.ActKill, specs.ActKillProcess,
		specs.ActTrap, specs.ActLog, specs.ActTrace}
)

func randomProfile(rng *rand.Rand) *specs.LinuxSeccomp {
	value := func() uint64 {
		v := propValues[rng.IntN(len(propValues))]
		if rng.IntN(4) == 0 {
			v = rng.Uint64()
		}
		return v
	}
	action := func() (specs.LinuxSeccompAction, *uint) {
		a := propActs[rng.IntN(len(propActs))]
		if (a == specs.ActErrno || a == specs.ActTrace) && rng.IntN(2) == 0 {
			e := uint(rng.IntN(200))
			return a, &e
		}
		return a, nil
	}
	cfg := &specs.LinuxSeccomp{Architectures: []specs.Arch{specs.ArchX86_64}}
	cfg.DefaultAction, cfg.DefaultErrnoRet = action()
	for range rng.IntN(40) {
		var sc specs.LinuxSyscall
		for range 1 + rng.IntN(3) {
			sc.Names = append(sc.Names, propNames[rng.IntN(len(propNames))])
		}
		sc.Action, sc.ErrnoRet = action()
		for range rng.IntN(4) {
			sc.Args = append(sc.Args, specs.LinuxSeccompArg{
				Index: uint(rng.IntN(3)), Op: propOps[rng.IntN(len(propOps))], Value: value(), ValueTwo: value(),
			})
		}
		cfg.Syscalls = append(cfg.Syscalls, sc)
	}
	return cfg
}

func checkProfile(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	cfg := randomProfile(rng)
	v := newVM(t, cfg)
	var nrs []uint32
	for _, n := range propNames {
		if nr, ok := sysX86_64()[n]; ok {
			nrs = append(nrs, nr)
		}
	}
	nrs = append(nrs, 0xffffffff, 999, 3)
	for range 300 {
		nr := nrs[rng.IntN(len(nrs))]
		args := make([]uint64, 6)
		for i := range 3 {
			args[i] = propValues[rng.IntN(len(propValues))]
			switch rng.IntN(5) {
			case 0:
				args[i]++
			case 1:
				args[i]--
			case 2:
				args[i] = rng.Uint64()
			}
		}
		got := v.run(unix.AUDIT_ARCH_X86_64, nr, args...)
		if want := reference(cfg, nr, args); got != want {
			t.Fatalf("seed %d: nr %d args %#x: filter %#x, reference %#x\nprofile: %+v", seed, nr, args[:3], got, want, cfg)
		}
	}
}

// TestRandomProfiles compares the compiled filter, run in the BPF
// interpreter, with the reference evaluator on random profiles and calls.
func TestRandomProfiles(t *testing.T) {
	for seed := range uint64(300) {
		checkProfile(t, seed)
	}
}

func FuzzCompile(f *testing.F) {
	for _, s := range []uint64{1, 2, 3, 42} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, seed uint64) { checkProfile(t, seed) })
}

// TestDockerDefaultProfileEveryCall runs every x86_64 syscall number (and
// past the end) with a few argument patterns through the compiled default
// profile and the reference evaluator: the ranges that merge neighbouring
// syscalls must not change a single decision.
func TestDockerDefaultProfileEveryCall(t *testing.T) {
	for _, caps := range [][]string{dockerCaps, append(slices.Clone(dockerCaps), "CAP_SYS_ADMIN", "CAP_SYS_PTRACE")} {
		cfg := defaultProfile(t, caps...)
		v := newVM(t, cfg)
		patterns := [][]uint64{
			{0, 0, 0},
			{unix.CLONE_NEWUSER, 0, 0},
			{unix.AF_NETLINK, 0, 0},
			{0x20008, 0, 0},
			{^uint64(0), ^uint64(0), ^uint64(0)},
		}
		for nr := uint32(0); nr <= 1100; nr++ {
			for _, p := range patterns {
				args := append(slices.Clone(p), 0, 0, 0)
				if got, want := v.run(unix.AUDIT_ARCH_X86_64, nr, args...), reference(cfg, nr, args); got != want {
					t.Fatalf("caps %v: nr %d args %#x: filter %#x, reference %#x", caps, nr, p, got, want)
				}
			}
		}
	}
}

// TestDefaultProfileSize keeps the default profile's program small: the
// kernel checks and compiles it at every container start.
func TestDefaultProfileSize(t *testing.T) {
	f, err := Compile(defaultProfile(t, dockerCaps...))
	if err != nil {
		t.Fatal(err)
	}
	// Three architectures (x86_64, x32, i386) of about 350 syscalls each;
	// one comparison per syscall took 1565 instructions.
	if n := len(f.Instructions); n > 800 {
		t.Fatalf("the default profile compiles to %d instructions", n)
	}
}
