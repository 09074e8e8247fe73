package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/image"
	"golang.org/x/sys/unix"
)

// execResult is how a process run inside the container ended.
type execResult struct {
	Code     int
	Output   string // stdout and stderr, capped at healthOutputMax
	TimedOut bool
}

// execIn runs args inside the container of r with the container's process
// settings (hook, when given, overrides user, working dir and adds
// environment), capturing its output. The process is killed when ctx ends.
func (i *Instance) execIn(ctx context.Context, r *run, args []string, hook *spec.Hook) (execResult, error) {
	p := r.c.ExecProcess(args...)
	if hook != nil {
		if hook.WorkingDir != "" {
			p.Cwd = hook.WorkingDir
		}
		p.Env = append(p.Env, hook.Environment...)
		if hook.User != "" {
			if uid, gid, ok := numericUser(hook.User); ok {
				p.User.UID, p.User.GID = uid, gid
				p.User.Username = ""
			} else {
				p.User.Username = hook.User
			}
		}
	}
	rd, wr, err := os.Pipe()
	if err != nil {
		return execResult{}, err
	}
	proc, err := r.c.Exec(ctx, p, execOpts(wr))
	wr.Close()
	if err != nil {
		rd.Close()
		return execResult{}, err
	}
	outc := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(rd, healthOutputMax))
		_, _ = io.Copy(io.Discard, rd)
		rd.Close()
		outc <- string(b)
	}()
	type waitRes struct {
		code int
		err  error
	}
	wc := make(chan waitRes, 1)
	go func() {
		es, err := proc.Wait(context.Background())
		wc <- waitRes{es.Code, err}
	}()
	res := execResult{}
	var wr2 waitRes
	select {
	case wr2 = <-wc:
	case <-ctx.Done():
		_ = proc.Signal(syscall.SIGKILL)
		wr2 = <-wc
		res.TimedOut = true
	}
	// The output pipe closes when every holder exits; a background child
	// of the probe may keep it open, so do not wait long for it.
	select {
	case res.Output = <-outc:
	case <-time.After(100 * time.Millisecond):
		rd.Close()
	}
	if wr2.err != nil && !res.TimedOut {
		return res, wr2.err
	}
	res.Code = wr2.code
	return res, nil
}

func numericUser(u string) (uint32, uint32, bool) {
	us, gs, _ := strings.Cut(u, ":")
	uid, err := strconv.ParseUint(us, 10, 32)
	if err != nil {
		return 0, 0, false
	}
	gid := uint64(0)
	if gs != "" {
		if gid, err = strconv.ParseUint(gs, 10, 32); err != nil {
			return 0, 0, false
		}
	}
	return uint32(uid), uint32(gid), true
}

// probeArgs turns a health check test into the command to exec.
func probeArgs(test []string) ([]string, error) {
	if len(test) == 0 {
		return nil, errors.New("empty health check test")
	}
	switch test[0] {
	case "CMD":
		if len(test) < 2 {
			return nil, errors.New("health check CMD without a command")
		}
		return test[1:], nil
	case "CMD-SHELL":
		if len(test) < 2 {
			return nil, errors.New("health check CMD-SHELL without a command")
		}
		return []string{"/bin/sh", "-c", strings.Join(test[1:], " ")}, nil
	default:
		// Compose accepts a plain string as CMD-SHELL.
		return []string{"/bin/sh", "-c", strings.Join(test, " ")}, nil
	}
}

// scheduleProbe runs the next health probe of r after d, on a timer (no
// goroutine waits between probes).
func (i *Instance) scheduleProbe(r *run, d time.Duration) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if r.over || i.run != r || i.health == nil {
		return
	}
	r.healthTimer = time.AfterFunc(d, func() { i.probe(r) })
}

