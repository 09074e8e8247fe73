package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/supervisor/runtime/cgroups"
)

// writeFileAtomic writes path through a temporary file in the same
// directory and a rename, so readers see the old or the new content.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	// No fsync: the state describes processes, which a power loss ends
	// anyway; a crash of berth leaves the file in the page cache.
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// saveLocked persists c.st and the config; c.mu must be held (or c not
// yet shared).
func (c *Container) saveLocked() error {
	return writeFileAtomic(filepath.Join(c.dir, stateFile), encodeStateFile(&c.st, c.configJSON))
}

// setConfigLocked makes s the container's config (saveLocked writes it).
func (c *Container) setConfigLocked(s *specs.Spec) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	c.configJSON, c.hooks, c.execBase = b, hooksOf(s), nil
	return nil
}

// encodeStateFile encodes st with config, already encoded, as its
// "config" member (in place of st.Config): spliced in, since
// encoding/json would scan the tens of KiB of a json.RawMessage again on
// every save.
func encodeStateFile(st *State, config []byte) []byte {
	plain := *st
	plain.Config = nil
	b, err := json.Marshal(&plain)
	if err != nil {
		// A State of plain fields and a nil Config always encodes.
		panic(fmt.Sprintf("runtime: encoding state: %v", err))
	}
	if len(config) == 0 {
		return b
	}
	out := make([]byte, 0, len(b)+len(config)+len(`,"config":`))
	out = append(out, b[:len(b)-1]...) // without the closing brace
	if len(b) > 2 {
		out = append(out, ',')
	}
	out = append(out, `"config":`...)
	out = append(out, config...)
	return append(out, '}')
}

// Spec returns the config the container was created from (Update
// changes its resources), decoded anew for the caller.
func (c *Container) Spec() (*specs.Spec, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.specLocked()
}

func (c *Container) specLocked() (*specs.Spec, error) {
	if len(c.configJSON) == 0 {
		return nil, fmt.Errorf("container %q: no config in its state", c.id)
	}
	var s specs.Spec
	if err := json.Unmarshal(c.configJSON, &s); err != nil {
		return nil, fmt.Errorf("container %q: config: %w", c.id, err)
	}
	return &s, nil
}

// hooksLocked returns the config's hooks (never nil).
func (c *Container) hooksLocked() *specs.Hooks {
	if c.hooks == nil {
		s, err := c.specLocked()
		if err != nil {
			return &specs.Hooks{}
		}
		c.hooks = hooksOf(s)
	}
	return c.hooks
}

