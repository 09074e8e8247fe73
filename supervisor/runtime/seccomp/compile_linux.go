package seccomp

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// maxInstructions is the kernel's BPF_MAXINSNS.
const maxInstructions = 4096

// x32SyscallBit marks x32 syscall numbers on the x86_64 audit arch.
const x32SyscallBit = 0x40000000

// Offsets into struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// BPF opcodes used by the compiler.
const (
	opLdAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	opAnd   = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	opJa    = unix.BPF_JMP | unix.BPF_JA
	opJeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	opJgt   = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
	opJge   = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	opRet   = unix.BPF_RET | unix.BPF_K
)

// arch describes one syscall ABI the compiler has tables for.
type arch struct {
	name   specs.Arch
	audit  uint32
	table  func() map[string]uint32
	base   uint32 // added to every number (x32's syscall bit)
	bits64 bool
}

var (
	archX86_64 = &arch{name: specs.ArchX86_64, audit: unix.AUDIT_ARCH_X86_64, table: sysX86_64, bits64: true}
	archX86    = &arch{name: specs.ArchX86, audit: unix.AUDIT_ARCH_I386, table: sysI386}
	archX32    = &arch{name: specs.ArchX32, audit: unix.AUDIT_ARCH_X86_64, table: sysX32, base: x32SyscallBit, bits64: true}
	archARM64  = &arch{name: specs.ArchAARCH64, audit: unix.AUDIT_ARCH_AARCH64, table: sysAARCH64, bits64: true}
	archARM    = &arch{name: specs.ArchARM, audit: unix.AUDIT_ARCH_ARM, table: sysARM}
)

// knownArches lists every architecture name of the runtime spec; the ones
// without tables are ignored.
var knownArches = map[specs.Arch]*arch{
	specs.ArchX86_64: archX86_64, specs.ArchX86: archX86, specs.ArchX32: archX32,
	specs.ArchAARCH64: archARM64, specs.ArchARM: archARM, specs.ArchMIPS: nil, specs.ArchMIPS64: nil,
	specs.ArchMIPS64N32: nil, specs.ArchMIPSEL: nil, specs.ArchMIPSEL64: nil,
	specs.ArchMIPSEL64N32: nil, specs.ArchPPC: nil, specs.ArchPPC64: nil, specs.ArchPPC64LE: nil,
	specs.ArchS390: nil, specs.ArchS390X: nil, specs.ArchPARISC: nil, specs.ArchPARISC64: nil,
	specs.ArchRISCV64: nil, specs.ArchLOONGARCH64: nil,
}

// goarch is the architecture Compile builds for (a variable so tests can
// compile for the other ones).
var goarch = runtime.GOARCH

// nativeArch is the architecture this binary's own syscalls use, and the
// compat ABIs its kernel can run next to it.
func nativeArch() (native *arch, compat []*arch, err error) {
	switch goarch {
	case "amd64":
		return archX86_64, []*arch{archX86, archX32}, nil
	case "386":
		return archX86, nil, nil
	case "arm64":
		return archARM64, []*arch{archARM}, nil
	case "arm":
		return archARM, nil, nil
	}
	return nil, nil, fmt.Errorf("seccomp: no syscall tables for %s", goarch)
}

var filterFlags = map[specs.LinuxSeccompFlag]uint{
	specs.LinuxSeccompFlagLog:              unix.SECCOMP_FILTER_FLAG_LOG,
	specs.LinuxSeccompFlagSpecAllow:        unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
	specs.LinuxSeccompFlagWaitKillableRecv: unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
	"SECCOMP_FILTER_FLAG_TSYNC":            unix.SECCOMP_FILTER_FLAG_TSYNC,
}