// probe runs one health probe and records its result.
func (i *Instance) probe(r *run) {
	i.mu.Lock()
	if r.over || i.run != r || i.health == nil || i.st.Info.State == StatePaused {
		hs := i.health
		i.mu.Unlock()
		if hs != nil && !r.over {
			i.scheduleProbe(r, hs.NextProbe(time.Now()))
		}
		return
	}
	hc := NewHealthConfig(i.st.Service.Healthcheck)
	i.mu.Unlock()
	if hc == nil {
		return
	}
	res := ProbeResult{Start: time.Now().UTC()}
	args, err := probeArgs(hc.Test)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), hc.Timeout)
		var er execResult
		er, err = i.execIn(ctx, r, args, nil)
		cancel()
		res.Output = er.Output
		res.ExitCode = er.Code
		if er.TimedOut {
			res.ExitCode = -1
			res.Output = fmt.Sprintf("health check exceeded timeout (%s)", hc.Timeout)
		}
	}
	if err != nil {
		res.ExitCode = -1
		res.Output = err.Error()
	}
	res.End = time.Now().UTC()

	i.mu.Lock()
	if r.over || i.run != r || i.health == nil {
		i.mu.Unlock()
		return
	}
	changed := i.health.Record(res)
	status := i.health.Status()
	next := i.health.NextProbe(time.Now())
	i.st.Info.Health = status
	i.st.Info.HealthLog = i.health.Log()
	var notify func()
	restart := false
	if changed {
		_ = i.saveLocked(false)
		notify = i.changedLocked()
		if status == HealthUnhealthy {
			restart = i.unhealthyRestartLocked(r)
		}
	}
	grace := i.stopGraceLocked()
	sig := i.stopSignalLocked()
	i.mu.Unlock()
	if changed {
		notify()
		i.emit("health_status", status, strings.TrimSpace(res.Output), res.ExitCode)
	}
	if restart {
		i.emit("restart", StateRunning, "unhealthy: restarting (x-berth restart_on_unhealthy)", 0)
		go func() {
			_ = i.terminate(context.Background(), r, sig, grace)
		}()
		return
	}
	i.scheduleProbe(r, next)
}

// unhealthyRestartLocked decides whether x-berth restart_on_unhealthy
// restarts the container now, and marks the run if so.
func (i *Instance) unhealthyRestartLocked(r *run) bool {
	ext := i.st.Service.Extensions
	if ext == nil || !ext.RestartOnUnhealthy || i.st.Info.StoppedByUser {
		return false
	}
	if ext.UnhealthyRestartLimit > 0 && i.st.UnhealthyRestarts >= ext.UnhealthyRestartLimit {
		return false
	}
	i.st.UnhealthyRestarts++
	r.unhealthyKill = true
	return true
}

// runHooks runs post_start or pre_stop hooks in order; a failing hook is
// reported as an event and ends the sequence.
func (i *Instance) runHooks(ctx context.Context, r *run, hooks []spec.Hook, kind string) {
	for n := range hooks {
		h := &hooks[n]
		if len(h.Command) == 0 {
			continue
		}
		res, err := i.execIn(ctx, r, h.Command, h)
		msg := ""
		switch {
		case err != nil:
			msg = fmt.Sprintf("%s hook %d: %v", kind, n+1, err)
		case res.TimedOut:
			msg = fmt.Sprintf("%s hook %d: killed at timeout", kind, n+1)
		case res.Code != 0:
			msg = fmt.Sprintf("%s hook %d: exit code %d: %s", kind, n+1, res.Code, strings.TrimSpace(res.Output))
		}
		if msg != "" {
			i.emit("exec_die", "", msg, res.Code)
			return
		}
		i.emit("exec_die", "", fmt.Sprintf("%s hook %d: done", kind, n+1), 0)
	}
}

// healthFromImage converts an image's HEALTHCHECK.
func healthFromImage(h *image.Healthcheck) *spec.Healthcheck {
	if h == nil || len(h.Test) == 0 {
		return nil
	}
	d := func(v time.Duration) *spec.Duration {
		if v <= 0 {
			return nil
		}
		x := spec.Duration(v)
		return &x
	}
	out := &spec.Healthcheck{Test: h.Test, Interval: d(h.Interval), Timeout: d(h.Timeout),
		StartPeriod: d(h.StartPeriod), StartInterval: d(h.StartInterval)}
	if h.Retries > 0 {
		r := h.Retries
		out.Retries = &r
	}
	return out
}

// parseSignal turns "SIGTERM", "TERM", "15" or "SIGRTMIN+3" into a signal.
func parseSignal(s string) (syscall.Signal, error) {
	if s == "" {
		return 0, errors.New("no signal")
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	const sigrtmin, sigrtmax = 34, 64
	if rest, ok := strings.CutPrefix(name, "SIGRTMIN"); ok {
		n := 0
		if rest != "" {
			v, err := strconv.Atoi(strings.TrimPrefix(rest, "+"))
			if err != nil || v < 0 {
				return 0, fmt.Errorf("invalid signal %q", s)
			}
			n = v
		}
		if sigrtmin+n > sigrtmax {
			return 0, fmt.Errorf("invalid signal %q", s)
		}
		return syscall.Signal(sigrtmin + n), nil
	}
	if rest, ok := strings.CutPrefix(name, "SIGRTMAX"); ok {
		n := 0
		if rest != "" {
			v, err := strconv.Atoi(strings.TrimPrefix(rest, "-"))
			if err != nil || v < 0 {
				return 0, fmt.Errorf("invalid signal %q", s)
			}
			n = v
		}
		if sigrtmax-n < sigrtmin {
			return 0, fmt.Errorf("invalid signal %q", s)
		}
		return syscall.Signal(sigrtmax - n), nil
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}