// Load returns a handle on an existing container.
func (r *Runtime) Load(id string) (*Container, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	dir := filepath.Join(r.root, id)
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("container %q: %w", id, ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	c := &Container{rt: r, id: id, dir: dir, waitDone: make(chan struct{})}
	// The config stays encoded (see configJSON): the outer field takes
	// it in place of State's.
	file := struct {
		*State
		Config json.RawMessage `json:"config,omitempty"`
	}{State: &c.st}
	if err := json.Unmarshal(b, &file); err != nil {
		return nil, fmt.Errorf("container %q: corrupt state: %w", id, err)
	}
	c.configJSON = file.Config
	if c.st.CgroupPath != "" {
		if c.cg, err = newCgroupManager(c.st.CgroupPath); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// List reports the state of every container below the root, sorted by id.
func (r *Runtime) List() ([]State, error) {
	ents, err := os.ReadDir(r.root)
	if err != nil {
		return nil, err
	}
	var out []State
	for _, e := range ents {
		if !e.IsDir() || ValidateID(e.Name()) != nil {
			continue
		}
		c, err := r.Load(e.Name())
		if err != nil {
			continue // being created or deleted
		}
		st, err := c.State()
		if err != nil {
			continue
		}
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// initAlive reports whether the recorded init still runs (not a zombie,
// and the same process: same start time).
func (c *Container) initAliveLocked() bool {
	if c.st.Pid <= 0 {
		return false
	}
	ps, err := ReadProcStat(c.st.Pid)
	if err != nil || ps.StartTime != c.st.InitStartTime {
		return false
	}
	return ps.State != 'Z' && ps.State != 'X'
}

func (c *Container) statusLocked() specs.ContainerState {
	if !c.initAliveLocked() {
		return specs.StateStopped
	}
	if _, err := os.Lstat(filepath.Join(c.dir, fifoName)); err == nil {
		return specs.StateCreated
	}
	if c.pausedLocked() {
		return specs.ContainerState(Paused)
	}
	return specs.StateRunning
}

// State returns the current state (status computed now).
func (c *Container) State() (*State, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.st
	st.Status = c.statusLocked()
	if st.Status == specs.StateStopped {
		st.Pid = 0
	}
	return &st, nil
}

// Init returns the pid of the container's init and its start time
// (State's Pid and InitStartTime) without computing the status.
func (c *Container) Init() (pid int, startTime uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.Pid, c.st.InitStartTime
}

// Start releases the init of a created container to exec the user
// command.
func (c *Container) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.statusLocked() != specs.StateCreated {
		return fmt.Errorf("container %q: %w", c.id, ErrNotCreated)
	}
	fifoPath := filepath.Join(c.dir, fifoName)
	// Non-blocking open: the init is blocked in its open(O_WRONLY) until
	// a reader appears; we then poll so a dead init cannot hang us.
	fd, err := unix.Open(fifoPath, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: fifoPath, Err: err}
	}
	defer unix.Close(fd)
	for {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return os.NewSyscallError("poll", err)
		}
		if n > 0 {
			var b [1]byte
			if m, _ := unix.Read(fd, b[:]); m == 1 {
				break
			}
		}
		if !c.initAliveLocked() {
			return fmt.Errorf("container %q: init died before start: %w", c.id, ErrNotRunning)
		}
	}
	if err := os.Remove(fifoPath); err != nil {
		return err
	}
	c.st.Started = time.Now().UTC()
	c.st.Status = specs.StateRunning
	if err := c.saveLocked(); err != nil {
		return err
	}
	// poststart: failures are reported, the container keeps running.
	return runHooks("poststart", c.hooksLocked().Poststart, c.st.State)
}

// Kill sends sig to the container's init (pid 1 of its pid namespace).
func (c *Container) Kill(sig syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.initAliveLocked() {
		return fmt.Errorf("container %q: %w", c.id, ErrNotRunning)
	}
	if err := unix.Kill(c.st.Pid, sig); err != nil {
		return os.NewSyscallError("kill", err)
	}
	return nil
}

// Wait blocks until the init exits and returns its status. Only the
// handle that created the container (the init's parent) reaps it and
// learns the exit code; other handles wait for the exit and return the
// code the parent recorded, or ErrNotParent. Wait may be called more than
// once and from several goroutines.
func (c *Container) Wait(ctx context.Context) (ExitStatus, error) {
	if c.proc != nil {
		c.waitOnce.Do(func() { go c.reap() })
		select {
		case <-c.waitDone:
			return c.exit, c.waitErr
		case <-ctx.Done():
			return ExitStatus{}, ctx.Err()
		}
	}
	c.mu.Lock()
	pid, start := c.st.Pid, c.st.InitStartTime
	c.mu.Unlock()
	if err := waitForeign(ctx, pid, start); err != nil {
		return ExitStatus{}, err
	}
	// Give the parent a moment to record the exit.
	deadline := time.Now().Add(2 * time.Second)
	for {
		nc, err := c.rt.Load(c.id)
		if err == nil && nc.st.ExitCode != nil {
			return ExitStatus{Code: *nc.st.ExitCode, OOMKilled: nc.st.OOMKilled}, nil
		}
		if time.Now().After(deadline) {
			return ExitStatus{Code: -1}, ErrNotParent
		}
		select {
		case <-ctx.Done():
			return ExitStatus{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitForeign waits for a process that is not our child to exit, through
// a pidfd (it cannot be confused with a later process of the same pid).
func waitForeign(ctx context.Context, pid int, start uint64) error {
	if pid <= 0 {
		return nil
	}
	pfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil // already gone
	}
	defer unix.Close(pfd)
	if ps, err := ReadProcStat(pid); err != nil || ps.StartTime != start {
		return nil // the pid now names another process
	}
	for {
		if ps, err := ReadProcStat(pid); err != nil || ps.State == 'Z' {
			return nil
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(pfd), Events: unix.POLLIN}}, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return os.NewSyscallError("poll", err)
		}
		if n > 0 {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// reap waits for our child init and records its exit.
func (c *Container) reap() {
	defer close(c.waitDone)
	ps, err := c.proc.Wait()
	if err != nil {
		c.waitErr = err
		return
	}
	ws := ps.Sys().(syscall.WaitStatus)
	c.exit = exitStatusOf(ws)
	if c.cg != nil {
		// Like Docker: OOMKilled says the OOM killer fired in the
		// container; the exit code stays what the init returned (137
		// when the kill hit the init itself).
		if oom, err := c.cg.OOMKilled(); err == nil && oom {
			c.exit.OOMKilled = true
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	code := c.exit.Code
	c.st.ExitCode = &code
	c.st.OOMKilled = c.exit.OOMKilled
	c.st.Finished = time.Now().UTC()
	if _, err := os.Stat(c.dir); err == nil {
		_ = c.saveLocked()
	}
}

func exitStatusOf(ws syscall.WaitStatus) ExitStatus {
	if ws.Signaled() {
		return ExitStatus{Code: 128 + int(ws.Signal()), Signal: ws.Signal()}
	}
	return ExitStatus{Code: ws.ExitStatus()}
}

// Delete removes a stopped (or created) container: its cgroup and state.
// A running container is refused unless force, which kills it first.
func (c *Container) Delete(ctx context.Context, force bool) error {
	c.mu.Lock()
	status := c.statusLocked()
	c.mu.Unlock()
	if (status == specs.StateRunning || status == specs.ContainerState(Paused)) && !force {
		return fmt.Errorf("container %q: %w (use force)", c.id, ErrRunning)
	}
	if status != specs.StateStopped {
		c.mu.Lock()
		alive := c.initAliveLocked()
		pid, start := c.st.Pid, c.st.InitStartTime
		if alive {
			_ = unix.Kill(pid, unix.SIGKILL)
			if c.cg != nil {
				_ = c.cg.Thaw() // a frozen (v1) task dies only once thawed
			}
		}
		c.mu.Unlock()
		if c.proc != nil {
			if _, err := c.Wait(ctx); err != nil && !errors.Is(err, ErrNotParent) {
				return err
			}
		} else if err := waitForeign(ctx, pid, start); err != nil {
			return err
		}
	} else if c.proc != nil {
		// reap our zombie
		if _, err := c.Wait(ctx); err != nil && !errors.Is(err, ErrNotParent) {
			return err
		}
	}
	st := c.st.State
	st.Status = specs.StateStopped
	st.Pid = 0
	err := c.teardown()
	// poststop: after the container is gone; a failure is reported only.
	if herr := runHooks("poststop", c.hooksLocked().Poststop, st); herr != nil && err == nil {
		err = herr
	}
	return err
}

// teardown removes the cgroup (killing anything left in it) and the
// state directory.
func (c *Container) teardown() error {
	var errs []error
	if c.proc != nil {
		select {
		case <-c.waitDone:
		default:
			_ = c.proc.Kill()
		}
	}
	if c.cg != nil {
		if err := c.cg.Destroy(); err != nil {
			errs = append(errs, fmt.Errorf("cgroup: %w", err))
		}
	}
	if c.proc != nil {
		c.waitOnce.Do(func() { go c.reap() })
		<-c.waitDone
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Stats samples the container's cgroup.
func (c *Container) Stats() (*cgroups.Stats, error) {
	if c.cg == nil {
		return nil, fmt.Errorf("container %q has no cgroup: %w", c.id, ErrNotSupported)
	}
	return c.cg.Stats()
}

// Cgroup is the container's cgroup manager, or nil.
func (c *Container) Cgroup() cgroups.Manager { return c.cg }
