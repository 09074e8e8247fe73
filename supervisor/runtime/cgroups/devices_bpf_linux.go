//go:build !berth_initonly

package cgroups

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The v2 device controller is an eBPF program of type
// BPF_PROG_TYPE_CGROUP_DEVICE attached to the cgroup. The kernel runs it
// on every open/mknod of a device node with a struct bpf_cgroup_dev_ctx:
//
//	u32 access_type  // (access << 16) | type
//	u32 major
//	u32 minor
//
// type is BPF_DEVCG_DEV_BLOCK (1) or BPF_DEVCG_DEV_CHAR (2); access is a
// mask of BPF_DEVCG_ACC_MKNOD (1), READ (2), WRITE (4). The program
// returns 1 to allow and 0 to deny (EPERM).
const (
	bpfDevBlock = 1
	bpfDevChar  = 2
	bpfAccMknod = 1
	bpfAccRead  = 2
	bpfAccWrite = 4
)

// deviceFilter compiles OCI device rules into the program's
// instructions with v1's meaning: the last matching rule wins, and a
// device no rule matches is allowed (a v1 cgroup starts from its
// parent's allow-all; specs that restrict devices start with "deny a").
// An allow rule matches when it grants every requested access bit, a deny
// rule when it covers any of them.
func deviceFilter(rules []specs.LinuxDeviceCgroup) (asm.Instructions, error) {
	if err := validateDevices(rules); err != nil {
		return nil, err
	}
	insns := asm.Instructions{
		// R2 = type, R3 = access, R4 = major, R5 = minor
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
		asm.Mov.Reg32(asm.R3, asm.R2),
		asm.RSh.Imm32(asm.R3, 16),
		asm.And.Imm32(asm.R2, 0xffff),
		asm.LoadMem(asm.R4, asm.R1, 4, asm.Word),
		asm.LoadMem(asm.R5, asm.R1, 8, asm.Word),
	}
	// Walk the rules from the last: the first match found decides. Each
	// rule's failed checks jump to the label on the next block's first
	// instruction. A rule without checks always matches, so the rules
	// before it are dead code, which the verifier refuses: stop there.
	label := ""
	for i := len(rules) - 1; i >= 0; i-- {
		r := rules[i]
		next := fmt.Sprintf("rule%d", i)
		var block asm.Instructions
		switch r.Type {
		case "b":
			block = append(block, asm.JNE.Imm(asm.R2, bpfDevBlock, next))
		case "c":
			block = append(block, asm.JNE.Imm(asm.R2, bpfDevChar, next))
		}
		mask := int32(0)
		access := r.Access
		if access == "" {
			access = "rwm"
		}
		for _, c := range access {
			switch c {
			case 'r':
				mask |= bpfAccRead
			case 'w':
				mask |= bpfAccWrite
			case 'm':
				mask |= bpfAccMknod
			}
		}
		if mask != bpfAccRead|bpfAccWrite|bpfAccMknod {
			block = append(block, asm.Mov.Reg32(asm.R6, asm.R3))
			if r.Allow {
				// every requested bit must be granted: (access & ^mask) == 0
				block = append(block,
					asm.And.Imm32(asm.R6, ^mask&7),
					asm.JNE.Imm(asm.R6, 0, next))
			} else {
				// any requested bit covered denies: (access & mask) != 0
				block = append(block,
					asm.And.Imm32(asm.R6, mask),
					asm.JEq.Imm(asm.R6, 0, next))
			}
		}
		if r.Major != nil && *r.Major >= 0 {
			block = append(block, asm.JNE.Imm(asm.R4, int32(*r.Major), next))
		}
		if r.Minor != nil && *r.Minor >= 0 {
			block = append(block, asm.JNE.Imm(asm.R5, int32(*r.Minor), next))
		}
		unconditional := len(block) == 0
		verdict := int32(0)
		if r.Allow {
			verdict = 1
		}
		block = append(block, asm.Mov.Imm(asm.R0, verdict), asm.Return())
		if label != "" {
			block[0] = block[0].WithSymbol(label)
		}
		insns = append(insns, block...)
		if unconditional {
			return insns, nil
		}
		label = next
	}
	tail := asm.Instructions{asm.Mov.Imm(asm.R0, 1), asm.Return()}
	if label != "" {
		tail[0] = tail[0].WithSymbol(label)
	}
	return append(insns, tail...), nil
}

// setDeviceFilter loads the program for rules and attaches it to the
// cgroup directory dir, then detaches the programs that were attached
// before (an earlier Set): attach first, so there is no moment without a
// filter.
func setDeviceFilter(dir string, rules []specs.LinuxDeviceCgroup) error {
	insns, err := deviceFilter(rules)
	if err != nil {
		return err
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.CGroupDevice,
		Instructions: insns,
		License:      "Apache-2.0",
	})
	if err != nil {
		return fmt.Errorf("cgroup: loading device filter: %w", err)
	}
	defer prog.Close() // the attachment holds its own reference

	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cgroup: open %s: %w", dir, err)
	}
	defer unix.Close(fd)

	var old []ebpf.ProgramID
	if res, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: ebpf.AttachCGroupDevice}); err == nil {
		for _, p := range res.Programs {
			old = append(old, p.ID)
		}
	}
	if err := link.RawAttachProgram(link.RawAttachProgramOptions{
		Target:  fd,
		Program: prog,
		Attach:  ebpf.AttachCGroupDevice,
		Flags:   unix.BPF_F_ALLOW_MULTI,
	}); err != nil {
		return fmt.Errorf("cgroup: attaching device filter to %s: %w", dir, err)
	}
	var errs []error
	for _, id := range old {
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		err = link.RawDetachProgram(link.RawDetachProgramOptions{Target: fd, Program: p, Attach: ebpf.AttachCGroupDevice})
		p.Close()
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("cgroup: detaching old device filters from %s: %w", dir, errors.Join(errs...))
	}
	return nil
}