// Compile turns cfg into a BPF program for the native architecture and the
// compatible ones cfg lists. A nil cfg (unconfined) returns nil, nil.
func Compile(cfg *specs.LinuxSeccomp) (*Filter, error) {
	if cfg == nil {
		return nil, nil
	}
	if cfg.ListenerPath != "" {
		return nil, errors.New("seccomp: listenerPath is not supported (berth runs no seccomp agent)")
	}
	native, compat, err := nativeArch()
	if err != nil {
		return nil, err
	}
	f := &Filter{}
	for _, fl := range cfg.Flags {
		v, ok := filterFlags[fl]
		if !ok {
			return nil, fmt.Errorf("seccomp: unknown flag %q", fl)
		}
		if v != unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV { // only means something with a listener
			f.Flags |= v
		}
	}
	if cfg.DefaultAction == "" {
		return nil, errors.New("seccomp: defaultAction is required")
	}
	defRet, err := actionRet(cfg.DefaultAction, cfg.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("seccomp: defaultAction: %w", err)
	}

	// Architectures: the native one always, plus the listed ones we have
	// tables for.
	arches := []*arch{native}
	for _, name := range cfg.Architectures {
		a, ok := knownArches[name]
		if !ok {
			return nil, fmt.Errorf("seccomp: unknown architecture %q", name)
		}
		// Only ABIs this host's kernel can run matter: a filter
		// block for the others would never be reached.
		if a != nil && slices.Contains(compat, a) && !slices.Contains(arches, a) {
			arches = append(arches, a)
		}
	}

	var rules []rule
	for i, sc := range cfg.Syscalls {
		if len(sc.Names) == 0 {
			return nil, fmt.Errorf("seccomp: syscalls[%d]: no names", i)
		}
		ret, err := actionRet(sc.Action, sc.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("seccomp: syscalls[%d] (%s): %w", i, sc.Names[0], err)
		}
		for j, a := range sc.Args {
			if a.Index >= 6 {
				return nil, fmt.Errorf("seccomp: syscalls[%d] (%s): args[%d]: index %d out of range 0-5", i, sc.Names[0], j, a.Index)
			}
			if _, ok := opNames[a.Op]; !ok {
				return nil, fmt.Errorf("seccomp: syscalls[%d] (%s): args[%d]: unknown operator %q", i, sc.Names[0], j, a.Op)
			}
		}
		for _, args := range splitArgs(sc.Args) {
			for _, n := range sc.Names {
				rules = append(rules, rule{name: n, ret: ret, args: args, order: len(rules)})
			}
		}
	}

	a := &asm{}
	badArch := a.ret(unix.SECCOMP_RET_KILL_PROCESS)
	blocks := map[*arch]int{}
	// The x32 block goes first (it is reached from the x86_64 block).
	var x32Block = badArch
	if slices.Contains(arches, archX32) {
		x32Block = a.archBlock(archX32, rules, defRet, cfg.DefaultAction)
	}
	for i := len(arches) - 1; i >= 0; i-- {
		ar := arches[i]
		if ar == archX32 {
			continue
		}
		blk := a.archBlock(ar, rules, defRet, cfg.DefaultAction)
		if ar == archX86_64 {
			// x32 calls share the x86_64 audit arch and carry the
			// x32 bit in the number. Number -1 is no syscall (the
			// kernel answers ENOSYS; tracers use it to skip one): it
			// gets the default action, not the bad-arch kill.
			blk = a.jump(opJge, x32SyscallBit, x32Block, blk)
			minusOne := a.ret(defRet)
			if cfg.DefaultAction == specs.ActErrno {
				minusOne = a.ret(unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS))
			}
			blk = a.jump(opJeq, 0xffffffff, minusOne, blk)
		}
		blocks[ar] = a.stmt(opLdAbs, offNr, blk)
	}
	// Arch dispatch: x86_64's audit value covers x32 too.
	next := badArch
	for i := len(arches) - 1; i >= 0; i-- {
		ar := arches[i]
		if ar == archX32 {
			continue
		}
		next = a.jump(opJeq, ar.audit, blocks[ar], next)
	}
	a.stmt(opLdAbs, offArch, next)
	if a.err != nil {
		return nil, a.err
	}
	f.Instructions = a.program()
	if len(f.Instructions) > maxInstructions {
		return nil, fmt.Errorf("seccomp: profile compiles to %d instructions, the kernel takes at most %d", len(f.Instructions), maxInstructions)
	}
	return f, nil
}

// rule is one (syscall name, conditions, action) triple.
type rule struct {
	name  string
	ret   uint32
	args  []specs.LinuxSeccompArg
	order int
}

