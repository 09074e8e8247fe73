package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/supervisor/runtime/cgroups"
)

const (
	stateFile = "state.json"
	fifoName  = "exec.fifo"
)

// Runtime manages the containers whose state lives below one root
// directory (e.g. $BERTH_ROOT/runtime).
type Runtime struct {
	root string
}

// New returns a Runtime keeping state below root, creating root if
// needed. It starts nothing.
func New(root string) (*Runtime, error) {
	if root == "" {
		return nil, errors.New("runtime: empty state root")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o711); err != nil {
		return nil, err
	}
	return &Runtime{root: abs}, nil
}

// Root is the state root directory.
func (r *Runtime) Root() string { return r.root }

// DefaultCgroupsPath is the cgroup of container id when its spec names
// none: /berth/<root>/<id>, where <root> is a short hash of the state
// root, so that two berth roots with containers of the same name (two
// checkouts, tests beside a real stack) never share a cgroup.
func (r *Runtime) DefaultCgroupsPath(id string) string {
	sum := sha256.Sum256([]byte(r.root))
	return "/berth/" + hex.EncodeToString(sum[:6]) + "/" + id
}

// Container is a handle on one container. A handle from Create is the
// container init's parent and can reap it (Wait reports the exit code); a
// handle from Load can do everything else, and its Wait reports the exit
// code only if the parent recorded it.
type Container struct {
	rt  *Runtime
	id  string
	dir string
	cg  cgroups.Manager // nil when the host gives us no cgroups

	mu sync.Mutex // guards st and configJSON
	st State
	// configJSON is the container's config, encoded (st.Config stays
	// nil). A handle keeps only the encoding (a decoded config, seccomp
	// rules and all, costs the daemon tens of KiB per container) and
	// decodes it when it needs more than its hooks; the config is most
	// of the state file and changes only on Update.
	configJSON json.RawMessage
	execBase   *execBase // from the config, once Exec needed it
	console    *os.File  // pty master when the spec asks for a terminal and no socket was given

	proc      *os.Process  // non-nil if we are the init's parent
	cinit     bool         // Create started the C init (cinit_linux.go)
	hooks     *specs.Hooks // the config's hooks (nil: none, or not known yet)
	hookState specs.State  // during Create
	waitOnce  sync.Once
	waitDone  chan struct{}
	exit      ExitStatus
	waitErr   error
}

// ID is the container id.
func (c *Container) ID() string { return c.id }

// Console is the pty master of the init when the spec asks for a
// terminal and CreateOpts.ConsoleSocket was empty; otherwise nil. The
// caller owns it.
func (c *Container) Console() *os.File { return c.console }

