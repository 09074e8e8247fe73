package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/runtime"
	"github.com/berth-dev/berth/supervisor/runtime/cgroups"
	"github.com/berth-dev/berth/supervisor/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// defaultStopGrace is how long Stop waits after the stop signal before
// SIGKILL when the service sets no stop_grace_period.
const defaultStopGrace = 10 * time.Second

// Instance is one container of a service. Its lifecycle:
//
//	Create ──► created ──Start──► running ──exit──► exited ──Start──► running
//	                       ▲        │  ▲ Pause/Unpause   │
//	                       │        ▼  │                 │ restart policy
//	                       │      paused                 ▼
//	                       └──── (timer, backoff) ◄── restarting
//
// Remove (from any state, running only with Force) deletes it. The methods
// are safe for concurrent use; lifecycle operations (Start, Stop, Restart,
// Remove and a policy restart) run one at a time.
type Instance struct {
	e       *Engine
	name    string
	project string
	service string
	dir     string

	// opMu serialises the lifecycle operations. Taken before mu, never
	// while holding mu.
	opMu sync.Mutex

	mu      sync.Mutex         // guards everything below
	st      containerState     // persisted
	rc      *runtime.Container // current runtime container, nil when none exists
	rcOwned bool               // rc came from our Create: we are its init's parent
	// consoleTaken is the runtime container whose pty master TakeConsole
	// handed over: its output is not copied into the log.
	consoleTaken *runtime.Container
	run          *run          // the running process, nil when none runs
	changed      chan struct{} // closed and replaced on every change
	subs         map[int]func(ContainerInfo)
	subSeq       int
	tracker      *RestartTracker
	uhTrack      *RestartTracker // backoff for restart_on_unhealthy when the policy would not restart
	health       *HealthState
	timer        *time.Timer // pending policy restart
	ing          *ingester
	lf           *LogFile
	offTimer     *time.Timer // pending save of log offsets
	removed      bool
	detached     bool // the engine was closed: touch nothing any more
}

// run is one execution of the container's process.
type run struct {
	c         *runtime.Container
	done      chan struct{} // closed once the exit is handled
	pid       int
	startTime uint64
	adopted   bool // not our child: waited through a pidfd

	// guarded by Instance.mu
	userStop      bool
	unhealthyKill bool
	healthTimer   *time.Timer
	probing       bool
	over          bool
}

// Name is the container name.
func (i *Instance) Name() string { return i.name }

// Project is the container's project.
func (i *Instance) Project() string { return i.project }

// ServiceName is the container's service name.
func (i *Instance) ServiceName() string { return i.service }

// Service returns the service the container was created from (with the
// image's health check filled in when it had none). Callers must not
// modify it.
func (i *Instance) Service() *spec.Service {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.st.Service
}

// LogPath is the container's JSON-lines log (rotated to LogPath.1, ...),
// readable with ReadLogs even after the container exited.
func (i *Instance) LogPath() string { return filepath.Join(i.dir, i.name+".log") }

// FollowLogs returns a channel that receives a value whenever new entries
// were written to the log (several writes may coalesce into one value),
// and a function that stops following. The channel is never closed.
func (i *Instance) FollowLogs() (<-chan struct{}, func()) {
	i.mu.Lock()
	ing := i.ing
	i.mu.Unlock()
	if ing == nil {
		return make(chan struct{}), func() {}
	}
	return ing.follow()
}

// Snapshot returns what `ps` shows of the container now.
func (i *Instance) Snapshot() ContainerInfo {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.snapshotLocked()
}

func (i *Instance) snapshotLocked() ContainerInfo {
	c := i.st.Info
	c.Command = slices.Clone(c.Command)
	c.Publishers = slices.Clone(c.Publishers)
	c.Networks = slices.Clone(c.Networks)
	if i.health != nil {
		c.HealthLog = i.health.Log()
	} else {
		c.HealthLog = slices.Clone(c.HealthLog)
	}
	return c
}

