package runtime

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var rlimitNames = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC,
	"RLIMIT_RSS": unix.RLIMIT_RSS, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING, "RLIMIT_STACK": unix.RLIMIT_STACK,
}

// finishProcess turns the init (on its locked thread) into the user
// command: rlimits, oom_score_adj, identity, capabilities, no_new_privs,
// cwd, seccomp, fds, execve. It returns only on failure.
func finishProcess(cfg *initConfig) error {
	p := cfg.Process
	if len(p.Args) == 0 {
		return errors.New("process.args is empty")
	}
	for _, r := range p.Rlimits {
		res, ok := rlimitNames[r.Type]
		if !ok {
			return fmt.Errorf("unknown rlimit %q", r.Type)
		}
		// syscall.Setrlimit (not prlimit) so that the Go runtime does not
		// restore its saved RLIMIT_NOFILE at execve.
		if err := syscall.Setrlimit(res, &syscall.Rlimit{Cur: r.Soft, Max: r.Hard}); err != nil {
			return fmt.Errorf("setrlimit %s: %w", r.Type, err)
		}
	}
	if p.OOMScoreAdj != nil {
		if err := writeFileNoCreate("/proc/self/oom_score_adj", strconv.Itoa(*p.OOMScoreAdj)); err != nil {
			return err
		}
	}
	u, err := processUser(p)
	if err != nil {
		return err
	}
	env := p.Env
	if !hasEnv(env, "HOME") {
		env = append(append([]string(nil), env...), "HOME="+u.Home)
	}
	exe, err := lookPath(p.Args[0], env)
	if err != nil {
		return err
	}
	lastCap := cfg.LastCap
	if lastCap < 0 || lastCap > 63 {
		return fmt.Errorf("cap_last_cap %d is out of range", lastCap)
	}
	caps := p.Capabilities
	if caps == nil {
		caps = &specs.LinuxCapabilities{}
	}
	bounding, err := capMask(caps.Bounding, lastCap)
	if err != nil {
		return err
	}
	effective, err := capMask(caps.Effective, lastCap)
	if err != nil {
		return err
	}
	permitted, err := capMask(caps.Permitted, lastCap)
	if err != nil {
		return err
	}
	inheritable, err := capMask(caps.Inheritable, lastCap)
	if err != nil {
		return err
	}
	ambient, err := capMask(caps.Ambient, lastCap)
	if err != nil {
		return err
	}
	// Without no_new_privs the kernel only lets a process holding
	// CAP_SYS_ADMIN install a filter: load it while we still are root.
	if !p.NoNewPrivileges {
		if err := installSeccomp(cfg.Seccomp); err != nil {
			return err
		}
	}
	for c := 0; c <= lastCap; c++ {
		if bounding&(1<<uint(c)) == 0 {
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
				return os.NewSyscallError("prctl(PR_CAPBSET_DROP)", err)
			}
		}
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl(PR_SET_KEEPCAPS)", err)
	}
	if err := setIdentity(u); err != nil {
		return err
	}
	if err := setCaps(effective, permitted, inheritable); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl(PR_CAP_AMBIENT_CLEAR_ALL)", err)
	}
	for c := 0; c <= lastCap; c++ {
		if ambient&(1<<uint(c)) != 0 {
			if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0); err != nil {
				return os.NewSyscallError("prctl(PR_CAP_AMBIENT_RAISE)", err)
			}
		}
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl(PR_SET_KEEPCAPS)", err)
	}
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if err := unix.Chdir(cwd); err != nil {
		return &os.PathError{Op: "chdir", Path: cwd, Err: err}
	}
	// CVE-2024-21626: a cwd reached through a leaked host fd lies outside
	// our root; getcwd(2) then answers "(unreachable)/...". Refuse it.
	if wd, err := os.Getwd(); err != nil || !strings.HasPrefix(wd, "/") {
		return fmt.Errorf("cwd %q is outside the container root", cwd)
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return os.NewSyscallError("prctl(PR_SET_NO_NEW_PRIVS)", err)
		}
		if err := installSeccomp(cfg.Seccomp); err != nil {
			return err
		}
	}
	if err := prepareFds(cfg.NumExtra); err != nil {
		return err
	}
	if cfg.Reaper {
		return runReaper(exe, p.Args, env, cfg.NumExtra)
	}
	err = unix.Exec(exe, p.Args, env)
	return &os.PathError{Op: "exec", Path: exe, Err: err}
}