// Create creates container id from opts: its state directory, cgroup and
// namespaces, and its init, which builds the root filesystem and then
// waits for Start. On error everything made so far is undone.
func (r *Runtime) Create(ctx context.Context, id string, opts CreateOpts) (_ *Container, retErr error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	if opts.Bundle == "" {
		return nil, fmt.Errorf("%w: bundle directory is required", ErrInvalidSpec)
	}
	bundle, err := filepath.Abs(opts.Bundle)
	if err != nil {
		return nil, err
	}
	spec := opts.Spec
	if spec == nil {
		if spec, err = LoadSpec(bundle); err != nil {
			return nil, err
		}
	}
	if err := validateSpec(spec); err != nil {
		return nil, err
	}
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	if rootfs, err = filepath.EvalSymlinks(rootfs); err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	if st, err := os.Stat(rootfs); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("rootfs %s is not a directory", rootfs)
	}
	filter, err := compileSeccomp(spec.Linux.Seccomp)
	if err != nil {
		return nil, err
	}

	dir := filepath.Join(r.root, id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("container %q: %w", id, ErrExist)
		}
		return nil, err
	}
	c := &Container{rt: r, id: id, dir: dir, waitDone: make(chan struct{})}
	defer func() {
		if retErr != nil {
			if c.console != nil {
				c.console.Close()
			}
			c.teardown()
			// The host's cgroup hierarchies may have changed: package
			// cgroups reads them again next time.
			cgroups.Forget()
		}
	}()

	fifoPath := filepath.Join(dir, fifoName)
	if err := unix.Mkfifo(fifoPath, 0o600); err != nil {
		return nil, &os.PathError{Op: "mkfifo", Path: fifoPath, Err: err}
	}
	if uid, gid, ok := hostRoot(spec); ok {
		// The init reopens the fifo as the container's root.
		if err := os.Chown(fifoPath, uid, gid); err != nil {
			return nil, err
		}
	}
	fifo, err := os.OpenFile(fifoPath, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer fifo.Close()

	cgPath := spec.Linux.CgroupsPath
	if cgPath == "" {
		cgPath = r.DefaultCgroupsPath(id)
	}
	if c.cg, err = newCgroupManager(cgPath); err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", cgPath, err)
	}
	if c.cg != nil {
		if err := c.cg.Create(spec.Linux.Resources); err != nil {
			return nil, fmt.Errorf("cgroup %s: %w", cgPath, err)
		}
	}

	var cgPaths map[string]string
	if c.cg != nil {
		cgPaths = c.cg.Paths()
	}
	// The init gets what it applies: not the cgroup resources (ours to
	// set) nor the seccomp profile (compiled above); decoding them would
	// cost every init.
	initSpec := *spec
	initSpec.Process = nil // cfg.Process
	initLinux := *spec.Linux
	initLinux.Resources, initLinux.Seccomp = nil, nil
	initLinux.Namespaces, initLinux.UIDMappings, initLinux.GIDMappings = nil, nil, nil // ours to apply
	initSpec.Linux = &initLinux
	// Relative bind sources are relative to the bundle (runtime spec).
	initSpec.Mounts = append([]specs.Mount(nil), spec.Mounts...)
	for i, m := range initSpec.Mounts {
		if (m.Type == "bind" || parseMountOptions(m.Options).bind) && m.Source != "" && !filepath.IsAbs(m.Source) {
			initSpec.Mounts[i].Source = filepath.Join(bundle, m.Source)
		}
	}
	cfg := &initConfig{
		Mode:        "create",
		ID:          id,
		Spec:        &initSpec,
		Process:     spec.Process,
		Rootfs:      rootfs,
		NumExtra:    len(opts.ExtraFiles),
		Seccomp:     filter,
		LastCap:     lastCapability(),
		Reaper:      spec.Annotations[AnnotationInit] == "true",
		CgroupPaths: cgPaths,
	}
	if h := spec.Hooks; h != nil {
		cfg.RuntimeHooks = len(h.Prestart)+len(h.CreateRuntime) > 0
	}
	if cfg.CgroupMounts, err = cgroups.HostMounts(); err != nil {
		return nil, fmt.Errorf("cgroup mounts: %w", err)
	}
	sysAttr := &syscall.SysProcAttr{}
	var joins []specs.LinuxNamespace
	for _, ns := range spec.Linux.Namespaces {
		if ns.Path != "" {
			joins = append(joins, ns)
			continue
		}
		switch ns.Type {
		case specs.PIDNamespace:
			sysAttr.Cloneflags |= unix.CLONE_NEWPID
		case specs.MountNamespace:
			sysAttr.Cloneflags |= unix.CLONE_NEWNS
		case specs.UTSNamespace:
			sysAttr.Cloneflags |= unix.CLONE_NEWUTS
		case specs.IPCNamespace:
			sysAttr.Cloneflags |= unix.CLONE_NEWIPC
		case specs.NetworkNamespace:
			sysAttr.Cloneflags |= unix.CLONE_NEWNET
			cfg.NewNetNS = true
		case specs.UserNamespace:
			sysAttr.Cloneflags |= unix.CLONE_NEWUSER
			cfg.NewUserNS = true
		case specs.CgroupNamespace:
			// unshared by the init once it is in its cgroup
			cfg.NewCgroupNS = true
		}
	}
	if cfg.NewUserNS {
		for _, m := range spec.Linux.UIDMappings {
			sysAttr.UidMappings = append(sysAttr.UidMappings, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
		for _, m := range spec.Linux.GIDMappings {
			sysAttr.GidMappings = append(sysAttr.GidMappings, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
		sysAttr.GidMappingsEnableSetgroups = true
		// Our host uid is not mapped in the new namespace: become its
		// root, so that the exec keeps full capabilities there.
		sysAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}
	}

	// The common container starts with the C init, the others with the
	// Go one (cinit_linux.go).
	self, prog, err := cinitFor(cfg)
	if err != nil {
		return nil, err
	}
	c.cinit = self != nil
	if self == nil {
		if self, err = initExe(); err != nil {
			return nil, err
		}
	}
	// On cgroup v1 the init joins its cgroups by itself, which spares the
	// whole host a grace-period wait under cgroup_mutex (see
	// cgroups.JoinThread); not in a user namespace, where it may not
	// write the host's cgroupfs, nor as the Go reaper, whose other
	// threads would stay outside for the container's life (the C reaper
	// has none).
	cfg.JoinCgroups = cgroups.ThreadJoinable(cgPaths) && !cfg.NewUserNS && (!cfg.Reaper || c.cinit)

	parentSync, childSync, err := newSyncPair()
	if err != nil {
		return nil, err
	}
	defer parentSync.Close()
	// On cgroup v2 the init is born in its cgroup (CLONE_INTO_CGROUP):
	// nothing moves afterwards (see cgroups.CloneTarget).
	if ct, ok := c.cg.(cgroups.CloneTarget); ok {
		dir, err := ct.OpenDir()
		if err != nil {
			return nil, err
		}
		defer dir.Close()
		sysAttr.UseCgroupFD, sysAttr.CgroupFD = true, int(dir.Fd())
	}
	files, path := withSelfExe(append([]*os.File{childSync, fifo}, opts.ExtraFiles...), self)
	newCmd := func() *exec.Cmd {
		cmd := &exec.Cmd{
			Path:        path,
			Args:        []string{"berth-init", id},
			Env:         initEnv("create"),
			ExtraFiles:  files,
			SysProcAttr: sysAttr,
		}
		opts.IO.setOn(cmd)
		return cmd
	}
	cmd := newCmd()
	err = startInNamespaces(cmd, joins)
	if err != nil && sysAttr.UseCgroupFD && (errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.E2BIG)) {
		// A kernel before 5.7 (no clone3, or no CLONE_INTO_CGROUP):
		// start it plainly and move it in below.
		sysAttr.UseCgroupFD = false
		cmd = newCmd()
		err = startInNamespaces(cmd, joins)
	}
	childSync.Close()
	if err != nil {
		return nil, fmt.Errorf("start init: %w", err)
	}
	c.proc = cmd.Process
	// A cancelled ctx aborts the setup: the init dies, recv sees EOF.
	stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	defer stop()
	if c.cg != nil && !cfg.JoinCgroups && !sysAttr.UseCgroupFD {
		if err := c.cg.Apply(cmd.Process.Pid); err != nil {
			return nil, fmt.Errorf("cgroup apply: %w", err)
		}
	}
	if prog == nil {
		prog = encodeInitConfig(cfg)
	}
	if err := sendRaw(parentSync, prog, -1); err != nil {
		return nil, fmt.Errorf("send init config: %w", err)
	}
	c.hookState = specs.State{Version: specs.Version, ID: id, Status: specs.StateCreating, Pid: cmd.Process.Pid, Bundle: bundle, Annotations: spec.Annotations}
	c.hooks = hooksOf(spec)
	console, err := c.awaitInit(parentSync, true, opts.ConsoleSocket)
	c.console = console
	if err != nil {
		return nil, err
	}

	ps, err := ReadProcStat(cmd.Process.Pid)
	if err != nil {
		return nil, fmt.Errorf("init vanished: %w", err)
	}
	c.st = State{
		State: specs.State{
			Version: specs.Version, ID: id, Status: specs.StateCreated,
			Pid: cmd.Process.Pid, Bundle: bundle, Annotations: spec.Annotations,
		},
		InitStartTime: ps.StartTime,
		Created:       time.Now().UTC(),
		CgroupPath:    cgPath,
		Rootfs:        rootfs,
	}
	if len(opts.SpecJSON) > 0 && opts.Spec != nil {
		c.configJSON = opts.SpecJSON
	} else if err := c.setConfigLocked(spec); err != nil {
		return nil, err
	}
	if c.cg != nil {
		c.st.CgroupPaths = c.cg.Paths()
	}
	if err := c.saveLocked(); err != nil {
		return nil, err
	}
	if opts.PidFile != "" {
		if err := writeFileAtomic(opts.PidFile, []byte(strconv.Itoa(cmd.Process.Pid))); err != nil {
			return nil, fmt.Errorf("pid file: %w", err)
		}
	}
	return c, nil
}

// startInNamespaces starts cmd. Namespaces to join (a netns from
// netstack, say) are entered on a locked thread of a goroutine we throw
// away: the child is forked from that thread and inherits them, and the
// thread dies with the goroutine instead of going back to the pool.
func startInNamespaces(cmd *exec.Cmd, joins []specs.LinuxNamespace) error {
	if len(joins) == 0 {
		return cmd.Start()
	}
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		// Remember this thread's own namespaces so that it can go back
		// to them after the start: a locked goroutine that exits ends its
		// thread, except the main thread, which Go parks forever instead;
		// parked in a container's namespace it would keep that namespace
		// (and its veths) alive after the container is gone, and make
		// /proc/<berth pid>/ns/* point into the container.
		var restore []int
		defer func() {
			ok := true
			for i, fd := range restore {
				if ok && unix.Setns(fd, nsFlag(joins[i].Type)) != nil {
					ok = false
				}
				unix.Close(fd)
			}
			if ok {
				goruntime.UnlockOSThread()
			}
		}()
		for _, ns := range joins {
			own, err := unix.Open("/proc/thread-self/ns/"+nsProcName(ns.Type), unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				errc <- &os.PathError{Op: "open own namespace", Path: string(ns.Type), Err: err}
				return
			}
			fd, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				unix.Close(own)
				errc <- &os.PathError{Op: "open namespace", Path: ns.Path, Err: err}
				return
			}
			err = unix.Setns(fd, nsFlag(ns.Type))
			unix.Close(fd)
			if err != nil {
				unix.Close(own)
				errc <- &os.PathError{Op: "setns", Path: ns.Path, Err: err}
				return
			}
			restore = append(restore, own)
		}
		errc <- cmd.Start()
	}()
	return <-errc
}