// Subscribe calls fn with a snapshot after every change of the container's
// state or health, synchronously from the goroutine that made the change:
// fn must not block or call the Instance's lifecycle methods.
func (i *Instance) Subscribe(fn func(ContainerInfo)) (unsubscribe func()) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.subs == nil {
		i.subs = map[int]func(ContainerInfo){}
	}
	i.subSeq++
	id := i.subSeq
	i.subs[id] = fn
	return func() {
		i.mu.Lock()
		delete(i.subs, id)
		i.mu.Unlock()
	}
}

// changedLocked wakes WaitCondition callers and returns the subscribers to
// call (with the snapshot) once mu is released.
func (i *Instance) changedLocked() func() {
	close(i.changed)
	i.changed = make(chan struct{})
	if len(i.subs) == 0 {
		return func() {}
	}
	snap := i.snapshotLocked()
	fns := make([]func(ContainerInfo), 0, len(i.subs))
	for _, fn := range i.subs {
		fns = append(fns, fn)
	}
	return func() {
		for _, fn := range fns {
			fn(snap)
		}
	}
}

// saveLocked writes the state file; durable fsyncs it.
func (i *Instance) saveLocked(durable bool) error {
	if i.removed || i.detached {
		return nil
	}
	return saveState(i.e.statePath(i.name), i.dir, &i.st, durable)
}

func (i *Instance) emit(action, status, msg string, code int) {
	i.e.emit(Event{Project: i.project, Service: i.service, Container: i.name,
		Action: action, Status: status, Message: msg, ExitCode: code})
}

// WaitCondition blocks until the container meets cond (started, healthy,
// completed_successfully, with or without the depends_on "service_"
// prefix; also running and exited), ctx ends, or the condition can no
// longer be met: then the error (wrapping ErrConditionFailed) names the
// container and says why (unhealthy, exited with code N). It wakes on
// state changes, never polls.
func (i *Instance) WaitCondition(ctx context.Context, cond string) error {
	cond = strings.TrimPrefix(cond, "service_")
	switch cond {
	case ConditionStarted, ConditionHealthy, ConditionCompletedSuccessfully, "running", "exited":
	default:
		return fmt.Errorf("container %s: unknown condition %q", i.name, cond)
	}
	for {
		i.mu.Lock()
		done, err := i.checkLocked(cond)
		ch := i.changed
		i.mu.Unlock()
		if done {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("container %s: waiting for %s: %w", i.name, cond, ctx.Err())
		}
	}
}

// checkLocked reports whether waiting for cond is over, and with which
// error.
func (i *Instance) checkLocked(cond string) (bool, error) {
	c := &i.st.Info
	if i.removed {
		return true, fmt.Errorf("container %s: %w", i.name, ErrRemoved)
	}
	failed := func(format string, a ...any) (bool, error) {
		return true, fmt.Errorf("container %s %s: %w", i.name, fmt.Sprintf(format, a...), ErrConditionFailed)
	}
	final := c.State == StateExited || c.State == StateDead
	switch cond {
	case ConditionStarted:
		if !c.StartedAt.IsZero() {
			return true, nil
		}
		if c.State == StateDead {
			return failed("is dead: %s", c.Error)
		}
	case "running":
		if c.State == StateRunning {
			return true, nil
		}
		if final && !c.StartedAt.IsZero() {
			return failed("exited with code %d", c.ExitCode)
		}
	case "exited":
		return final, nil
	case ConditionHealthy:
		if i.st.Service != nil && NewHealthConfig(i.st.Service.Healthcheck) == nil {
			return failed("has no health check")
		}
		switch {
		case c.Health == HealthHealthy && c.State == StateRunning:
			return true, nil
		case c.Health == HealthUnhealthy:
			return failed("is unhealthy")
		case final && !c.StartedAt.IsZero():
			return failed("exited with code %d before it was healthy", c.ExitCode)
		}
	case ConditionCompletedSuccessfully:
		if final && !c.StartedAt.IsZero() {
			if c.ExitCode == 0 {
				return true, nil
			}
			return failed("exited with code %d", c.ExitCode)
		}
	}
	return false, nil
}