// splitArgs returns the conjunctions to add for one syscall entry: the
// whole list, or one single-comparison list per comparison when an argument
// index repeats (runc's rule).
func splitArgs(args []specs.LinuxSeccompArg) [][]specs.LinuxSeccompArg {
	seen := map[uint]bool{}
	repeat := false
	for _, a := range args {
		if seen[a.Index] {
			repeat = true
		}
		seen[a.Index] = true
	}
	if !repeat {
		return [][]specs.LinuxSeccompArg{args}
	}
	out := make([][]specs.LinuxSeccompArg, 0, len(args))
	for _, a := range args {
		out = append(out, []specs.LinuxSeccompArg{a})
	}
	return out
}

var opNames = map[specs.LinuxSeccompOperator]bool{
	specs.OpNotEqual: true, specs.OpLessThan: true, specs.OpLessEqual: true, specs.OpEqualTo: true,
	specs.OpGreaterEqual: true, specs.OpGreaterThan: true, specs.OpMaskedEqual: true,
}

// actionRet maps an OCI action to the filter's return value.
func actionRet(act specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	data := uint32(unix.EPERM)
	if errnoRet != nil {
		if act != specs.ActErrno && act != specs.ActTrace {
			return 0, fmt.Errorf("errnoRet is only valid with SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not %s", act)
		}
		if *errnoRet > 0xffff {
			return 0, fmt.Errorf("errnoRet %d out of range", *errnoRet)
		}
		data = uint32(*errnoRet)
	}
	switch act {
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | data, nil
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE | data, nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActNotify:
		return 0, errors.New("SCMP_ACT_NOTIFY is not supported (berth runs no seccomp agent)")
	}
	return 0, fmt.Errorf("unknown action %q", act)
}

// rank orders return values by the kernel's precedence, most restrictive
// first.
func rank(ret uint32) int {
	switch ret & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_KILL_PROCESS:
		return 0
	case unix.SECCOMP_RET_KILL_THREAD:
		return 1
	case unix.SECCOMP_RET_TRAP:
		return 2
	case unix.SECCOMP_RET_ERRNO:
		return 3
	case unix.SECCOMP_RET_USER_NOTIF:
		return 4
	case unix.SECCOMP_RET_TRACE:
		return 5
	case unix.SECCOMP_RET_LOG:
		return 6
	}
	return 7
}

// archBlock emits the dispatch for one architecture, assuming the syscall
// number is already in A, and returns its first instruction.
func (a *asm) archBlock(ar *arch, rules []rule, defRet uint32, defAct specs.LinuxSeccompAction) int {
	byNr := map[uint32][]rule{}
	var maxNr uint32
	for _, r := range rules {
		n, ok := ar.table()[r.name]
		if !ok {
			continue // unknown on this arch: skipped, like runc
		}
		n += ar.base
		byNr[n] = append(byNr[n], r)
		maxNr = max(maxNr, n)
	}
	nrs := make([]uint32, 0, len(byNr))
	for n := range byNr {
		nrs = append(nrs, n)
	}
	slices.Sort(nrs)

	tree := a.dispatch(ar, segments(nrs, byNr), defRet)
	if defAct == specs.ActErrno && len(nrs) > 0 {
		// Calls newer than anything the profile names: ENOSYS, so
		// libcs fall back to older calls (runc does the same).
		tree = a.jump(opJgt, maxNr, a.ret(unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS)), tree)
	}
	return tree
}

// segment is a run of consecutive syscall numbers lo..hi whose calls all
// simply return ret, or a single number whose rules test arguments.
type segment struct {
	lo, hi uint32
	ret    uint32
	rules  []rule // nil: a plain run
}

// segments groups the sorted syscall numbers nrs: neighbours that return
// the same without looking at arguments share one range check, so that
// Docker's default profile takes about a third of the instructions (a
// smaller program is quicker for the kernel to check and compile at
// every container start).
func segments(nrs []uint32, byNr map[uint32][]rule) []segment {
	var out []segment
	for _, n := range nrs {
		rs := effectiveRules(byNr[n])
		if len(rs[0].args) > 0 {
			out = append(out, segment{lo: n, hi: n, rules: rs})
			continue
		}
		ret := rs[0].ret
		if k := len(out) - 1; k >= 0 && out[k].rules == nil && out[k].ret == ret && out[k].hi+1 == n {
			out[k].hi = n
			continue
		}
		out = append(out, segment{lo: n, hi: n, ret: ret})
	}
	return out
}