// nsProcName is the name of a namespace type's file in /proc/PID/ns.
func nsProcName(t specs.LinuxNamespaceType) string {
	switch t {
	case specs.PIDNamespace:
		return "pid"
	case specs.NetworkNamespace:
		return "net"
	case specs.MountNamespace:
		return "mnt"
	case specs.UTSNamespace:
		return "uts"
	case specs.IPCNamespace:
		return "ipc"
	case specs.UserNamespace:
		return "user"
	case specs.CgroupNamespace:
		return "cgroup"
	}
	return string(t)
}

func nsFlag(t specs.LinuxNamespaceType) int {
	switch t {
	case specs.PIDNamespace:
		return unix.CLONE_NEWPID
	case specs.NetworkNamespace:
		return unix.CLONE_NEWNET
	case specs.MountNamespace:
		return unix.CLONE_NEWNS
	case specs.UTSNamespace:
		return unix.CLONE_NEWUTS
	case specs.IPCNamespace:
		return unix.CLONE_NEWIPC
	case specs.UserNamespace:
		return unix.CLONE_NEWUSER
	case specs.CgroupNamespace:
		return unix.CLONE_NEWCGROUP
	}
	return 0
}

// awaitInit reads the init's messages until ready (create), or EOF
// (exec: the socket closed at execve) or an error.
func (c *Container) awaitInit(sync *os.File, create bool, consoleSocket string) (console *os.File, err error) {
	for {
		var m syncMsg
		fd, err := recvPacket(sync, &m)
		if errors.Is(err, io.EOF) {
			if create {
				return console, errors.New("container init exited during setup")
			}
			return console, nil
		}
		if err != nil {
			return console, err
		}
		switch m.Type {
		case msgError:
			return console, fmt.Errorf("container init: %s", m.Error)
		case msgReady:
			return console, nil
		case msgHooks:
			h := c.hooks
			err := runHooks("prestart", h.Prestart, c.hookState)
			if err == nil {
				err = runHooks("createRuntime", h.CreateRuntime, c.hookState)
			}
			reply := syncMsg{Type: msgResume}
			if err != nil {
				reply = syncMsg{Type: msgError, Error: err.Error()}
			}
			if serr := sendPacket(sync, reply, -1); serr != nil && err == nil {
				err = serr
			}
			if err != nil {
				return console, err
			}
		case msgConsole:
			if fd < 0 {
				return console, errors.New("console message without fd")
			}
			master := os.NewFile(uintptr(fd), "pty-master")
			if consoleSocket != "" {
				err := sendConsole(consoleSocket, master)
				master.Close()
				if err != nil {
					return console, err
				}
			} else {
				console = master
			}
		}
	}
}

// sendConsole passes the pty master to the unix socket at path, as runc's
// --console-socket does.
func sendConsole(path string, master *os.File) error {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return fmt.Errorf("console socket: %w", err)
	}
	defer conn.Close()
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return errors.New("console socket is not a unix socket")
	}
	_, _, err = uc.WriteMsgUnix([]byte(master.Name()), unix.UnixRights(int(master.Fd())), nil)
	if err != nil {
		return fmt.Errorf("console socket: %w", err)
	}
	return nil
}

// hostRoot maps the container's uid/gid 0 to the host when the spec
// creates a user namespace.
func hostRoot(spec *specs.Spec) (uid, gid int, ok bool) {
	userns := false
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.UserNamespace {
			userns = true
		}
	}
	if !userns {
		return 0, 0, false
	}
	uid, gid = -1, -1
	for _, m := range spec.Linux.UIDMappings {
		if m.ContainerID == 0 {
			uid = int(m.HostID)
		}
	}
	for _, m := range spec.Linux.GIDMappings {
		if m.ContainerID == 0 {
			gid = int(m.HostID)
		}
	}
	return uid, gid, uid >= 0 || gid >= 0
}