// stopSignal is the signal that stops the container.
func (i *Instance) stopSignalLocked() syscall.Signal {
	if s, err := parseSignal(i.st.StopSignal); err == nil {
		return s
	}
	return syscall.SIGTERM
}

func (i *Instance) stopGraceLocked() time.Duration {
	if d := i.st.Service.StopGracePeriod; d != nil && d.D() > 0 {
		return d.D()
	}
	return defaultStopGrace
}

// Start starts the container's process (created or exited) and returns
// once it runs and its names resolve. Starting a running container does
// nothing. It clears "stopped by the user".
func (i *Instance) Start(ctx context.Context) error {
	i.opMu.Lock()
	defer i.opMu.Unlock()
	i.mu.Lock()
	if i.removed {
		i.mu.Unlock()
		return fmt.Errorf("container %s: %w", i.name, ErrRemoved)
	}
	if i.run != nil {
		i.mu.Unlock()
		return nil
	}
	if i.st.Info.State == StateDead {
		i.mu.Unlock()
		return fmt.Errorf("container %s is dead (%s): remove it", i.name, i.st.Info.Error)
	}
	if i.timer != nil {
		i.timer.Stop()
		i.timer = nil
	}
	i.st.Info.StoppedByUser = false
	i.mu.Unlock()
	return i.startOp(ctx, "start")
}

// startOp starts a new process of the container. opMu must be held.
func (i *Instance) startOp(ctx context.Context, action string) (retErr error) {
	defer func() {
		if retErr != nil {
			retErr = fmt.Errorf("container %s: start: %w", i.name, retErr)
		}
	}()
	i.mu.Lock()
	rc := i.rc
	i.mu.Unlock()
	if rc != nil {
		if st, err := rc.State(); err != nil || st.Status != specs.StateCreated {
			rc = nil // a used or broken one: make a new one
		}
	}
	if rc == nil {
		var err error
		if rc, err = i.createRuntime(ctx, nil, nil, nil); err != nil {
			return err
		}
	}
	defer func() {
		if retErr != nil {
			// Leave no half-started container behind: the next Start
			// makes a fresh one.
			dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = rc.Delete(dctx, true)
			cancel()
			i.mu.Lock()
			if i.rc == rc {
				i.rc = nil
			}
			i.mu.Unlock()
		}
	}()

	svc := i.Service()
	i.mu.Lock()
	netMode := i.st.NetMode
	i.mu.Unlock()
	var pubs = i.Snapshot().Publishers
	if len(svc.Ports) > 0 && netMode == netModeBridge {
		b, err := i.e.cfg.Net.PublishPorts(i.project, i.service, i.name, svc.Ports)
		if err != nil {
			return err
		}
		pubs = b
	}
	if err := rc.Start(); err != nil {
		return err
	}
	pid, initStart := rc.Init()
	if netMode == netModeBridge {
		if err := i.e.cfg.Net.Register(i.name); err != nil {
			return err
		}
	}
	i.mu.Lock()
	taken := i.consoleTaken == rc
	i.mu.Unlock()
	if console := rc.Console(); console != nil && !taken {
		i.mu.Lock()
		lf, ing := i.lf, i.ing
		i.mu.Unlock()
		if lf != nil {
			go copyConsole(console, lf, ing)
		} else {
			console.Close()
		}
	}
	now := time.Now().UTC()

	i.mu.Lock()
	// A created container adopted from a previous daemon is not our
	// child: its exit is learnt like an adopted running one's.
	r := &run{c: rc, done: make(chan struct{}), pid: pid, startTime: initStart, adopted: !i.rcOwned}
	i.rc = rc
	i.run = r
	c := &i.st.Info
	c.State = StateRunning
	c.Pid = pid
	c.StartedAt = now
	c.ExitCode = 0
	c.OOMKilled = false
	c.Error = ""
	c.Publishers = pubs
	c.Networks = i.e.cfg.Net.Attachments(i.name)
	i.st.InitStartTime = initStart
	i.st.BootID = bootID()
	i.tracker.Started(now)
	i.uhTrack.Started(now)
	hc := NewHealthConfig(svc.Healthcheck)
	if hc != nil {
		i.health = NewHealthState(*hc, now)
		c.Health = HealthStarting
		c.HealthLog = nil
	} else {
		i.health = nil
		c.Health = HealthNone
	}
	saveErr := i.saveLocked(true)
	notify := i.changedLocked()
	i.mu.Unlock()
	notify()
	i.emit(action, StateRunning, "", 0)
	if saveErr != nil {
		i.emit("error", StateRunning, "saving state: "+saveErr.Error(), 0)
	}

	go i.wait(r)
	i.runHooks(ctx, r, svc.PostStart, "post_start")
	if hc != nil {
		i.scheduleProbe(r, i.nextProbeDelay())
	}
	return nil
}

