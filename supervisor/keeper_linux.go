package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/supervisor/runtime"
)

// RunKeeper is `berth keeper`: the tiny parent of the daemon. It marks
// itself a child subreaper (PR_SET_CHILD_SUBREAPER), so container inits
// orphaned by a daemon that died are reparented to it rather than to
// host pid 1; it starts the daemon, and reaps every child:
//
//	waitid(P_ALL, WEXITED|WNOWAIT) → start time from /proc/PID/stat
//	(still readable for a zombie) → wait4(PID) reaps it →
//	daemon: start it again after a backoff (unless it exited 0 or
//	        found another daemon: then the keeper exits too)
//	other:  write Root/exits/PID-STARTTIME.json atomically
//
// SIGTERM, SIGINT or SIGHUP make the keeper stop the daemon (SIGTERM: a
// graceful exit that leaves containers running) and return. The keeper
// holds no state but its pid file, so killing it loses nothing.
func RunKeeper(cfg KeeperConfig) error {
	if cfg.Root == "" || len(cfg.Daemon) == 0 {
		return errors.New("keeper: Root and Daemon are required")
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Second
	}
	if cfg.ResetAfter <= 0 {
		cfg.ResetAfter = 10 * time.Second
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(cfg.Log, time.Now().UTC().Format(time.RFC3339)+" keeper: "+format+"\n", args...)
	}
	exits := filepath.Join(cfg.Root, "exits")
	if err := os.MkdirAll(exits, 0o700); err != nil {
		return fmt.Errorf("keeper: %w", err)
	}
	lock, err := lockFile(filepath.Join(cfg.Root, "keeper.lock"))
	if errors.Is(err, errAlreadyLocked) {
		return fmt.Errorf("%w: %v", ErrKeeperRunning, err)
	}
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keeper: PR_SET_CHILD_SUBREAPER: %w", os.NewSyscallError("prctl", err))
	}
	pidPath := filepath.Join(cfg.Root, "keeper.pid")
	if err := writeFileAtomic(pidPath, []byte(strconv.Itoa(os.Getpid())+"\n"), false); err != nil {
		return fmt.Errorf("keeper: %w", err)
	}
	defer os.Remove(pidPath)

	// Under systemd stdout is a socket: a journald restart must not
	// kill the keeper with SIGPIPE (writes then fail with EPIPE).
	signal.Ignore(unix.SIGPIPE)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	defer signal.Stop(sigs)

	// The reaper goroutine blocks in waitid; it is woken for new
	// children through kick when it found none (ECHILD).
	reaped := make(chan reapedChild)
	kick := make(chan struct{}, 1)
	go reapLoop(reaped, kick)

	var (
		daemonPid   int
		daemonStart time.Time
		backoff     = cfg.MinBackoff
		restart     <-chan time.Time
		stopping    bool
	)
	spawn := func() {
		pid, err := startDaemon(cfg.Daemon)
		if err != nil {
			logf("start daemon: %v (retry in %s)", err, backoff)
			restart = time.After(backoff)
			backoff = min(backoff*2, cfg.MaxBackoff)
			return
		}
		daemonPid, daemonStart = pid, time.Now()
		logf("daemon started, pid %d", pid)
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	spawn()
	for {
		select {
		case sig := <-sigs:
			if stopping {
				continue
			}
			stopping = true
			logf("%v: stopping the daemon", sig)
			if daemonPid == 0 {
				return nil
			}
			_ = unix.Kill(daemonPid, unix.SIGTERM)
		case <-restart:
			restart = nil
			if stopping {
				return nil
			}
			spawn()
		case c := <-reaped:
			if c.pid != daemonPid {
				if err := writeExitRecord(exits, c); err != nil {
					logf("exit record of pid %d: %v", c.pid, err)
				}
				continue
			}
			daemonPid = 0
			logf("daemon (pid %d) %s", c.pid, c.describe())
			switch {
			case stopping:
				return nil
			case !c.signaled && c.code == 0:
				logf("daemon exited cleanly: keeper exits")
				return nil
			case !c.signaled && c.code == ExitCodeAlreadyRunning:
				logf("another daemon holds the root: keeper exits")
				return nil
			}
			if time.Since(daemonStart) >= cfg.ResetAfter {
				backoff = cfg.MinBackoff
			}
			logf("restarting the daemon in %s", backoff)
			restart = time.After(backoff)
			backoff = min(backoff*2, cfg.MaxBackoff)
		}
	}
}

// lockFile takes an exclusive, non-blocking flock on path. The lock lives
// as long as the returned file is open (and dies with the process).
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", path, errAlreadyLocked)
		}
		return nil, &os.PathError{Op: "flock", Path: path, Err: err}
	}
	return f, nil
}

