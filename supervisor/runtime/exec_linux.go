package runtime

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/supervisor/runtime/nsenter"
)

// ExecOpts describe the stdio of an exec'd process.
type ExecOpts struct {
	IO IO
	// ConsoleSocket: as CreateOpts.ConsoleSocket, for process.terminal.
	ConsoleSocket string
}

// Process is a process exec'd into a running container. It is a child of
// the caller, who reaps it with Wait.
type Process struct {
	Pid     int
	proc    *os.Process
	console *os.File
	cinit   bool // the C init ran it (cinit_linux.go)
}

// Console is the pty master when the process asked for a terminal and no
// console socket was given. The caller owns it.
func (p *Process) Console() *os.File { return p.console }

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error { return p.proc.Signal(sig) }

// Wait waits for the process to exit (once; later calls fail).
func (p *Process) Wait(ctx context.Context) (ExitStatus, error) {
	type res struct {
		ps  *os.ProcessState
		err error
	}
	ch := make(chan res, 1)
	go func() {
		ps, err := p.proc.Wait()
		ch <- res{ps, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return ExitStatus{}, r.err
		}
		return exitStatusOf(r.ps.Sys().(syscall.WaitStatus)), nil
	case <-ctx.Done():
		return ExitStatus{}, ctx.Err()
	}
}

// ExecProcess returns a copy of the container's process with args
// replaced and no terminal: the usual starting point for Exec.
func (c *Container) ExecProcess(args ...string) *specs.Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	var p specs.Process
	if b, err := c.execBaseLocked(); err == nil && b.process != nil {
		// A copy the caller may change: the handle keeps the original.
		p = *b.process
		p.Env = slices.Clone(p.Env)
		p.Rlimits = slices.Clone(p.Rlimits)
		p.User.AdditionalGids = slices.Clone(p.User.AdditionalGids)
		if p.Capabilities != nil {
			caps := *p.Capabilities
			p.Capabilities = &caps
		}
	}
	p.Args = args
	p.Terminal = false
	return &p
}

// execBase is what Exec takes from the container's config. A handle
// keeps it after the first Exec: health checks exec every few seconds,
// and would otherwise decode the config and encode its seccomp profile
// (to find the compiled program) each time. Update does not touch it.
type execBase struct {
	process    *specs.Process // ExecProcess's starting point
	namespaces map[specs.LinuxNamespaceType]bool
	seccomp    *seccompProgram
}

func (c *Container) execBaseLocked() (*execBase, error) {
	if c.execBase != nil {
		return c.execBase, nil
	}
	s, err := c.specLocked()
	if err != nil {
		return nil, err
	}
	b := &execBase{process: s.Process, namespaces: map[specs.LinuxNamespaceType]bool{}}
	if s.Linux != nil {
		for _, ns := range s.Linux.Namespaces {
			b.namespaces[ns.Type] = true
		}
		if b.seccomp, err = compileSeccomp(s.Linux.Seccomp); err != nil {
			return nil, fmt.Errorf("exec: %w", err)
		}
	}
	c.execBase = b
	return b, nil
}

// nsOrder is the order in which an exec joins namespaces: the user
// namespace first (it owns the others), the mount namespace last (after
// it, /proc paths are the container's).
var nsOrder = []struct {
	typ  specs.LinuxNamespaceType
	proc string
}{
	{specs.UserNamespace, "user"}, {specs.IPCNamespace, "ipc"}, {specs.UTSNamespace, "uts"},
	{specs.NetworkNamespace, "net"}, {specs.PIDNamespace, "pid"}, {specs.CgroupNamespace, "cgroup"},
	{specs.MountNamespace, "mnt"},
}

