package seccomp

import "golang.org/x/sys/unix"

// asm builds a BPF program backwards: every instruction is emitted after
// (in build order) the instructions it jumps to, so jump offsets are known
// when it is written. Conditional jumps reach only 255 instructions ahead;
// a farther target gets a copy of its return or an unconditional jump
// (32-bit offset) placed right after the jump. A label is an index into
// rev, the program in reverse.
type asm struct {
	rev  []unix.SockFilter
	rets map[uint32]int // return value -> label of its latest copy
	err  error
}

// dist is the offset from the next emitted instruction to label l.
func (a *asm) dist(l int) int { return len(a.rev) - l - 1 }

func (a *asm) emit(ins unix.SockFilter) int {
	a.rev = append(a.rev, ins)
	return len(a.rev) - 1
}

// ret returns a label holding "ret k", reusing a near copy.
func (a *asm) ret(k uint32) int {
	if l, ok := a.rets[k]; ok && a.dist(l) <= 200 {
		return l
	}
	if a.rets == nil {
		a.rets = map[uint32]int{}
	}
	l := a.emit(unix.SockFilter{Code: opRet, K: k})
	a.rets[k] = l
	return l
}

// near returns a label with the same effect as l that a conditional jump
// emitted next can reach.
func (a *asm) near(l int) int {
	if a.dist(l) <= 254 { // one slot spare for the other branch's trampoline
		return l
	}
	if ins := a.rev[l]; ins.Code == opRet {
		return a.ret(ins.K)
	}
	return a.emit(unix.SockFilter{Code: opJa, K: uint32(a.dist(l))})
}

// jump emits a conditional jump on A to t (true) or f (false).
func (a *asm) jump(code uint16, k uint32, t, f int) int {
	t = a.near(t)
	f = a.near(f)
	return a.emit(unix.SockFilter{Code: code, K: k, Jt: uint8(a.dist(t)), Jf: uint8(a.dist(f))})
}

// stmt emits a non-jump instruction that continues at next.
func (a *asm) stmt(code uint16, k uint32, next int) int {
	if next != len(a.rev)-1 {
		a.emit(unix.SockFilter{Code: opJa, K: uint32(a.dist(next))})
	}
	return a.emit(unix.SockFilter{Code: code, K: k})
}

// program returns the instructions in execution order.
func (a *asm) program() []unix.SockFilter {
	p := make([]unix.SockFilter, len(a.rev))
	for i, ins := range a.rev {
		p[len(p)-1-i] = ins
	}
	return p
}