// startDaemon forks and execs argv without letting os/exec wait for it:
// the reaper loop reaps it with every other child.
func startDaemon(argv []string) (int, error) {
	exe := argv[0]
	if filepath.Base(exe) == exe {
		p, err := lookPath(exe)
		if err != nil {
			return 0, err
		}
		exe = p
	}
	attr := &syscall.ProcAttr{
		Dir:   "/",
		Env:   os.Environ(),
		Files: []uintptr{devNullFd(), os.Stdout.Fd(), os.Stderr.Fd()},
	}
	return syscall.ForkExec(exe, argv, attr)
}

var devNull *os.File

func devNullFd() uintptr {
	if devNull == nil {
		f, err := os.Open(os.DevNull)
		if err != nil {
			return os.Stdin.Fd()
		}
		devNull = f
	}
	return devNull.Fd()
}

func lookPath(name string) (string, error) {
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in PATH", name)
}

type reapedChild struct {
	pid      int
	start    uint64 // /proc/PID/stat starttime; 0 when unreadable
	code     int
	signal   int
	signaled bool
	at       time.Time
}

func (c reapedChild) describe() string {
	if c.signaled {
		return "was killed by " + unix.SignalName(syscall.Signal(c.signal))
	}
	return fmt.Sprintf("exited with code %d", c.code)
}

// reapLoop waits for children forever. waitid with WNOWAIT leaves the
// zombie in place, so its /proc/PID/stat (start time) can still be read
// before wait4 reaps it: pid + start time name the process uniquely.
func reapLoop(out chan<- reapedChild, kick <-chan struct{}) {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err == unix.EINTR {
			continue
		}
		if err == unix.ECHILD {
			<-kick
			continue
		}
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		pid := siginfoPid(&info)
		if pid <= 0 {
			continue
		}
		start, _ := procStartTime(pid)
		var ws unix.WaitStatus
		for {
			_, err = unix.Wait4(pid, &ws, 0, nil)
			if err != unix.EINTR {
				break
			}
		}
		if err != nil {
			continue
		}
		c := reapedChild{pid: pid, start: start, at: time.Now()}
		switch {
		case ws.Exited():
			c.code = ws.ExitStatus()
		case ws.Signaled():
			c.signaled = true
			c.signal = int(ws.Signal())
			c.code = 128 + c.signal
		}
		out <- c
	}
}

// siginfoPid reads si_pid: the first field of the union that follows
// si_signo, si_errno and si_code, aligned to the pointer size.
func siginfoPid(info *unix.Siginfo) int {
	off := uintptr(12)
	if unsafe.Sizeof(uintptr(0)) == 8 {
		off = 16
	}
	return int(*(*int32)(unsafe.Add(unsafe.Pointer(info), off)))
}

func writeExitRecord(dir string, c reapedChild) error {
	rec := ExitRecord{Code: c.code, Time: c.at.UTC().Format(time.RFC3339Nano)}
	if c.signaled {
		rec.Signal = c.signal
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, fmt.Sprintf("%d-%d.json", c.pid, c.start)), b, true)
}

// StopDaemon asks the daemon of root to exit, leaving its containers
// running: SIGTERM to the keeper when one holds the root (it stops the
// daemon and itself), else to the daemon. It returns the pid signalled,
// or 0 when neither runs.
func StopDaemon(root string) (int, error) {
	for _, f := range []struct{ lock, pid string }{{"keeper.lock", "keeper.pid"}, {"berth.pid", "berth.pid"}} {
		l, err := lockFile(filepath.Join(root, f.lock))
		if err == nil {
			l.Close() // nobody holds it
			continue
		}
		if !errors.Is(err, errAlreadyLocked) {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return 0, err
		}
		b, err := os.ReadFile(filepath.Join(root, f.pid))
		if err != nil {
			return 0, err
		}
		pid, err := strconv.Atoi(string(bytesTrim(b)))
		if err != nil || pid <= 0 {
			return 0, fmt.Errorf("%s: bad pid %q", f.pid, b)
		}
		if err := unix.Kill(pid, unix.SIGTERM); err != nil {
			return 0, os.NewSyscallError("kill", err)
		}
		return pid, nil
	}
	return 0, nil
}

// DaemonGone reports whether the keeper and daemon named by root's pid
// files have exited (zombies count as exited: their locks are released),
// so that after StopDaemon a new one can start. It takes no lock, so it
// never gets in the way of a keeper starting.
func DaemonGone(root string) bool {
	for _, f := range []string{"keeper.pid", "berth.pid"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(string(bytesTrim(b)))
		if err != nil || pid <= 0 {
			continue
		}
		if ps, err := runtime.ReadProcStat(pid); err != nil || ps.State == 'Z' {
			continue // gone
		}
		return false
	}
	return true
}

func bytesTrim(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}
