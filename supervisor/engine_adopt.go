package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/runtime"
	"github.com/berth-dev/berth/supervisor/runtime/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Adopt takes over the containers a previous daemon left, from their state
// files: a container whose init is still the same process (pid and start
// time) is adopted running (or paused): its log ingestion, DNS names,
// health checks and exit wait resume. A container that exited meanwhile
// gets its exit code from the keeper's exit record (255 with a note when
// there is none) and its restart policy applied. Containers the engine
// already has are skipped. It returns the containers it adopted, sorted by
// name, and every error met (an unreadable state file does not stop the
// others).
func (e *Engine) Adopt(ctx context.Context) ([]*Instance, error) {
	dir := filepath.Join(e.cfg.Root, "state", "containers")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []*Instance
	var errs []error
	for _, de := range ents {
		n := de.Name()
		if !strings.HasSuffix(n, ".json") || strings.HasPrefix(n, ".") {
			continue
		}
		name := strings.TrimSuffix(n, ".json")
		e.mu.Lock()
		_, have := e.instances[name]
		closed := e.closed
		e.mu.Unlock()
		if closed {
			return out, errors.New("engine closed")
		}
		if have {
			continue
		}
		st, err := loadState(filepath.Join(dir, n))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		i, err := e.adoptOne(ctx, name, st)
		if err != nil {
			errs = append(errs, fmt.Errorf("container %s: adopt: %w", name, err))
		}
		if i != nil {
			out = append(out, i)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].name < out[b].name })
	return out, errors.Join(errs...)
}

func (e *Engine) adoptOne(ctx context.Context, name string, st *containerState) (*Instance, error) {
	i := &Instance{e: e, name: name, project: st.Info.Project, service: st.Info.Service,
		dir: e.containerDir(name), changed: make(chan struct{}), st: *st}
	i.tracker = NewRestartTracker(st.Service.Restart)
	i.tracker.SetCount(st.Info.RestartCount)
	i.uhTrack = NewRestartTracker(spec.RestartPolicy{Condition: "always"})
	e.mu.Lock()
	if _, ok := e.instances[name]; ok || e.creating[name] {
		e.mu.Unlock()
		return nil, nil
	}
	e.instances[name] = i
	e.mu.Unlock()

	i.opMu.Lock()
	defer i.opMu.Unlock()
	if err := os.MkdirAll(i.dir, 0o700); err != nil {
		return i, err
	}
	logErr := i.startLogs()

	prev := st.Info.State
	rc, lerr := e.cfg.Runtime.Load(name)
	var rs *runtime.State
	if lerr == nil {
		rs, lerr = rc.State()
	}
	if lerr == nil && rs.Status == specs.StateRunning && rs.Pid == st.Info.Pid && rs.InitStartTime == st.InitStartTime &&
		(prev == StateRunning || prev == StatePaused) {
		// The same process still runs: adopt it.
		r := &run{c: rc, done: make(chan struct{}), pid: rs.Pid, startTime: rs.InitStartTime, adopted: true}
		state := StateRunning
		if cg := rc.Cgroup(); cg != nil {
			if frozen, _ := cgroups.IsFrozen(cg); frozen {
				state = StatePaused
			}
		}
		if st.NetMode == netModeBridge {
			if err := e.cfg.Net.Register(name); err != nil {
				logErr = errors.Join(logErr, err)
			}
		}
		i.mu.Lock()
		i.rc, i.run = rc, r
		i.st.Info.State = state
		i.tracker.Started(st.Info.StartedAt)
		i.uhTrack.Started(st.Info.StartedAt)
		hc := NewHealthConfig(st.Service.Healthcheck)
		if hc != nil {
			i.health = NewHealthState(*hc, time.Now())
		}
		_ = i.saveLocked(true)
		i.mu.Unlock()
		go i.wait(r)
		if hc != nil {
			i.scheduleProbe(r, i.nextProbeDelay())
		}
		e.emit(Event{Project: i.project, Service: i.service, Container: name, Action: "adopt", Status: state})
		return i, logErr
	}
	if lerr == nil && rs.Status == specs.StateCreated && prev == StateCreated {
		i.mu.Lock()
		i.rc = rc
		i.mu.Unlock()
		e.emit(Event{Project: i.project, Service: i.service, Container: name, Action: "adopt", Status: StateCreated})
		return i, logErr
	}
	rebooted := st.BootID != "" && st.BootID != bootID()
	switch {
	case rebooted && (prev == StateRunning || prev == StatePaused || prev == StateRestarting):
		// Everything died with the host. The restart policies are the
		// daemon's boot restore to apply (in dependency order, waiting
		// for health): only record the exit here.
		i.mu.Lock()
		c := &i.st.Info
		c.State, c.ExitCode, c.Pid = StateExited, 255, 0
		c.Error = "the host restarted while the container ran"
		if c.FinishedAt.IsZero() || c.FinishedAt.Before(c.StartedAt) {
			c.FinishedAt = time.Now().UTC()
		}
		if c.Health != HealthNone {
			c.Health = HealthNone
		}
		_ = i.saveLocked(true)
		i.mu.Unlock()
	case prev == StateRunning || prev == StatePaused:
		// It exited while no daemon watched: find out how, then let
		// the restart policy decide.
		es, note := e.exitOf(rc, rs, st.Info.Pid, st.InitStartTime)
		r := &run{done: make(chan struct{})}
		i.mu.Lock()
		i.run = r
		i.mu.Unlock()
		i.handleExit(r, es, note)
	case prev == StateRestarting:
		i.mu.Lock()
		if !i.st.Info.StoppedByUser {
			i.timer = time.AfterFunc(0, func() { i.policyRestart() })
		}
		i.mu.Unlock()
	case prev == StateCreated:
		// The runtime container is gone (a reboot): Start makes it again.
	}
	e.emit(Event{Project: i.project, Service: i.service, Container: name, Action: "adopt", Status: i.Snapshot().State})
	return i, logErr
}