// TakeConsole hands over the pty master of a created container whose
// service has tty, before it first starts: the caller owns it, and what
// the process writes to its terminal goes to the caller instead of the
// log. It returns nil when there is none (no tty, already started, or
// already taken).
func (i *Instance) TakeConsole() *os.File {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.rc == nil || i.run != nil || i.consoleTaken == i.rc {
		return nil
	}
	c := i.rc.Console()
	if c != nil {
		i.consoleTaken = i.rc
	}
	return c
}

// createRuntime (re)creates the runtime container from the bundle: the
// same rootfs (its writable layer kept), netns and mounts; stdin is its
// process's stdin (nil: /dev/null). oci is the bundle's spec when the
// caller has it at hand (nil: read from the bundle), ociJSON the bytes of
// its config.json if the caller has those too. opMu held.
func (i *Instance) createRuntime(ctx context.Context, oci *specs.Spec, ociJSON []byte, stdin *os.File) (*runtime.Container, error) {
	rt := i.e.cfg.Runtime
	i.mu.Lock()
	prev := i.rc
	i.rc = nil
	i.mu.Unlock()
	if prev != nil {
		// Our handle first: when it is the init's parent, it reaps.
		if err := prev.Delete(ctx, true); err != nil && !errors.Is(err, runtime.ErrNotExist) {
			return nil, fmt.Errorf("deleting the previous run: %w", err)
		}
	}
	if old, err := rt.Load(i.name); err == nil {
		if err := old.Delete(ctx, true); err != nil {
			return nil, fmt.Errorf("deleting the previous run: %w", err)
		}
	}
	// The spec is read from the bundle each time rather than kept: it
	// holds the seccomp rules, tens of KiB per container.
	if oci == nil {
		var err error
		if oci, err = runtime.LoadSpec(i.dir); err != nil {
			return nil, err
		}
	}
	i.mu.Lock()
	digest := i.st.Info.ImageDigest
	i.mu.Unlock()
	i.mu.Lock()
	st := i.st
	i.mu.Unlock()
	if err := i.e.renewNetNS(i.name, i.project, &st); err != nil {
		return nil, fmt.Errorf("network namespace: %w", err)
	}
	// Mount the rootfs again if it is not (after a host reboot); the
	// upper directory is kept.
	if _, err := os.Stat(filepath.Join(oci.Root.Path, "proc")); err != nil {
		img, err := i.e.cfg.Images.Get(digest)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", digest, err)
		}
		if _, _, err := i.e.cfg.Images.PrepareContainer(i.name, img); err != nil {
			return nil, err
		}
	}
	stdout, stderr, err := i.openRaw()
	if err != nil {
		return nil, err
	}
	defer stdout.Close()
	defer stderr.Close()
	c, err := rt.Create(ctx, i.name, runtime.CreateOpts{
		Bundle:   i.dir,
		Spec:     oci,
		SpecJSON: ociJSON,
		IO:       runtime.IO{Stdin: stdin, Stdout: stdout, Stderr: stderr},
	})
	if err != nil {
		return nil, err
	}
	i.mu.Lock()
	i.rc, i.rcOwned = c, true
	i.mu.Unlock()
	return c, nil
}

