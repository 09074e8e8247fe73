package supervisor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/scheduler"
	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/api"
)

func (d *Daemon) handleRun(w http.ResponseWriter, r *http.Request) {
	var req api.RunRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := checkProject(req.Project, "run"); err != nil {
		writeError(w, err)
		return
	}
	if _, ok := req.Project.Service(req.Service); !ok {
		writeError(w, badRequest("no such service: %s", req.Service))
		return
	}
	if !req.Attached() {
		s := api.NewStreamWriter(w)
		if res := d.run(r.Context(), req, s, nil); res != nil {
			_ = s.Result(*res)
		}
		return
	}
	// An attached run passes files on the connection: take it over.
	// r.Context() still ends when the daemon stops (it derives from
	// d.bg); that the client left is learnt from the connection.
	s, gone, conn, err := api.Hijack(w)
	if err != nil {
		d.log.Warn("run: taking over the connection", "err", err)
		return
	}
	defer conn.Close()
	if res := d.run(r.Context(), req, s, gone); res != nil {
		_ = s.Result(*res)
	}
}

func randomSuffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// runService is the service a one-off container of req is made from.
func runService(req api.RunRequest) (spec.Service, string) {
	p := req.Project
	base, _ := p.Service(req.Service)
	svc := *base
	name := req.Name
	if name == "" {
		name = fmt.Sprintf("%s-%s-run-%s", p.Name, svc.Name, randomSuffix())
	}
	svc.ContainerName = name
	svc.Replicas = 1
	svc.Restart = spec.RestartPolicy{Condition: "no"}
	if req.Command != nil {
		svc.Command = req.Command
	}
	if req.Entrypoint != nil {
		svc.Entrypoint = req.Entrypoint
	}
	if len(req.Env) > 0 {
		svc.Environment = append(append([]string(nil), svc.Environment...), req.Env...)
	}
	if req.User != "" {
		svc.User = req.User
	}
	if req.Workdir != "" {
		svc.WorkingDir = req.Workdir
	}
	if !req.ServicePorts {
		svc.Ports = nil
	}
	// The request decides the pty of an attached run, whatever the
	// service's tty: a service's pty would swallow a stdin pipe.
	if req.Attached() {
		svc.Tty = req.TTY
		svc.StdinOpen = req.Interactive
	}
	return svc, name
}

// runAttachment is what an attached run passes its client: the
// container's stdin pipe (Interactive without TTY) or its pty master.
type runAttachment struct {
	req    api.RunRequest
	stdinR *os.File // the container's stdin; closed once it is created
	stdinW *os.File // passed to the client, then closed
}

func newRunAttachment(req api.RunRequest) (*runAttachment, error) {
	a := &runAttachment{req: req}
	if req.Interactive && !req.TTY {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		a.stdinR, a.stdinW = r, w
	}
	return a, nil
}

// createOptions gives the container its stdin pipe and pty size.
func (a *runAttachment) createOptions() CreateOptions {
	o := CreateOptions{Stdin: a.stdinR}
	if cs := a.req.ConsoleSize; a.req.TTY && cs != nil && cs.Rows > 0 && cs.Cols > 0 {
		o.ConsoleSize = &specs.Box{Height: uint(cs.Rows), Width: uint(cs.Cols)}
	}
	return o
}

// pass sends the client its file: the stdin pipe's write end or the pty
// master, and closes the daemon's copies, so that the client alone holds
// them (its leaving is end of file, or a hang-up).
func (a *runAttachment) pass(inst *Instance, s *api.StreamWriter) error {
	defer a.close()
	if a.req.TTY {
		console := inst.TakeConsole()
		if console == nil {
			return errors.New("the container has no pty")
		}
		defer console.Close()
		return s.SendFile(api.Message{Attach: &api.Attach{Kind: api.AttachConsole, Container: inst.Name()}}, console)
	}
	if a.stdinW != nil {
		return s.SendFile(api.Message{Attach: &api.Attach{Kind: api.AttachStdin, Container: inst.Name()}}, a.stdinW)
	}
	return nil
}

// close closes what the daemon still holds. Idempotent.
func (a *runAttachment) close() {
	for _, f := range []**os.File{&a.stdinR, &a.stdinW} {
		if *f != nil {
			(*f).Close()
			*f = nil
		}
	}
}