// Exec starts p inside the container's namespaces and cgroup, with the
// same identity, capability, no_new_privs and seccomp handling as the
// init (p's own settings; see ExecProcess). The container must be
// created or running.
func (c *Container) Exec(ctx context.Context, p *specs.Process, opts ExecOpts) (_ *Process, retErr error) {
	if p == nil || len(p.Args) == 0 {
		return nil, fmt.Errorf("%w: exec: process.args is empty", ErrInvalidSpec)
	}
	if p.Cwd != "" && !strings.HasPrefix(p.Cwd, "/") {
		return nil, fmt.Errorf("%w: exec: cwd %q is not absolute", ErrInvalidSpec, p.Cwd)
	}
	c.mu.Lock()
	if !c.initAliveLocked() {
		c.mu.Unlock()
		return nil, fmt.Errorf("container %q: %w", c.id, ErrNotRunning)
	}
	pid, start := c.st.Pid, c.st.InitStartTime
	base, err := c.execBaseLocked()
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	// The C init, which links the nsenter code itself, where it can
	// (cinit_linux.go); else the Go one, which needs the cgo constructor.
	cfg := &initConfig{Mode: "exec", ID: c.id, Process: p, Seccomp: base.seccomp, LastCap: lastCapability(),
		NewUserNS: base.namespaces[specs.UserNamespace]}
	self, prog, err := cinitFor(cfg)
	if err != nil {
		return nil, err
	}
	usedC := self != nil
	if self == nil {
		if !nsenter.Available {
			return nil, fmt.Errorf("exec needs the cgo nsenter constructor: %w", ErrNotSupported)
		}
		if self, err = execExe(); err != nil {
			return nil, err
		}
	}

	var nsFiles []*os.File
	defer func() {
		for _, f := range nsFiles {
			f.Close()
		}
	}()
	for _, ns := range nsOrder {
		if !base.namespaces[ns.typ] {
			continue
		}
		f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/" + ns.proc)
		if err != nil {
			return nil, fmt.Errorf("container %q: %w", c.id, err)
		}
		nsFiles = append(nsFiles, f)
	}
	// The fds are only ours if the pid still is the init we recorded.
	if ps, err := ReadProcStat(pid); err != nil || ps.StartTime != start {
		return nil, fmt.Errorf("container %q: %w", c.id, ErrNotRunning)
	}

	parentSync, childSync, err := newSyncPair()
	if err != nil {
		return nil, err
	}
	defer parentSync.Close()
	pidR, pidW, err := os.Pipe()
	if err != nil {
		childSync.Close()
		return nil, err
	}
	defer pidR.Close()
	var fdList []string
	for i := range nsFiles {
		fdList = append(fdList, strconv.Itoa(5+i))
	}
	files, path := withSelfExe(append([]*os.File{childSync, pidW}, nsFiles...), self)
	cmd := &exec.Cmd{
		Path: path,
		Args: []string{"berth-exec", c.id},
		Env: append(initEnv("exec"),
			"_BERTH_NSENTER="+strings.Join(fdList, ","),
			"_BERTH_NSENTER_PIPE=4",
		),
		ExtraFiles: files,
	}
	opts.IO.setOn(cmd)
	err = cmd.Start()
	childSync.Close()
	pidW.Close()
	if err != nil {
		return nil, fmt.Errorf("exec: start: %w", err)
	}
	var buf [4]byte
	_, rerr := io.ReadFull(pidR, buf[:])
	werr := cmd.Wait()
	if rerr != nil || werr != nil {
		return nil, fmt.Errorf("exec: joining the container's namespaces failed: %v", errors.Join(rerr, werr))
	}
	xpid := int(int32(binary.NativeEndian.Uint32(buf[:])))
	proc, err := os.FindProcess(xpid)
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			_ = proc.Kill()
			_, _ = proc.Wait()
		}
	}()
	stop := context.AfterFunc(ctx, func() { _ = proc.Kill() })
	defer stop()
	if c.cg != nil {
		if err := c.cg.Apply(xpid); err != nil {
			return nil, fmt.Errorf("exec: cgroup: %w", err)
		}
	}
	if prog == nil {
		prog = encodeInitConfig(cfg)
	}
	if err := sendRaw(parentSync, prog, -1); err != nil {
		return nil, fmt.Errorf("exec: send config: %w", err)
	}
	console, err := c.awaitInit(parentSync, false, opts.ConsoleSocket)
	if err != nil {
		if console != nil {
			console.Close()
		}
		return nil, fmt.Errorf("exec: %w", err)
	}
	return &Process{Pid: xpid, proc: proc, console: console, cinit: usedC}, nil
}