// openRaw opens the raw output files the container writes to, appending.
func (i *Instance) openRaw() (stdout, stderr *os.File, err error) {
	stdout, err = os.OpenFile(filepath.Join(i.dir, "stdout.raw"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, err
	}
	stderr, err = os.OpenFile(filepath.Join(i.dir, "stderr.raw"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		stdout.Close()
		return nil, nil, err
	}
	return stdout, stderr, nil
}

// wait waits for r to end and handles its exit.
func (i *Instance) wait(r *run) {
	var es runtime.ExitStatus
	note := ""
	if r.adopted {
		es, note = i.e.waitAdopted(i.name, r)
	} else {
		// Wait for the exit on the netpoller first (no thread blocks
		// in waitid while the container runs), then reap: the runtime
		// handle, our child's parent, records the status.
		_ = waitPidfd(r.pid, r.startTime)
		var err error
		es, err = r.c.Wait(context.Background())
		if err != nil {
			es = runtime.ExitStatus{Code: 255}
			note = "exit status unknown: " + err.Error()
		}
	}
	i.handleExit(r, es, note)
}

// handleExit records how r ended and applies the restart policy.
func (i *Instance) handleExit(r *run, es runtime.ExitStatus, note string) {
	i.mu.Lock()
	if i.detached || i.run != r {
		i.mu.Unlock()
		close(r.done)
		return
	}
	ing := i.ing
	i.mu.Unlock()
	if ing != nil {
		ing.pump() // the last lines are in the log before anyone hears of the exit
	}

	i.mu.Lock()
	now := time.Now().UTC()
	i.run = nil
	r.over = true
	if r.healthTimer != nil {
		r.healthTimer.Stop()
	}
	c := &i.st.Info
	c.ExitCode = es.Code
	c.OOMKilled = es.OOMKilled
	c.FinishedAt = now
	c.Pid = 0
	c.Error = note
	if i.health != nil && c.Health != HealthUnhealthy {
		c.Health = HealthNone
	}
	i.health = nil
	var d RestartDecision
	switch {
	case r.userStop || c.StoppedByUser:
		d = RestartDecision{Reason: "stopped by the user"}
	case r.unhealthyKill:
		d = i.tracker.Exited(now, Exit{Code: es.Code})
		if !d.Restart {
			d = i.uhTrack.Exited(now, Exit{Code: es.Code})
		}
	default:
		d = i.tracker.Exited(now, Exit{Code: es.Code})
	}
	if d.Restart {
		c.State = StateRestarting
		c.RestartCount++
		i.tracker.SetCount(c.RestartCount)
		i.timer = time.AfterFunc(d.Delay, func() { i.policyRestart() })
	} else {
		c.State = StateExited
	}
	state := c.State
	unpublish := state == StateExited && len(c.Publishers) > 0
	if unpublish {
		// A stopped container holds no host ports (as in Docker); Start
		// publishes them again.
		c.Publishers = nil
	}
	_ = i.saveLocked(true)
	notify := i.changedLocked()
	netMode := i.st.NetMode
	i.mu.Unlock()

	if netMode == netModeBridge {
		i.e.cfg.Net.Unregister(i.name)
		if unpublish {
			if err := i.e.cfg.Net.UnpublishPorts(i.name); err != nil {
				i.emit("error", state, "unpublishing ports: "+err.Error(), 0)
			}
		}
	}
	if es.OOMKilled {
		i.emit("oom", state, "", es.Code)
	}
	i.e.emit(Event{Project: i.project, Service: i.service, Container: i.name, Action: "die", Status: state,
		ExitCode: es.Code, Message: strings.TrimSpace(note + " " + d.Reason), RestartDelay: d.Delay})
	close(r.done)
	notify()
}

// policyRestart runs when a restart's backoff delay is over.
func (i *Instance) policyRestart() {
	i.opMu.Lock()
	defer i.opMu.Unlock()
	i.mu.Lock()
	if i.removed || i.detached || i.run != nil || i.st.Info.State != StateRestarting || i.st.Info.StoppedByUser {
		i.mu.Unlock()
		return
	}
	i.timer = nil
	i.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := i.startOp(ctx, "restart"); err != nil {
		i.mu.Lock()
		i.st.Info.State = StateExited
		i.st.Info.Error = err.Error()
		_ = i.saveLocked(true)
		notify := i.changedLocked()
		i.mu.Unlock()
		notify()
		i.emit("die", StateExited, err.Error(), i.st.Info.ExitCode)
	}
}

// Stop stops the container as the user asked: pre_stop hooks, the stop
// signal, SIGKILL after timeout (negative: the service's
// stop_grace_period, default 10 s), and waits for the exit. No restart
// policy brings it back (until Start). Stopping a stopped container only
// records that the user stopped it.
func (i *Instance) Stop(ctx context.Context, timeout time.Duration) error {
	i.opMu.Lock()
	defer i.opMu.Unlock()
	return i.stopOp(ctx, timeout, true)
}

func (i *Instance) stopOp(ctx context.Context, timeout time.Duration, hooks bool) error {
	i.mu.Lock()
	i.st.Info.StoppedByUser = true
	if i.timer != nil {
		i.timer.Stop()
		i.timer = nil
	}
	r := i.run
	if r == nil {
		if i.st.Info.State == StateRestarting {
			i.st.Info.State = StateExited
		}
		_ = i.saveLocked(true)
		notify := i.changedLocked()
		i.mu.Unlock()
		notify()
		return nil
	}
	r.userStop = true
	_ = i.saveLocked(true)
	if timeout < 0 {
		timeout = i.stopGraceLocked()
	}
	sig := i.stopSignalLocked()
	svc := i.st.Service
	i.mu.Unlock()
	if hooks && len(svc.PreStop) > 0 {
		// A process exec'd into a frozen cgroup freezes too (and the
		// runtime's Exec then waits for it forever): thaw first.
		i.thaw(r)
		hctx, cancel := context.WithTimeout(ctx, timeout)
		i.runHooks(hctx, r, svc.PreStop, "pre_stop")
		cancel()
	}
	err := i.terminate(ctx, r, sig, timeout)
	if err == nil {
		i.emit("stop", StateExited, "", i.Snapshot().ExitCode)
	}
	return err
}

// terminate sends sig, waits timeout, then SIGKILL, and waits for r's
// exit to be handled.
func (i *Instance) terminate(ctx context.Context, r *run, sig syscall.Signal, timeout time.Duration) error {
	if timeout > 0 {
		_ = r.c.Kill(sig)
		i.thaw(r)
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-r.done:
			return nil
		case <-t.C:
		case <-ctx.Done():
		}
	}
	_ = r.c.Kill(syscall.SIGKILL)
	i.thaw(r)
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("container %s: stop: %w", i.name, ctx.Err())
	}
}

