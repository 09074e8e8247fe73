//go:build !linux

package runtime

import (
	"context"
	"os"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/supervisor/runtime/cgroups"
)

// Runtime is Linux only; elsewhere every operation reports ErrNotSupported.
type Runtime struct{ root string }

func New(root string) (*Runtime, error) { return nil, ErrNotSupported }
func LoadInit() error                   { return ErrNotSupported }

func (r *Runtime) Root() string { return r.root }
func (r *Runtime) Create(ctx context.Context, id string, opts CreateOpts) (*Container, error) {
	return nil, ErrNotSupported
}
func (r *Runtime) Load(id string) (*Container, error) { return nil, ErrNotSupported }
func (r *Runtime) List() ([]State, error)             { return nil, ErrNotSupported }

// Container is Linux only.
type Container struct{ id string }

func (c *Container) ID() string                    { return c.id }
func (c *Container) Console() *os.File             { return nil }
func (c *Container) Start() error                  { return ErrNotSupported }
func (c *Container) State() (*State, error)        { return nil, ErrNotSupported }
func (c *Container) Init() (int, uint64)           { return 0, 0 }
func (c *Container) Spec() (*specs.Spec, error)    { return nil, ErrNotSupported }
func (c *Container) Kill(sig syscall.Signal) error { return ErrNotSupported }
func (c *Container) Wait(ctx context.Context) (ExitStatus, error) {
	return ExitStatus{}, ErrNotSupported
}
func (c *Container) Delete(ctx context.Context, force bool) error { return ErrNotSupported }
func (c *Container) Stats() (*cgroups.Stats, error)               { return nil, ErrNotSupported }
func (c *Container) Cgroup() cgroups.Manager                      { return nil }
func (c *Container) ExecProcess(args ...string) *specs.Process    { return &specs.Process{Args: args} }
func (c *Container) Exec(ctx context.Context, p *specs.Process, opts ExecOpts) (*Process, error) {
	return nil, ErrNotSupported
}

// ExecOpts: see the Linux implementation.
type ExecOpts struct {
	IO            IO
	ConsoleSocket string
}

// Process is Linux only.
type Process struct{ Pid int }

func (p *Process) Console() *os.File                            { return nil }
func (p *Process) Signal(sig syscall.Signal) error              { return ErrNotSupported }
func (p *Process) Wait(ctx context.Context) (ExitStatus, error) { return ExitStatus{}, ErrNotSupported }

func (c *Container) Pause() error                         { return ErrNotSupported }
func (c *Container) Resume() error                        { return ErrNotSupported }
func (c *Container) Update(r *specs.LinuxResources) error { return ErrNotSupported }

// ResolveInRoot needs Linux.
func ResolveInRoot(root, p string) (string, error) { return "", ErrNotSupported }

// UserInRoot needs Linux.
func UserInRoot(rootfs, user string) (uid, gid int, err error) { return 0, 0, ErrNotSupported }