// runReaper keeps this process as pid 1 (compose `init: true`): it has
// already dropped to the container's identity, capabilities, no_new_privs
// and seccomp filter, so the command it forks inherits exactly those. It
// forwards every signal to the command, reaps every zombie reparented to
// it, and exits with the command's status.
func runReaper(exe string, args, env []string, numExtra int) error {
	debug.SetGCPercent(100) // it lives as long as the container
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs)
	files := []*os.File{os.Stdin, os.Stdout, os.Stderr}
	for i := 0; i < numExtra; i++ {
		files = append(files, os.NewFile(uintptr(3+i), "extra"))
	}
	wd, _ := os.Getwd()
	proc, err := os.StartProcess(exe, args, &os.ProcAttr{Dir: wd, Env: env, Files: files})
	if err != nil {
		return err
	}
	pid := proc.Pid
	go func() {
		for s := range sigs {
			sig := s.(unix.Signal)
			if sig == unix.SIGCHLD || sig == unix.SIGURG { // SIGURG: Go's preemption
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

// processUser resolves the process identity. process.user.username, when
// set (berth's specconv puts compose's `user:` there), is resolved
// against the image's /etc/passwd and /etc/group; otherwise the numeric
// uid/gid are used and supplementary groups come from /etc/group.
func processUser(p *specs.Process) (execUser, error) {
	passwd, _ := os.Open("/etc/passwd")
	group, _ := os.Open("/etc/group")
	defer func() {
		if passwd != nil {
			passwd.Close()
		}
		if group != nil {
			group.Close()
		}
	}()
	spec := userSpec(p)
	// os.File(nil) must not become a non-nil io.Reader.
	var pr, gr interface{ Read([]byte) (int, error) }
	if passwd != nil {
		pr = passwd
	}
	if group != nil {
		gr = group
	}
	u, err := resolveUser(spec, pr, gr)
	if err != nil {
		return u, err
	}
	u.Groups = append(u.Groups, p.User.AdditionalGids...)
	return u, nil
}

// userSpec is the user processUser resolves: process.user.username, or
// else "uid:gid".
func userSpec(p *specs.Process) string {
	if p.User.Username != "" {
		return p.User.Username
	}
	return strconv.FormatUint(uint64(p.User.UID), 10) + ":" + strconv.FormatUint(uint64(p.User.GID), 10)
}

// setIdentity switches groups, gid and uid of this thread only (raw
// syscalls, not the all-threads libc/Go emulation): execve keeps exactly
// this thread.
func setIdentity(u execUser) error {
	gids := u.Groups
	var ptr uintptr
	if len(gids) > 0 {
		ptr = uintptrOf(&gids[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(gids)), ptr, 0); e != 0 {
		// Without a gid mapping that allows setgroups (rootless), an
		// empty list is the only thing we could set anyway.
		if !(e == unix.EPERM && len(gids) == 0) {
			return os.NewSyscallError("setgroups", e)
		}
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return os.NewSyscallError("setresgid", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return os.NewSyscallError("setresuid", e)
	}
	return nil
}

func setCaps(effective, permitted, inheritable uint64) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(effective), Permitted: uint32(permitted), Inheritable: uint32(inheritable)},
		{Effective: uint32(effective >> 32), Permitted: uint32(permitted >> 32), Inheritable: uint32(inheritable >> 32)},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return os.NewSyscallError("capset", err)
	}
	return nil
}

// lastCapability is the kernel's highest capability number, from the
// runtime's (the host's) /proc, once per process.
var lastCapability = sync.OnceValue(func() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return n
		}
	}
	return 40
})

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			return true
		}
	}
	return false
}

func getEnv(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, _ := strings.Cut(env[i], "="); k == key {
			return v
		}
	}
	return ""
}

// lookPath finds the executable in the container's PATH (from the
// process env, not ours).
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	path := getEnv(env, "PATH")
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec %q: executable file not found in $PATH", file)
}

// prepareFds moves CreateOpts.ExtraFiles to fds 3.. and marks every
// other fd above them close-on-exec (CVE-2024-21626: nothing of the host
// may leak into the container).
func prepareFds(numExtra int) error {
	for i := 0; i < numExtra; i++ {
		if err := unix.Dup3(initExtraFd+i, 3+i, 0); err != nil {
			return os.NewSyscallError("dup3", err)
		}
	}
	keep := 3 + numExtra
	// close_range does not depend on what the container's /proc holds
	// (Linux 5.11); before it, /proc/self/fd, which the init checked.
	if err := unix.CloseRange(uint(keep), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return nil
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < keep {
			continue
		}
		unix.CloseOnExec(fd)
	}
	return nil
}