// thaw resumes a paused container so signals reach it.
func (i *Instance) thaw(r *run) {
	if cg := r.c.Cgroup(); cg != nil {
		if frozen, _ := cgroups.IsFrozen(cg); frozen {
			_ = cg.Thaw()
		}
	}
}

// Kill sends sig to the container's main process. SIGKILL, SIGTERM,
// SIGINT, SIGQUIT and the container's stop signal count as a stop by the
// user: no restart policy brings the container back.
func (i *Instance) Kill(sig syscall.Signal) error {
	i.mu.Lock()
	r := i.run
	if r == nil {
		i.mu.Unlock()
		return fmt.Errorf("container %s: %w", i.name, ErrNotRunning)
	}
	switch sig {
	case syscall.SIGKILL, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, i.stopSignalLocked():
		r.userStop = true
		i.st.Info.StoppedByUser = true
		_ = i.saveLocked(true)
	}
	i.mu.Unlock()
	if err := r.c.Kill(sig); err != nil {
		return fmt.Errorf("container %s: kill: %w", i.name, err)
	}
	i.emit("kill", "", unixSignalName(sig), 0)
	return nil
}

// Pause freezes every process of the container.
func (i *Instance) Pause() error { return i.freeze(true) }

// Unpause thaws a paused container.
func (i *Instance) Unpause() error { return i.freeze(false) }

