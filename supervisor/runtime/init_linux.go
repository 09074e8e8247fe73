package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	goruntime "runtime"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Environment variables that turn the re-executed berth binary into a
// container init. They never reach the user command: the init execs it
// with the spec's environment only.
const (
	envInit = "_BERTH_INIT" // "create", "exec" or "finish"
)

// Fixed fd numbers in the init.
const (
	initSyncFd  = 3 // create/exec: sync socket; finish: config pipe
	initFifoFd  = 4 // create: O_PATH fd of the exec fifo
	initExtraFd = 5 // create: first of CreateOpts.ExtraFiles
)

// initConfig is what the parent sends the init.
type initConfig struct {
	Mode        string         `json:"mode"`
	ID          string         `json:"id"`
	Spec        *specs.Spec    `json:"spec,omitempty"` // create
	Process     *specs.Process `json:"process"`
	Rootfs      string         `json:"rootfs,omitempty"` // absolute host path (create)
	NewUserNS   bool           `json:"newUserNS,omitempty"`
	NewNetNS    bool           `json:"newNetNS,omitempty"`
	NewCgroupNS bool           `json:"newCgroupNS,omitempty"`
	NumExtra    int            `json:"numExtra,omitempty"`
	Reaper      bool           `json:"reaper,omitempty"`
	// Seccomp applies to exec'd processes too.
	Seccomp *specs.LinuxSeccomp `json:"seccomp,omitempty"`
}

func init() {
	mode := os.Getenv(envInit)
	if mode == "" {
		return
	}
	// Capabilities, no_new_privs and seccomp are per thread, and execve
	// keeps only the calling thread: everything runs on this one.
	goruntime.LockOSThread()
	os.Unsetenv(envInit)
	var err error
	switch mode {
	case "create", "exec":
		err = initMain(mode)
	case "finish":
		err = finishMain()
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
	var cfg initConfig
	if _, err := recvPacket(sync, &cfg); err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	if cfg.Process == nil {
		return errors.New("config without process")
	}
	if mode == "exec" {
		if cfg.Process.Terminal {
			if err := setupConsole(sync); err != nil {
				return err
			}
		}
		return finishProcess(&cfg)
	}
	spec := cfg.Spec
	if cfg.NewCgroupNS {
		// After the parent moved us into the container's cgroup, so that
		// it becomes the root of the new cgroup namespace.
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return os.NewSyscallError("unshare(CLONE_NEWCGROUP)", err)
		}
	}
	unix.Umask(0)
	if err := setupRootfs(&cfg); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	unix.Umask(0o022)
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
	if spec.Linux != nil {
		for k, v := range spec.Linux.Sysctl {
			p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
			if err := writeFileNoCreate(p, v); err != nil {
				return fmt.Errorf("sysctl %s: %w", k, err)
			}
		}
	}
	if cfg.Process.Terminal {
		if err := setupConsole(sync); err != nil {
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
	if cfg.Reaper {
		return runReaper(&cfg)
	}
	return finishProcess(&cfg)
}

// setupConsole makes a pty in the container's devpts, sends the master
// to the parent and makes the slave our controlling terminal and stdio.
func setupConsole(sync *os.File) error {
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
	// TIOCGPTPEER opens the slave from the master, with no path lookup.
	slave, err := unix.IoctlRetInt(master, unix.TIOCGPTPEER)
	if err != nil {
		return os.NewSyscallError("ioctl(TIOCGPTPEER)", err)
	}
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

// finishMain is the child of the reaper: it reads its config from a pipe
// and becomes the user command.
func finishMain() error {
	f := os.NewFile(initSyncFd, "config")
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return err
	}
	var cfg initConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return err
	}
	return finishProcess(&cfg)
}

// runReaper stays pid 1: it starts the user command as its child (a
// re-exec of this binary in "finish" mode, which drops privileges and
// execs), forwards every signal to it, reaps all zombies, and exits with
// the child's status.
func runReaper(cfg *initConfig) error {
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs)
	// fd 3 = config, fd 4 unused (the fifo slot), 5.. = extra files.
	files := []*os.File{os.Stdin, os.Stdout, os.Stderr, r, nil}
	for i := 0; i < cfg.NumExtra; i++ {
		files = append(files, os.NewFile(uintptr(initExtraFd+i), "extra"))
	}
	pid, err := forkExecFinish(files)
	r.Close()
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return err
	}
	w.Close()
	go func() {
		for s := range sigs {
			sig := s.(unix.Signal)
			if sig == unix.SIGCHLD || sig == unix.SIGURG {
				continue
			}
			_ = unix.Kill(pid, sig)
		}
	}()
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return os.NewSyscallError("wait4", err)
		}
		if wpid != pid {
			continue
		}
		if ws.Signaled() {
			os.Exit(128 + int(ws.Signal()))
		}
		os.Exit(ws.ExitStatus())
	}
}

func forkExecFinish(files []*os.File) (int, error) {
	// /proc/self/exe is the sealed memfd we were started from.
	attr := &os.ProcAttr{Env: []string{envInit + "=finish"}, Files: files}
	p, err := os.StartProcess("/proc/self/exe", []string{"berth-init"}, attr)
	if err != nil {
		return 0, err
	}
	return p.Pid, nil
}