// exitOf finds the exit status of an init (pid, start) that is gone: the
// runtime's record (when an earlier handle of this process reaped it),
// the keeper's exit record, or 255 with a note.
func (e *Engine) exitOf(rc *runtime.Container, rs *runtime.State, pid int, start uint64) (runtime.ExitStatus, string) {
	if rs != nil && rs.ExitCode != nil && rs.InitStartTime == start {
		return runtime.ExitStatus{Code: *rs.ExitCode, OOMKilled: rs.OOMKilled}, ""
	}
	if pid > 0 {
		p := e.exitRecordPath(pid, start)
		if rec, err := readExitRecord(p); err == nil {
			_ = os.Remove(p)
			es := runtime.ExitStatus{Code: rec.Code}
			if rc != nil && es.Code == 137 {
				if cg := rc.Cgroup(); cg != nil {
					if oom, err := cg.OOMKilled(); err == nil && oom {
						es.OOMKilled = true
					}
				}
			}
			return es, ""
		}
	}
	return runtime.ExitStatus{Code: 255}, "exit code unknown: the container exited while no supervisor watched it and no exit record was found"
}

// waitAdopted waits for an adopted init (not our child) to exit, through a
// pidfd on the Go netpoller (no thread blocks), then finds its exit status.
func (e *Engine) waitAdopted(name string, r *run) (runtime.ExitStatus, string) {
	// Only our keeper (or we) reap the init and record its status. When
	// another process is its parent (the keeper was stopped with the
	// daemon, so the init went to the system's init), no record will
	// come: look once instead of waiting for it.
	delays := []time.Duration{0, 10, 20, 50, 100, 200, 400, 800}
	if pp, err := procParent(r.pid, r.startTime); err == nil && pp != os.Getpid() && pp != os.Getppid() {
		delays = delays[:1]
	}
	_ = waitPidfd(r.pid, r.startTime)
	// The keeper (or another handle of ours) records the status right
	// after reaping; give it a moment.
	var rs *runtime.State
	for _, d := range delays {
		time.Sleep(d * time.Millisecond)
		if _, err := os.Stat(e.exitRecordPath(r.pid, r.startTime)); err == nil {
			break
		}
		if c, err := e.cfg.Runtime.Load(name); err == nil {
			if s, err := c.State(); err == nil && s.ExitCode != nil {
				rs = s
				break
			}
		}
	}
	return e.exitOf(r.c, rs, r.pid, r.startTime)
}

// procStartTime reads the start time of pid (see runtime.ProcStat).
func procStartTime(pid int) (uint64, error) {
	ps, err := runtime.ReadProcStat(pid)
	return ps.StartTime, err
}

// procParent returns the parent of pid when pid is still the process
// that started at start.
func procParent(pid int, start uint64) (int, error) {
	ps, err := runtime.ReadProcStat(pid)
	if err != nil {
		return 0, err
	}
	if ps.StartTime != start {
		return 0, errors.New("another process")
	}
	return ps.PPid, nil
}