// run makes a one-off container of a service, starts it (and its
// dependencies unless NoDeps) and, unless Detach, streams its output
// until it exits. It returns the Result to send, or nil when there is
// none to send.
//
// daemonCtx ends when the caller is gone or the daemon stops: then the
// container is stopped. For an attached run (gone not nil), daemonCtx
// ends only when the daemon stops, and gone is closed when the client
// has left: the container is stopped only then. A daemon that stops
// leaves an attached run's container running and sends no Result: its
// client, which holds the pty or stdin, carries on and asks the next
// daemon for the exit.
func (d *Daemon) run(daemonCtx context.Context, req api.RunRequest, s *api.StreamWriter, gone <-chan struct{}) *api.Result {
	// ctx ends when the client has gone or the daemon stops: the work
	// for the run stops either way; the end of the wait tells them apart.
	ctx, leave := context.WithCancel(daemonCtx)
	defer leave()
	if gone != nil {
		go func() {
			select {
			case <-gone:
				leave()
			case <-ctx.Done():
			}
		}()
	}
	p := req.Project
	svc, name := runService(req)
	send := func(e api.Event) { _ = s.Event(e) }
	res := &api.Result{Containers: []string{name}}
	fail := func(err error) *api.Result {
		res.Errors = errStrings(err)
		res.ExitCode = 125
		return res
	}
	var att *runAttachment
	if gone != nil {
		var err error
		if att, err = newRunAttachment(req); err != nil {
			return fail(err)
		}
		defer att.close()
	}

	unlock := d.projects.lock(p.Name)
	var errs error
	if !req.NoDeps {
		g, err := scheduler.NewGraph(p)
		if err != nil {
			unlock()
			res.Errors = errStrings(err)
			return res
		}
		var deps []string
		for _, e := range g.Dependencies(svc.Name) {
			deps = append(deps, e.On)
		}
		if len(deps) > 0 {
			errs = d.upLocked(ctx, p, deps, api.UpOptions{}, send, &api.Result{})
		}
	}
	var inst *Instance
	if errs == nil {
		errs = d.projects.update(p.Name, true, func(st *projectState) {
			if st.Project == nil {
				st.Project = p
			}
			if st.OneOff == nil {
				st.OneOff = map[string]bool{}
			}
			st.OneOff[name] = true
		})
		if errs == nil {
			if errs = d.ensureNetworks(p, &scheduler.Plan{Steps: []scheduler.Step{{Action: scheduler.ActionCreate, Service: svc.Name}}}, send); errs == nil {
				var o CreateOptions
				if att != nil {
					o = att.createOptions()
				}
				inst, errs = d.engine.CreateWithOptions(ctx, p, &svc, 1, o)
			}
		}
	}
	unlock()
	if errs != nil {
		return fail(errs)
	}
	if att != nil {
		if err := att.pass(inst, s); err != nil {
			d.removeOneOff(inst, p.Name)
			return fail(fmt.Errorf("container %s: passing its pty or stdin: %w", name, err))
		}
	}

	var (
		fol *logFollower
		fwg sync.WaitGroup
	)
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	if !req.Detach {
		fol = newLogFollower(inst, s, logMark{}, nil) // a new container: all of its log
		fwg.Add(1)
		go func() {
			defer fwg.Done()
			fol.run(fctx)
		}()
	}
	if err := inst.Start(ctx); err != nil {
		stop()
		fwg.Wait()
		if req.Remove {
			d.removeOneOff(inst, p.Name)
		}
		return fail(err)
	}
	send(api.Event{Time: time.Now().UTC(), Project: p.Name, Service: svc.Name, Container: name, Action: "start", Status: "done"})
	if req.Detach {
		return res
	}
	err := inst.WaitCondition(ctx, StateExited)
	stop()
	fwg.Wait()
	if err != nil && gone != nil && !isClosed(gone) && daemonCtx.Err() != nil {
		// The daemon stops: the attached client keeps the session.
		return nil
	}
	if err != nil {
		// The client went away (or the daemon stops): stop the container.
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		_ = inst.Stop(sctx, -1)
		cancel()
		res.Errors = errStrings(err)
	} else {
		fol.pump() // the last lines are in the log before the exit is known
	}
	res.ExitCode = inst.Snapshot().ExitCode
	if req.Remove {
		d.removeOneOff(inst, p.Name)
	}
	return res
}

func (d *Daemon) removeOneOff(i *Instance, project string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := i.Remove(ctx, RemoveOptions{Force: true, Volumes: true}); err != nil {
		d.log.Warn("removing one-off container", "container", i.Name(), "err", err)
		return
	}
	_ = d.projects.update(project, false, func(st *projectState) { delete(st.OneOff, i.Name()) })
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