func (i *Instance) freeze(pause bool) error {
	i.mu.Lock()
	r := i.run
	i.mu.Unlock()
	if r == nil {
		return fmt.Errorf("container %s: %w", i.name, ErrNotRunning)
	}
	cg := r.c.Cgroup()
	if cg == nil {
		return fmt.Errorf("container %s: no cgroup to freeze", i.name)
	}
	var err error
	action, state := "pause", StatePaused
	if pause {
		err = cg.Freeze()
	} else {
		err = cg.Thaw()
		action, state = "unpause", StateRunning
	}
	if err != nil {
		return fmt.Errorf("container %s: %s: %w", i.name, action, err)
	}
	i.mu.Lock()
	if i.run != r {
		i.mu.Unlock()
		return nil
	}
	i.st.Info.State = state
	_ = i.saveLocked(true)
	notify := i.changedLocked()
	i.mu.Unlock()
	notify()
	i.emit(action, state, "", 0)
	return nil
}

// Restart stops the container (as Stop, with timeout) and starts it again.
func (i *Instance) Restart(ctx context.Context, timeout time.Duration) error {
	i.opMu.Lock()
	defer i.opMu.Unlock()
	if err := i.stopOp(ctx, timeout, true); err != nil {
		return err
	}
	i.mu.Lock()
	if i.removed {
		i.mu.Unlock()
		return fmt.Errorf("container %s: %w", i.name, ErrRemoved)
	}
	i.st.Info.StoppedByUser = false
	i.mu.Unlock()
	return i.startOp(ctx, "restart")
}

