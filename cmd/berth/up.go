package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/scheduler"
	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/api"
	"github.com/berth-dev/berth/supervisor/watch"
)

func init() { register(newUpCmd) }

// upFlags are `up`'s flags, Docker Compose's names.
type upFlags struct {
	detach        bool
	wait          bool
	waitTimeout   int
	abortOnExit   bool
	exitCodeFrom  string
	forceRecreate bool
	noRecreate    bool
	renewAnon     bool
	noDeps        bool
	removeOrphans bool
	noStart       bool
	pull          string
	scale         []string
	timeout       secondsFlag
	noColor       bool
	noLogPrefix   bool
	timestamps    bool
	build         bool
	noBuild       bool
	quietBuild    bool
	watch         bool
}

// validate checks the flags against each other, as Compose does.
func (f *upFlags) validate() error {
	if f.exitCodeFrom != "" {
		f.abortOnExit = true
	}
	if f.wait {
		f.detach = true // --wait implies --detach
	}
	switch {
	case f.forceRecreate && f.noRecreate:
		return errors.New("--force-recreate and --no-recreate are incompatible")
	case f.renewAnon && f.noRecreate:
		return errors.New("--renew-anon-volumes and --no-recreate are incompatible")
	case f.detach && f.abortOnExit:
		if f.exitCodeFrom != "" {
			return errors.New("--exit-code-from and --detach (or --wait) are incompatible")
		}
		return errors.New("--abort-on-container-exit and --detach (or --wait) are incompatible")
	case f.noStart && f.wait:
		return errors.New("--no-start and --wait are incompatible")
	case f.noStart && f.abortOnExit:
		return errors.New("--no-start and --abort-on-container-exit are incompatible")
	case f.build && f.noBuild:
		return errors.New("--build and --no-build are incompatible")
	case f.watch && f.noStart:
		return errors.New("--watch and --no-start are incompatible")
	case f.waitTimeout < 0:
		return fmt.Errorf("--wait-timeout: %d is negative", f.waitTimeout)
	}
	switch f.pull {
	case "", "always", "missing", "never":
	default:
		return fmt.Errorf("--pull: unknown policy %q (want always, missing or never)", f.pull)
	}
	_, err := parseScale(f.scale)
	return err
}

// parseScale reads --scale SVC=N flags.
func parseScale(flags []string) (map[string]int, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	m := map[string]int{}
	for _, s := range flags {
		name, num, ok := strings.Cut(s, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--scale %s: want SERVICE=NUMBER", s)
		}
		n, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("--scale %s: %q is not a number", s, num)
		}
		if n < 0 {
			return nil, fmt.Errorf("--scale %s: the number of replicas cannot be negative", s)
		}
		m[name] = n
	}
	return m, nil
}

