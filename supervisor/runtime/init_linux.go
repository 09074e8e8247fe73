package runtime

import (
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"runtime/debug"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/supervisor/runtime/cgroups"
	"golang.org/x/sys/unix"
)

// Environment variables that turn the re-executed berth binary into a
// container init. They never reach the user command: the init execs it
// with the spec's environment only.
const (
	envInit = "_BERTH_INIT" // "create" or "exec"
)

// initEnv is the environment the init starts with. One P is all the
// init uses (it works on one locked thread). containermaxprocs=0: the Go
// runtime (1.25 on) otherwise keeps two files of the host's cgroupfs
// open for the process's life (the CPU limit, to follow it), and the
// reaper (`init: true`) lives as pid 1 of the container: its root could
// reopen them through /proc/1/fd. With it off, the runtime closes them
// as it starts.
func initEnv(mode string) []string {
	return []string{envInit + "=" + mode, "GOMAXPROCS=1", "GODEBUG=containermaxprocs=0,updatemaxprocs=0"}
}

// Fixed fd numbers in the init.
const (
	initSyncFd  = 3 // sync socket
	initFifoFd  = 4 // create: O_PATH fd of the exec fifo
	initExtraFd = 5 // create: first of CreateOpts.ExtraFiles
)

// initConfig is what the parent sends the init, in the encoding of
// wire_linux.go (which carries only what the init applies).
type initConfig struct {
	Mode        string         // "create" or "exec"
	ID          string         //
	Spec        *specs.Spec    // create
	Process     *specs.Process //
	Rootfs      string         // absolute host path (create)
	NewUserNS   bool
	NewNetNS    bool
	NewCgroupNS bool
	NumExtra    int
	// CgroupPaths are the container's cgroup directories on the host
	// (for /sys/fs/cgroup where the kernel does not let a user namespace
	// mount cgroupfs).
	CgroupPaths map[string]string
	// JoinCgroups: the init joins the cgroups at CgroupPaths itself,
	// first thing (cgroup v1, see cgroups.JoinThread); false when the
	// parent moves it there.
	JoinCgroups bool
	// CgroupMounts are the host's cgroup hierarchies, for mounting them
	// in the container (nil: the init reads them from mountinfo).
	CgroupMounts []cgroups.Mount
	Reaper       bool
	// RuntimeHooks: the spec has prestart or createRuntime hooks, which
	// the runtime runs while the init waits after its mounts.
	RuntimeHooks bool
	// Seccomp, compiled by the parent, applies to exec'd processes too.
	Seccomp *seccompProgram
	// LastCap is the host kernel's highest capability, read by the
	// parent: the container's /proc may be the image's own files.
	LastCap int
}

// beforePivot runs in the init between the mounts and pivot_root (hooks).
var beforePivot = func(*initConfig) error { return nil }

func init() {
	mode := os.Getenv(envInit)
	if mode == "" {
		return
	}
	// The init lives only until it execs the container's process: a
	// garbage collection would only cost time (runReaper, which stays,
	// turns it back on).
	debug.SetGCPercent(-1)
	// Capabilities, no_new_privs and seccomp are per thread, and execve
	// keeps only the calling thread: everything runs on this one.
	goruntime.LockOSThread()
	os.Unsetenv(envInit)
	var err error
	switch mode {
	case "create", "exec":
		err = initMain(mode)
	default:
		err = fmt.Errorf("unknown init mode %q", mode)
	}
	// Only failures get here: success ends in execve.
	fmt.Fprintln(os.Stderr, "berth init:", err)
	os.Exit(127)
}