// Remove deletes the container and everything it holds: the runtime
// container, its network attachments and published ports, its netns file,
// its volume users (and anonymous volumes with Volumes), its rootfs with
// the writable layer, its directory, logs and state. A running container
// is refused unless Force. Every step is attempted; the errors are joined.
func (i *Instance) Remove(ctx context.Context, opts RemoveOptions) error {
	i.opMu.Lock()
	defer i.opMu.Unlock()
	i.mu.Lock()
	if i.removed {
		i.mu.Unlock()
		return nil
	}
	r := i.run
	if r != nil && !opts.Force {
		i.mu.Unlock()
		return fmt.Errorf("container %s: %w (stop it first, or force)", i.name, ErrIsRunning)
	}
	i.st.Info.StoppedByUser = true
	if i.timer != nil {
		i.timer.Stop()
		i.timer = nil
	}
	if r != nil {
		r.userStop = true
	}
	i.mu.Unlock()
	var errs []error
	if r != nil {
		if err := i.terminate(ctx, r, syscall.SIGKILL, 0); err != nil {
			errs = append(errs, err)
		}
	}
	i.mu.Lock()
	rc := i.rc
	i.rc = nil
	i.mu.Unlock()
	if err := i.e.teardown(ctx, i.name, &i.st, rc, opts.Volumes); err != nil {
		// Something is left (a mount, a link, a cgroup): keep the
		// container, dead, with its state file, so that Remove can be
		// tried again (every step is idempotent).
		errs = append(errs, err)
		i.mu.Lock()
		i.st.Info.State = StateDead
		i.st.Info.Error = err.Error()
		_ = i.saveLocked(true)
		notify := i.changedLocked()
		i.mu.Unlock()
		notify()
		return fmt.Errorf("container %s: remove: %w", i.name, errors.Join(errs...))
	}

	i.mu.Lock()
	if i.ing != nil {
		i.e.logs.remove(i.ing)
		i.ing.close()
		i.ing = nil
	}
	if i.lf != nil {
		i.lf.Close()
	}
	if i.offTimer != nil {
		i.offTimer.Stop()
	}
	i.removed = true
	notify := i.changedLocked()
	i.mu.Unlock()
	if err := os.RemoveAll(i.dir); err != nil {
		errs = append(errs, err)
	}
	if err := os.Remove(i.e.statePath(i.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	i.e.mu.Lock()
	if i.e.instances[i.name] == i {
		delete(i.e.instances, i.name)
	}
	i.e.mu.Unlock()
	notify()
	i.emit("destroy", "", "", 0)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("container %s: remove: %w", i.name, err)
	}
	return nil
}

// detach stops everything the engine runs for the container without
// touching the container (the engine is closing).
func (i *Instance) detach() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.detached = true
	if i.timer != nil {
		i.timer.Stop()
	}
	if i.offTimer != nil {
		i.offTimer.Stop()
	}
	if r := i.run; r != nil {
		r.over = true
		if r.healthTimer != nil {
			r.healthTimer.Stop()
		}
	}
	if i.ing != nil {
		i.ing.close()
	}
	if i.lf != nil {
		i.lf.Close()
	}
}

// saveOffsets records the ingested log offsets; the state file is written
// (not fsynced: losing it means re-ingesting a few lines) at most once a
// second.
func (i *Instance) saveOffsets(offs [2]int64) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.st.LogOffsets = offs
	if i.offTimer != nil || i.removed || i.detached {
		return
	}
	i.offTimer = time.AfterFunc(time.Second, func() {
		i.mu.Lock()
		defer i.mu.Unlock()
		i.offTimer = nil
		_ = i.saveLocked(false)
	})
}

// startLogs opens the log and starts ingesting the raw files.
func (i *Instance) startLogs() error {
	svc := i.Service()
	logging := svc.Logging
	if logging != nil && logging.Driver != "" && logging.Driver != "json-file" && logging.Driver != "local" {
		i.emit("warning", "", fmt.Sprintf("logging.driver %q is not supported: berth keeps json-file logs", logging.Driver), 0)
		l := *logging
		l.Driver = ""
		logging = &l
	}
	opts, err := ParseLogOptions(logging)
	if err != nil {
		return err
	}
	lf, err := OpenLogFile(i.LogPath(), opts)
	if err != nil {
		return err
	}
	i.mu.Lock()
	offs := i.st.LogOffsets
	i.mu.Unlock()
	ing, err := newIngester(i.dir, lf, offs, i.saveOffsets)
	if err != nil {
		lf.Close()
		return err
	}
	if err := i.e.logs.add(ing); err != nil {
		ing.close()
		lf.Close()
		return err
	}
	i.mu.Lock()
	i.lf, i.ing = lf, ing
	i.mu.Unlock()
	ing.pump() // catch up with what was written while nobody watched
	return nil
}

// nextProbeDelay is when the next probe runs.
func (i *Instance) nextProbeDelay() time.Duration {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.health == nil {
		return time.Hour
	}
	return i.health.NextProbe(time.Now())
}

func unixSignalName(sig syscall.Signal) string {
	return fmt.Sprintf("%d (%s)", int(sig), sig.String())
}

var _ = specconv.AnnotationStopSignal
