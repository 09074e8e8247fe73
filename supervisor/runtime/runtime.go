package runtime

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Sentinel errors; branch on them with errors.Is.
var (
	ErrNotExist     = errors.New("container does not exist")
	ErrExist        = errors.New("container already exists")
	ErrNotRunning   = errors.New("container is not running")
	ErrRunning      = errors.New("container is running")
	ErrNotCreated   = errors.New("container is not in the created state")
	ErrInvalidSpec  = errors.New("invalid runtime spec")
	ErrNotSupported = errors.New("not supported on this platform or build")
	ErrNotParent    = errors.New("exit status unknown: this process is not the container's parent")
)

// Status is a runtime-spec container status.
type Status string

// The runtime-spec statuses.
const (
	Creating Status = "creating"
	Created  Status = "created"
	Running  Status = "running"
	Stopped  Status = "stopped"
)

// AnnotationInit, set to "true" on a spec, runs a minimal reaper as pid 1
// in front of the user command (compose `init: true`).
const AnnotationInit = "berth.init"

// IO names the files a container process gets as stdin, stdout and
// stderr. A nil entry means /dev/null. With process.terminal set, IO is
// ignored and the process gets a pty instead.
type IO struct {
	Stdin, Stdout, Stderr *os.File
}

// setOn gives cmd these files as its stdio. exec.Cmd takes interfaces,
// and a nil *os.File in one is not nil: only the set ones are assigned.
func (io IO) setOn(cmd *exec.Cmd) {
	if io.Stdin != nil {
		cmd.Stdin = io.Stdin
	}
	if io.Stdout != nil {
		cmd.Stdout = io.Stdout
	}
	if io.Stderr != nil {
		cmd.Stderr = io.Stderr
	}
}

// CreateOpts describe a container to create.
type CreateOpts struct {
	// Bundle is the OCI bundle directory; root.path of the spec is
	// relative to it. Required.
	Bundle string
	// Spec is the runtime spec; nil loads Bundle/config.json.
	Spec *specs.Spec
	// SpecJSON, if set, is Spec as encoding/json encodes it (the bytes
	// the caller wrote to config.json): the state file takes them as
	// they are instead of encoding Spec once more.
	SpecJSON []byte
	// IO is the init process's stdio.
	IO IO
	// ConsoleSocket, with process.terminal, is a unix socket path that
	// receives the pty master (SCM_RIGHTS), as runc's --console-socket.
	// Empty keeps the master in Container.Console.
	ConsoleSocket string
	// PidFile, if set, receives the init pid once the container is created.
	PidFile string
	// ExtraFiles are passed to the container process as fds 3, 4, ...
	ExtraFiles []*os.File
}

// ExitStatus is how a container process ended.
type ExitStatus struct {
	Code      int            // exit code; 128+signal when killed by a signal
	Signal    syscall.Signal // the signal that killed it, or 0
	OOMKilled bool           // the OOM killer fired in the container's cgroup (Code is 137 if it killed the init)
}

// State is the persisted and reported state of a container. It embeds
// the runtime-spec state (what `berth runtime state` prints).
type State struct {
	specs.State
	// InitStartTime is field 22 of /proc/<pid>/stat of the init: with Pid
	// it identifies the process even if the pid is reused.
	InitStartTime uint64            `json:"initStartTime,omitempty"`
	Created       time.Time         `json:"created"`
	Started       time.Time         `json:"started,omitzero"`
	Finished      time.Time         `json:"finished,omitzero"`
	ExitCode      *int              `json:"exitCode,omitempty"`
	OOMKilled     bool              `json:"oomKilled,omitempty"`
	CgroupPath    string            `json:"cgroupPath,omitempty"`
	CgroupPaths   map[string]string `json:"cgroupPaths,omitempty"`
	Rootfs        string            `json:"rootfs"`
	// Config is the spec the container was created from (exec uses its
	// defaults; delete uses its cgroup path and hooks). It is in the
	// state file; a Container keeps it encoded and State leaves it out:
	// Container.Spec decodes it.
	Config *specs.Spec `json:"config,omitempty"`
}

// validID is ^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$, by hand: a compiled
// regexp would cost every container init its compilation at start.
func validID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return false
		}
	}
	return true
}

// ValidateID reports whether id can name a container (it becomes a
// directory name and part of a cgroup path).
func ValidateID(id string) error {
	if !validID(id) {
		return fmt.Errorf("invalid container id %q: want [A-Za-z0-9][A-Za-z0-9_.-]{0,127}", id)
	}
	return nil
}