func initMain(mode string) (retErr error) {
	sync := os.NewFile(initSyncFd, "sync")
	defer func() {
		if retErr != nil {
			_ = sendPacket(sync, syncMsg{Type: msgError, Error: retErr.Error()}, -1)
		}
	}()
	raw, _, err := recvRaw(sync)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	cfg, err := decodeInitConfig(raw)
	if err != nil {
		return err
	}
	if cfg.Process == nil {
		return errors.New("config without process")
	}
	if mode == "exec" {
		if cfg.Process.Terminal {
			if err := setupConsole(sync, cfg.Process.ConsoleSize); err != nil {
				return err
			}
		}
		return finishProcess(cfg)
	}
	spec := cfg.Spec
	// From this thread, the one that will exec the service's command (or
	// fork it, for the reaper): only it moves, and after the exec only it
	// is left.
	if cfg.JoinCgroups {
		if err := cgroups.JoinThread(cfg.CgroupPaths); err != nil {
			return fmt.Errorf("join cgroup: %w", err)
		}
	}
	if cfg.NewCgroupNS {
		// Once in the container's cgroup (joined above, born there, or
		// moved there by the parent), so that it becomes the root of the
		// new cgroup namespace.
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return os.NewSyscallError("unshare(CLONE_NEWCGROUP)", err)
		}
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return os.NewSyscallError("sethostname", err)
		}
	}
	if spec.Domainname != "" {
		if err := unix.Setdomainname([]byte(spec.Domainname)); err != nil {
			return os.NewSyscallError("setdomainname", err)
		}
	}
	unix.Umask(0)
	beforePivot = func(cfg *initConfig) error {
		// prestart and createRuntime hooks run in the runtime's
		// namespaces (the parent runs them); createContainer hooks run
		// here, in the container's namespaces, before pivot_root.
		h := hooksOf(cfg.Spec)
		if cfg.RuntimeHooks {
			if err := sendPacket(sync, syncMsg{Type: msgHooks}, -1); err != nil {
				return err
			}
			var m syncMsg
			if _, err := recvPacket(sync, &m); err != nil {
				return err
			}
			if m.Type != msgResume {
				return fmt.Errorf("hooks: %s", m.Error)
			}
		}
		return runHooks("createContainer", h.CreateContainer, specs.State{
			Version: specs.Version, ID: cfg.ID, Status: specs.StateCreating, Pid: os.Getpid(),
		})
	}
	if err := setupRootfs(cfg); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	unix.Umask(0o022)
	if cfg.Process.Terminal {
		if err := setupConsole(sync, cfg.Process.ConsoleSize); err != nil {
			return err
		}
	}
	if err := sendPacket(sync, syncMsg{Type: msgReady}, -1); err != nil {
		return err
	}
	// Block until Start opens the fifo. The fd is O_PATH and the fifo
	// lives in the host state directory, outside our root: reopen it
	// through /proc/self/fd.
	fifo, err := os.OpenFile(fdPath(initFifoFd), os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	unix.Close(initFifoFd)
	if _, err := fifo.Write([]byte{'0'}); err != nil {
		return fmt.Errorf("write exec fifo: %w", err)
	}
	fifo.Close()
	sync.Close()
	if err := runHooks("startContainer", hooksOf(spec).StartContainer, specs.State{
		Version: specs.Version, ID: cfg.ID, Status: specs.StateCreated, Pid: 1,
	}); err != nil {
		return err
	}
	return finishProcess(cfg)
}

// setupConsole makes a pty in the container's devpts, sends the master
// to the parent and makes the slave our controlling terminal and stdio.
func setupConsole(sync *os.File, size *specs.Box) error {
	master, err := unix.Open("/dev/pts/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		master, err = unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "open", Path: "/dev/ptmx", Err: err}
		}
	}
	defer unix.Close(master)
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return os.NewSyscallError("ioctl(TIOCSPTLCK)", err)
	}
	if size != nil && size.Height > 0 && size.Width > 0 {
		ws := &unix.Winsize{Row: uint16(size.Height), Col: uint16(size.Width)}
		if err := unix.IoctlSetWinsize(master, unix.TIOCSWINSZ, ws); err != nil {
			return os.NewSyscallError("ioctl(TIOCSWINSZ)", err)
		}
	}
	// TIOCGPTPEER opens the slave from the master, with no path lookup.
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(master), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		return os.NewSyscallError("ioctl(TIOCGPTPEER)", errno)
	}
	slave := int(r)
	if err := sendPacket(sync, syncMsg{Type: msgConsole}, master); err != nil {
		unix.Close(slave)
		return err
	}
	if _, err := unix.Setsid(); err != nil && !errors.Is(err, unix.EPERM) {
		unix.Close(slave)
		return os.NewSyscallError("setsid", err)
	}
	if err := unix.IoctlSetInt(slave, unix.TIOCSCTTY, 0); err != nil {
		unix.Close(slave)
		return os.NewSyscallError("ioctl(TIOCSCTTY)", err)
	}
	for fd := 0; fd <= 2; fd++ {
		if err := unix.Dup3(slave, fd, 0); err != nil {
			unix.Close(slave)
			return os.NewSyscallError("dup3", err)
		}
	}
	if slave > 2 {
		unix.Close(slave)
	}
	return nil
}