// dispatch emits a binary search over the sorted, disjoint segments (the
// syscall number in A), with short linear runs at the leaves, so a call
// costs about log2(len(segs)) comparisons rather than len(segs).
func (a *asm) dispatch(ar *arch, segs []segment, defRet uint32) int {
	if len(segs) <= 4 {
		next := a.ret(defRet)
		for i := len(segs) - 1; i >= 0; i-- {
			s := segs[i]
			var body int
			if s.rules != nil {
				body = a.syscallBody(ar, s.rules, defRet)
			} else {
				body = a.ret(s.ret)
			}
			if s.lo == s.hi {
				next = a.jump(opJeq, s.lo, body, next)
				continue
			}
			in := a.jump(opJgt, s.hi, next, body)
			next = a.jump(opJge, s.lo, in, next)
		}
		return next
	}
	mid := len(segs) / 2
	high := a.dispatch(ar, segs[mid:], defRet)
	low := a.dispatch(ar, segs[:mid], defRet)
	return a.jump(opJge, segs[mid].lo, high, low)
}

// effectiveRules orders the rules of one syscall most restrictive first
// and drops those after the first unconditional one, which no call
// reaches.
func effectiveRules(rs []rule) []rule {
	rs = slices.Clone(rs)
	sort.SliceStable(rs, func(i, j int) bool {
		if ri, rj := rank(rs[i].ret), rank(rs[j].ret); ri != rj {
			return ri < rj
		}
		return rs[i].order < rs[j].order
	})
	for i, r := range rs {
		if len(r.args) == 0 {
			return rs[:i+1]
		}
	}
	return rs
}

// syscallBody emits the rules of one syscall (as effectiveRules orders
// them); when none matches, the default action applies.
func (a *asm) syscallBody(ar *arch, rs []rule, defRet uint32) int {
	next := a.ret(defRet)
	for i := len(rs) - 1; i >= 0; i-- {
		r := rs[i]
		if len(r.args) == 0 {
			next = a.ret(r.ret)
			continue
		}
		ok := a.ret(r.ret)
		for j := len(r.args) - 1; j >= 0; j-- {
			ok = a.compare(ar, r.args[j], ok, next)
		}
		next = ok
	}
	return next
}

// compare emits one argument comparison that goes to ok when it holds and
// to fail otherwise, and returns its first instruction.
func (a *asm) compare(ar *arch, c specs.LinuxSeccompArg, ok, fail int) int {
	lo := uint32(offArgs + 8*c.Index)
	hi := lo + 4 // little-endian x86
	v, v2 := c.Value, c.ValueTwo
	vlo, vhi := uint32(v), uint32(v>>32)

	// eq emits "(word & mask) == want" for one half.
	eq := func(off, mask, want uint32, t, f int) int {
		j := a.jump(opJeq, want, t, f)
		if mask != 0xffffffff {
			j = a.stmt(opAnd, mask, j)
		}
		return a.stmt(opLdAbs, off, j)
	}
	// gt emits "arg > v" (strict) or "arg >= v" for the whole value.
	gt := func(strict bool, t, f int) int {
		loOp := uint16(opJge)
		if strict {
			loOp = opJgt
		}
		loChk := a.stmt(opLdAbs, lo, a.jump(loOp, vlo, t, f))
		if !ar.bits64 {
			return loChk
		}
		hiEq := a.jump(opJeq, vhi, loChk, f)
		return a.stmt(opLdAbs, hi, a.jump(opJgt, vhi, t, hiEq))
	}
	both := func(mask uint64, want uint64, t, f int) int {
		r := eq(lo, uint32(mask), uint32(want), t, f)
		if ar.bits64 {
			r = eq(hi, uint32(mask>>32), uint32(want>>32), r, f)
		}
		return r
	}
	switch c.Op {
	case specs.OpEqualTo:
		return both(^uint64(0), v, ok, fail)
	case specs.OpNotEqual:
		return both(^uint64(0), v, fail, ok)
	case specs.OpMaskedEqual:
		return both(v, v2, ok, fail)
	case specs.OpGreaterThan:
		return gt(true, ok, fail)
	case specs.OpGreaterEqual:
		return gt(false, ok, fail)
	case specs.OpLessThan:
		return gt(false, fail, ok)
	case specs.OpLessEqual:
		return gt(true, fail, ok)
	}
	a.err = fmt.Errorf("seccomp: unknown operator %q", c.Op)
	return fail
}