func newUpCmd(g *globalOptions) *cobra.Command {
	var (
		po projectOptions
		f  upFlags
	)
	cmd := &cobra.Command{
		Use:   "up [OPTIONS] [SERVICE...]",
		Short: "Create and start a project's containers",
		Long: `Create and start a project's containers, creating its networks and volumes.

Without -d, up attaches: every container's output is printed with its name
as a prefix until all of them have stopped. Ctrl-C stops the project
gracefully; a second Ctrl-C kills it.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			p, err := po.load(cmd.Context(), args)
			if err != nil {
				return err
			}
			return runUp(cmd, g, p, args, &f)
		},
	}
	po.addFlags(cmd.Flags())
	fs := cmd.Flags()
	fs.BoolVarP(&f.detach, "detach", "d", false, "run the containers in the background")
	fs.BoolVar(&f.wait, "wait", false, "wait until the containers are running and healthy (implies -d)")
	fs.IntVar(&f.waitTimeout, "wait-timeout", 0, "seconds to wait with --wait (0: no limit)")
	fs.BoolVar(&f.abortOnExit, "abort-on-container-exit", false, "stop every container when one stops")
	fs.StringVar(&f.exitCodeFrom, "exit-code-from", "", "exit with the exit code of this service's container (implies --abort-on-container-exit)")
	fs.BoolVar(&f.forceRecreate, "force-recreate", false, "recreate containers even if nothing changed")
	fs.BoolVar(&f.noRecreate, "no-recreate", false, "keep existing containers even if their configuration changed")
	fs.BoolVarP(&f.renewAnon, "renew-anon-volumes", "V", false, "recreate containers with fresh anonymous volumes instead of their previous ones")
	fs.BoolVar(&f.noDeps, "no-deps", false, "do not start the services the named ones depend on")
	fs.BoolVar(&f.removeOrphans, "remove-orphans", false, "remove containers of services no longer in the stack files")
	fs.BoolVar(&f.noStart, "no-start", false, "create the containers, do not start them")
	fs.StringVar(&f.pull, "pull", "", "pull images: always, missing or never (default: each service's pull_policy)")
	fs.StringArrayVar(&f.scale, "scale", nil, "SERVICE=NUMBER replicas, overriding scale:; repeatable")
	fs.VarP(&f.timeout, "timeout", "t", "seconds to wait for containers being replaced to stop (default: stop_grace_period)")
	fs.BoolVar(&f.noColor, "no-color", false, "no colours in attached output")
	fs.BoolVar(&f.noLogPrefix, "no-log-prefix", false, "no container name before attached output lines")
	fs.BoolVar(&f.timestamps, "timestamps", false, "show timestamps in attached output")
	fs.BoolVar(&f.build, "build", false, "build the images of services with a build: section before starting them")
	fs.BoolVar(&f.noBuild, "no-build", false, "build no image, even when missing or pull_policy is build")
	fs.BoolVar(&f.quietBuild, "quiet-build", false, "print no build output")
	fs.BoolVarP(&f.watch, "watch", "w", false, "watch the develop.watch paths and sync, restart or rebuild as they change (until Ctrl-C)")
	return cmd
}

func runUp(cmd *cobra.Command, g *globalOptions, p *spec.Project, services []string, f *upFlags) error {
	scale, _ := parseScale(f.scale)
	st := &stack{Name: p.Name, Project: p}
	for name := range scale {
		if err := st.checkServices([]string{name}); err != nil {
			return fmt.Errorf("--scale %s: %w", name, err)
		}
	}
	if f.exitCodeFrom != "" {
		if err := st.checkServices([]string{f.exitCodeFrom}); err != nil {
			return fmt.Errorf("--exit-code-from: %w", err)
		}
	}
	if err := st.checkServices(services); err != nil {
		return err
	}
	if f.watch {
		// Bad or missing rules fail before anything is brought up.
		if err := watch.Validate(p, services); err != nil {
			return err
		}
	}

	ctx, cancel := signalContext()
	defer cancel()
	errw := cmd.ErrOrStderr()
	eo := ensureOptions{force: f.build, noBuild: f.noBuild, progress: errw, status: errw}
	if f.quietBuild {
		eo.progress, eo.status = nil, nil
	}
	p, err := ensureImages(ctx, g, p, services, f.noDeps, eo)
	if err != nil {
		if ctx.Err() != nil {
			return &exitError{code: 130, err: errors.New("interrupted")}
		}
		return err
	}
	c, err := dial(g)
	if err != nil {
		return err
	}
	defer c.Close()

	req := api.UpRequest{Project: p, Services: services, Options: api.UpOptions{
		Detach: f.detach, Wait: f.wait, WaitTimeout: time.Duration(f.waitTimeout) * time.Second,
		ForceRecreate: f.forceRecreate, NoRecreate: f.noRecreate, RenewAnonVolumes: f.renewAnon, NoDeps: f.noDeps,
		RemoveOrphans: f.removeOrphans, NoStart: f.noStart, Pull: f.pull, Scale: scale,
		AbortOnExit: f.abortOnExit, ExitCodeFrom: f.exitCodeFrom,
	}}
	req.Options.Timeout = f.timeout.d

	attached := !f.detach && !f.noStart
	var a *attachment
	if attached {
		// Listen for exits before anything starts, so none is missed.
		a = newAttachment(c, p, services, f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		a.since = time.Now()
		a.upServices = services
		if len(services) > 0 && !f.noDeps {
			if g, err := scheduler.NewGraph(p); err == nil {
				if withDeps, err := g.WithDependencies(services); err == nil {
					a.upServices = withDeps
				}
			}
		}
		a.startEvents()
		defer a.close()
	}

	prog := newProgress(errw, isTerminal(errw), "Running")
	res, err := c.Up(ctx, req, prog.Event)
	prog.Done()
	if err != nil {
		if ctx.Err() == nil {
			return err
		}
		if attached {
			// Ctrl-C while the stack comes up stops what came up
			// (another Ctrl-C kills it), as it does once attached.
			sigs := make(chan os.Signal, 2)
			signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(sigs)
			fmt.Fprintln(errw, "Gracefully stopping... (press Ctrl+C again to force)")
			a.stopAll(sigs)
		}
		return &exitError{code: 130, err: errors.New("interrupted")}
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(errw, "berth: warning:", w)
	}
	if err := res.Err(); err != nil {
		return err
	}
	if !attached {
		if f.watch {
			return watchUntilInterrupt(ctx, g, p, services, cmd.OutOrStdout())
		}
		return nil
	}
	cancel() // from here on, signals are the attachment's
	if !f.watch {
		return a.run()
	}
	// up --watch: the watch session runs alongside the attached output
	// until the attachment ends (Ctrl-C, or every container stopped).
	// A watch that fails is reported at once; the containers stay
	// attached.
	wctx, wcancel := context.WithCancel(context.Background())
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		if err := runWatch(wctx, g, p, services, cmd.OutOrStdout()); err != nil && wctx.Err() == nil {
			fmt.Fprintln(errw, "berth: watch:", err)
		}
	}()
	err = a.run()
	wcancel()
	<-wdone
	return err
}

// watchUntilInterrupt runs the watch session of `up -d --watch` until
// Ctrl-C, which ends it cleanly (exit 0; the stack keeps running).
func watchUntilInterrupt(ctx context.Context, g *globalOptions, p *spec.Project, services []string, out io.Writer) error {
	err := runWatch(ctx, g, p, services, out)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// attachment is `up` without -d after the containers started: it prints
// their output and follows their exits until every one has stopped, the
// user interrupts, or (--abort-on-container-exit) the first one stops.
type attachment struct {
	c        *api.Client
	p        *spec.Project
	services []string // the attached services
	// upServices are the services this up brought up (nil: all), the
	// ones Ctrl-C stops.
	upServices []string
	f          *upFlags
	out        io.Writer
	errw       io.Writer

	ctx    context.Context // ends when the attachment ends
	cancel context.CancelFunc
	events chan api.Event

	lp    *logPrinter
	since time.Time // when up began

	mu      sync.Mutex // guards lastLog
	lastLog time.Time
	wg      sync.WaitGroup

	// caughtUp is closed once the log stream has delivered every line
	// logged before it started.
	caughtUp     chan struct{}
	caughtUpOnce sync.Once
}

func newAttachment(c *api.Client, p *spec.Project, services []string, f *upFlags, out, errw io.Writer) *attachment {
	ctx, cancel := context.WithCancel(context.Background())
	attach := services
	if len(attach) == 0 {
		for _, s := range p.Services {
			attach = append(attach, s.Name)
		}
	}
	return &attachment{c: c, p: p, services: attach, f: f, out: out, errw: errw,
		ctx: ctx, cancel: cancel, events: make(chan api.Event, 256), caughtUp: make(chan struct{})}
}

// startEvents subscribes to the project's events.
func (a *attachment) startEvents() {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		_ = a.c.Events(a.ctx, a.p.Name, func(ev api.Event) error {
			select {
			case a.events <- ev:
			case <-a.ctx.Done():
			}
			return nil
		})
	}()
}

func (a *attachment) close() {
	a.cancel()
	a.wg.Wait()
}

// attached reports whether a container of service is attached.
func (a *attachment) attached(service string) bool {
	return slices.Contains(a.services, service)
}

func (a *attachment) run() error {
	psAt := time.Now()
	cs, err := a.c.Ps(a.ctx, a.p.Name, true)
	if err != nil {
		return err
	}
	cs = filterPs(cs, a.services, nil)
	// One-off containers of `run` are not attached.
	cs = slices.DeleteFunc(cs, func(c api.ContainerSummary) bool {
		return strings.HasPrefix(c.Name, c.Project+"-"+c.Service+"-run-")
	})
	names := make([]string, 0, len(cs))
	for _, c := range cs {
		names = append(names, shortName(c.Project, c.Service, c.Name))
	}
	a.lp = newLogPrinter(a.out, useColor(a.out, a.f.noColor), names)
	a.lp.noPrefix, a.lp.timestamps = a.f.noLogPrefix, a.f.timestamps
	fmt.Fprintf(a.out, "Attaching to %s\n", strings.Join(names, ", "))

	// Output since up began: all of what the containers this up started
	// printed, and only new lines of those it left running.
	logsDone := make(chan struct{})
	go func() {
		defer close(logsDone)
		err := a.c.Logs(a.ctx, api.LogsRequest{Project: a.p.Name, Services: a.services, Follow: true, Tail: -1, Since: a.since,
			CaughtUp: func() { a.caughtUpOnce.Do(func() { close(a.caughtUp) }) }},
			func(l api.LogLine) error {
				a.mu.Lock()
				a.lastLog = time.Now()
				a.mu.Unlock()
				a.lp.Line(shortName(a.p.Name, l.Service, l.Container), l.Time, l.Log)
				return nil
			})
		if err != nil && a.ctx.Err() == nil {
			fmt.Fprintln(a.errw, "berth: logs:", err)
		}
	}()

	// running: attached containers that have not stopped for good.
	running := map[string]bool{}
	var exited []api.ContainerSummary // stopped already: their exit events came before ps
	for _, c := range cs {
		if c.State == "running" || c.State == "restarting" || c.State == "created" || c.State == "paused" {
			running[c.Name] = true
		} else {
			a.quiet()
			a.lp.Note(shortName(c.Project, c.Service, c.Name), fmt.Sprintf("exited with code %d", c.ExitCode))
			exited = append(exited, c)
		}
	}
	exitCode := 0
	codeFromSet := false
	for _, c := range exited {
		switch {
		case a.f.exitCodeFrom == c.Service:
			exitCode, codeFromSet = c.ExitCode, true
		case a.f.exitCodeFrom == "" && a.f.abortOnExit && exitCode == 0:
			exitCode = c.ExitCode
		}
	}

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	finish := func(code int) error {
		// Lines still on their way (logs and events come on different
		// connections) get a moment to arrive.
		time.Sleep(logQuiet)
		a.quiet()
		a.cancel()
		<-logsDone
		if code != 0 {
			return &exitError{code: code}
		}
		return nil
	}
	if len(running) == 0 {
		return finish(exitCode)
	}
	// Once the stack is being stopped (Ctrl-C, or a container exit with
	// --abort-on-container-exit), the exits that follow are still noted,
	// for a bounded time.
	var (
		stopping bool
		drain    <-chan time.Time
	)
	stop := func(note string) {
		fmt.Fprintln(a.errw, note)
		a.stopAll(sigs)
		stopping = true
		drain = time.After(3 * time.Second)
	}
	if a.f.abortOnExit && len(exited) > 0 {
		// A container stopped before we looked (a quick one): its exit
		// event is behind us, so the abort starts here.
		stop("Aborting on container exit...")
	}
	for {
		select {
		case <-sigs:
			stop("Gracefully stopping... (press Ctrl+C again to force)")
			exitCode = 130
		case <-drain:
			if a.f.exitCodeFrom != "" && !codeFromSet && exitCode != 130 {
				exitCode = a.exitCodeOf(a.f.exitCodeFrom, exitCode)
			}
			return finish(exitCode)
		case ev := <-a.events:
			if !a.attached(ev.Service) || ev.Time.Before(psAt) || strings.HasPrefix(ev.Container, a.p.Name+"-"+ev.Service+"-run-") {
				continue // not ours, or already seen in ps
			}
			switch ev.Action {
			case "start", "restart":
				running[ev.Container] = true
				continue
			case "die":
			default:
				continue
			}
			a.quiet()
			a.lp.Note(shortName(a.p.Name, ev.Service, ev.Container), fmt.Sprintf("exited with code %d", ev.ExitCode))
			if ev.Status != "restarting" || stopping {
				delete(running, ev.Container)
			}
			if a.f.exitCodeFrom == ev.Service && exitCode != 130 {
				exitCode, codeFromSet = ev.ExitCode, true
			}
			if a.f.abortOnExit && !stopping {
				if a.f.exitCodeFrom == "" {
					exitCode = ev.ExitCode
				}
				stop("Aborting on container exit...")
			}
			if len(running) == 0 {
				return finish(exitCode)
			}
		}
	}
}

// quiet waits until no log line came for logQuiet (at most a second),
// so that a container's last lines come before the note of its exit: logs
// and events arrive on different connections. When the logs are already
// quiet it returns at once.
func (a *attachment) quiet() {
	// First the lines logged before the stream began: a container that
	// already exited printed everything it will (bounded, should the
	// daemon be an older one that sends no catch-up mark).
	select {
	case <-a.caughtUp:
	case <-a.ctx.Done():
	case <-time.After(5 * time.Second):
	}
	deadline := time.Now().Add(time.Second)
	for {
		a.mu.Lock()
		since := time.Since(a.lastLog)
		a.mu.Unlock()
		if since >= logQuiet || time.Now().After(deadline) {
			return
		}
		time.Sleep(logQuiet - since)
	}
}

const logQuiet = 100 * time.Millisecond

// exitCodeOf returns the exit code of service's container after it stopped.
func (a *attachment) exitCodeOf(service string, def int) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := a.c.Ps(ctx, a.p.Name, true)
	if err != nil {
		return def
	}
	for _, c := range cs {
		if c.Service == service {
			return c.ExitCode
		}
	}
	return def
}

// stopAll stops the project's containers in reverse dependency order;
// another signal meanwhile kills them instead.
func (a *attachment) stopAll(sigs <-chan os.Signal) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		prog := newProgress(a.errw, isTerminal(a.errw), "Stopping")
		defer prog.Done()
		req := api.ProjectRequest{Services: a.upServices, Timeout: a.f.timeout.d}
		if err := projectAction(ctx, a.c, a.p.Name, api.ActionStop, req, prog, a.errw); err != nil && ctx.Err() == nil {
			fmt.Fprintln(a.errw, "berth:", err)
		}
	}()
	select {
	case <-stopped:
	case <-sigs:
		cancel()
		<-stopped
		a.killAll()
	}
}

func (a *attachment) killAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := a.c.Ps(ctx, a.p.Name, false)
	if err != nil {
		fmt.Fprintln(a.errw, "berth:", err)
		return
	}
	prog := newProgress(a.errw, isTerminal(a.errw), "Killing")
	defer prog.Done()
	if err := containerAction(ctx, a.c, cs, api.ActionKill, api.ContainerRequest{Signal: "SIGKILL"}, prog); err != nil {
		fmt.Fprintln(a.errw, "berth:", err)
	}
}

// containerAction runs action on every container of cs at once (at most
// actionLimit at a time), reporting progress. It returns every failure,
// each naming its container.
func containerAction(ctx context.Context, c *api.Client, cs []api.ContainerSummary, action string, req api.ContainerRequest, prog progress) error {
	var wg sync.WaitGroup
	sem := make(chan struct{}, actionLimit)
	errs := make([]error, len(cs))
	for i, ct := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			prog.Event(api.Event{Container: ct.Name, Service: ct.Service, Action: action, Status: "working"})
			if _, err := c.Container(ctx, ct.Name, action, req); err != nil {
				prog.Event(api.Event{Container: ct.Name, Service: ct.Service, Action: action, Status: "error", Error: err.Error()})
				errs[i] = fmt.Errorf("container %s: %w", ct.Name, err)
				return
			}
			prog.Event(api.Event{Container: ct.Name, Service: ct.Service, Action: action, Status: "done"})
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

const actionLimit = 16
