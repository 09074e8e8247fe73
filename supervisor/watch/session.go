package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/spec"
)

// Actions of a develop.watch rule.
const (
	ActionSync        = "sync"
	ActionSyncRestart = "sync+restart"
	ActionSyncExec    = "sync+exec"
	ActionRestart     = "restart"
	ActionRebuild     = "rebuild"
)

// Sentinel errors.
var (
	// ErrNothingToWatch: none of the selected services has develop.watch.
	ErrNothingToWatch = errors.New("none of the selected services has develop.watch rules")
	// ErrNoBuilder: rebuild of a service with build: needs a builder.
	ErrNoBuilder = errors.New("rebuild needs a builder (supervisor/build), and none was given")
)

// Controller is what a session needs of the running stack. The real one
// (NewDaemonController) uses the daemon API and the runtime; tests use
// fakes.
type Controller interface {
	// Targets returns the running containers of service, sorted by name.
	Targets(ctx context.Context, service string) ([]Target, error)
	// Restart restarts one container and returns once it runs again.
	Restart(ctx context.Context, container string) error
	// Exec runs cmd in a running container, its output to out, and fails
	// on a non-zero exit.
	Exec(ctx context.Context, container string, cmd []string, out io.Writer) error
	// Rebuild rebuilds or re-pulls the service's image and recreates its
	// containers.
	Rebuild(ctx context.Context, service string) error
	// Starts calls fn each time a container of the project starts
	// (started, restarted or recreated) until ctx ends; it returns nil
	// then. container "" stands for every container of the service (when
	// starts may have been missed). fn runs on Starts's goroutine.
	Starts(ctx context.Context, fn func(service, container string)) error
}

// Options configure a Session.
type Options struct {
	Project *spec.Project
	// Services to watch; empty: every service with develop.watch.
	Services   []string
	Controller Controller
	// Out receives one line per batch and the errors (required).
	Out io.Writer
	// Quiet and MaxDelay: batching (zero: DefaultQuiet, DefaultMaxDelay).
	Quiet, MaxDelay time.Duration
	// Ready, if set, is called once every path is watched and the
	// initial syncs are done.
	Ready func()
}

// rule is one develop.watch entry of one service.
type rule struct {
	service string
	index   int
	spec.WatchRule
	m    *Matcher
	name string // "develop.watch[1] (./src → /app)"
}

func (r *rule) syncs() bool {
	return r.Action == ActionSync || r.Action == ActionSyncRestart || r.Action == ActionSyncExec
}

// Session runs the watch rules of a project.
type Session struct {
	opts  Options
	rules []*rule

	// mu serializes actions per service (a sync and the restart that
	// follows it are not interleaved with another rule's batch or a
	// resync after a start). Guards nothing else.
	mu    sync.Mutex
	locks map[string]*sync.Mutex

	outMu sync.Mutex // one line at a time on Out
}

// NewSession checks the rules and builds their matchers; it starts
// nothing.
func NewSession(opts Options) (*Session, error) {
	if opts.Project == nil || opts.Controller == nil || opts.Out == nil {
		return nil, errors.New("watch: Project, Controller and Out are required")
	}
	s := &Session{opts: opts, locks: map[string]*sync.Mutex{}}
	names := opts.Services
	if len(names) == 0 {
		for _, svc := range opts.Project.Services {
			names = append(names, svc.Name)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		svc, ok := opts.Project.Service(n)
		if !ok {
			return nil, fmt.Errorf("no such service: %q", n)
		}
		if svc.Develop == nil {
			continue
		}
		for i, wr := range svc.Develop.Watch {
			r, err := newRule(opts.Project, svc, i, wr)
			if err != nil {
				return nil, err
			}
			s.rules = append(s.rules, r)
		}
	}
	if len(s.rules) == 0 {
		return nil, ErrNothingToWatch
	}
	return s, nil
}

func newRule(p *spec.Project, svc *spec.Service, i int, wr spec.WatchRule) (*rule, error) {
	r := &rule{service: svc.Name, index: i, WatchRule: wr}
	shown := wr.Path
	if rel, err := filepath.Rel(p.WorkingDir, wr.Path); err == nil && p.WorkingDir != "" && !strings.HasPrefix(rel, "..") {
		shown = "./" + filepath.ToSlash(rel)
		if rel == "." {
			shown = "."
		}
	}
	if wr.Target != "" {
		r.name = fmt.Sprintf("develop.watch[%d] (%s → %s)", i, shown, wr.Target)
	} else {
		r.name = fmt.Sprintf("develop.watch[%d] (%s)", i, shown)
	}
	fail := func(format string, a ...any) (*rule, error) {
		return nil, fmt.Errorf("%s: %s: %s", svc.Name, r.name, fmt.Sprintf(format, a...))
	}
	switch wr.Action {
	case ActionSync, ActionSyncRestart, ActionSyncExec, ActionRestart, ActionRebuild:
	default:
		return fail("unknown action %q (sync, sync+restart, sync+exec, restart, rebuild)", wr.Action)
	}
	if wr.Path == "" || !filepath.IsAbs(wr.Path) {
		return fail("path %q must be set (absolute after loading)", wr.Path)
	}
	if r.syncs() && (wr.Target == "" || !strings.HasPrefix(wr.Target, "/")) {
		return fail("action %s needs an absolute target, got %q", wr.Action, wr.Target)
	}
	if wr.Action == ActionSyncExec && len(wr.ExecCommand) == 0 {
		return fail("action sync+exec needs exec.command")
	}
	m, err := NewMatcher(wr.Ignore, wr.Include)
	if err != nil {
		return fail("%v", err)
	}
	// The .dockerignore of the build context applies when the watched
	// path lies in it; without build:, the one in the watched directory.
	ctxDir := wr.Path
	if svc.Build != nil && svc.Build.Context != "" {
		ctxDir = svc.Build.Context
	}
	pats, err := ReadDockerignore(ctxDir)
	if err != nil {
		return fail("%v", err)
	}
	if err := m.AddContextIgnore(ctxDir, wr.Path, pats); err != nil {
		return fail("%v", err)
	}
	r.m = m
	return r, nil
}

func (s *Session) serviceLock(svc string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.locks[svc]
	if !ok {
		l = &sync.Mutex{}
		s.locks[svc] = l
	}
	return l
}

func (s *Session) printf(format string, a ...any) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	fmt.Fprintf(s.opts.Out, format+"\n", a...)
}

func (s *Session) ruleErr(r *rule, err error) {
	s.printf("%s: %s: %v", r.service, r.name, err)
}

// Run watches until ctx ends and returns nil then; it returns an error
// early only when a watched path cannot be watched. Every goroutine it
// starts has ended when it returns.
func (s *Session) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	watchers := make([]*Watcher, len(s.rules))
	for i, r := range s.rules {
		w, err := NewWatcher(r.Path, r.m, s.opts.Quiet, s.opts.MaxDelay)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", r.service, r.name, err)
		}
		watchers[i] = w
	}

	var wg sync.WaitGroup
	errc := make(chan error, len(s.rules)+1)
	var readyWG sync.WaitGroup
	readyWG.Add(len(s.rules))
	for i, r := range s.rules {
		wg.Add(1)
		go func() {
			defer wg.Done()
			once := sync.OnceFunc(readyWG.Done)
			defer once()
			err := watchers[i].Run(ctx, once, func(b Batch) { s.handle(ctx, r, b) })
			if err != nil {
				errc <- fmt.Errorf("%s: %s: %w", r.service, r.name, err)
				cancel()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := s.opts.Controller.Starts(ctx, func(service, container string) {
			if service != "" {
				s.resync(ctx, service, container)
			}
		})
		// Without events, watching still works; restarts just are not
		// followed by a resync. Say so once.
		if err != nil && ctx.Err() == nil {
			s.printf("watch: daemon events unavailable (%v): files are not synced again after restarts", err)
		}
	}()

	// Initial syncs once the watches are in place (nothing is missed
	// between the two).
	readyWG.Wait()
	for _, r := range s.rules {
		if r.InitialSync && r.syncs() {
			s.fullSync(ctx, r, "")
		}
	}
	if s.opts.Ready != nil && ctx.Err() == nil {
		s.opts.Ready()
	}
	<-ctx.Done()
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// resync syncs every sync rule of service into container again, after it
// started (its files may be new: recreated from the image).
func (s *Session) resync(ctx context.Context, service, container string) {
	for _, r := range s.rules {
		if r.service == service && r.syncs() {
			s.fullSync(ctx, r, container)
		}
	}
}

// fullSync syncs the whole path of r into the service's containers (only
// container, when not ""), skipping files that are already equal.
func (s *Session) fullSync(ctx context.Context, r *rule, container string) {
	l := s.serviceLock(r.service)
	l.Lock()
	defer l.Unlock()
	targets, err := s.opts.Controller.Targets(ctx, r.service)
	if err != nil {
		s.ruleErr(r, err)
		return
	}
	var res SyncResult
	var errs []error
	for _, t := range targets {
		if container != "" && t.Container != container {
			continue
		}
		sr, err := t.Sync(r.Path, r.Target, []string{"."}, r.m, true)
		res.add(sr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.Container, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		s.ruleErr(r, err)
	}
	if res.Written+res.Deleted > 0 {
		s.printf("%s: %s", r.service, describe(res, r.Target))
	}
}

// handle carries out r's action for one batch.
func (s *Session) handle(ctx context.Context, r *rule, b Batch) {
	l := s.serviceLock(r.service)
	l.Lock()
	defer l.Unlock()
	if ctx.Err() != nil {
		return
	}
	c := s.opts.Controller
	switch r.Action {
	case ActionRestart:
		s.restartAll(ctx, r)
		return
	case ActionRebuild:
		if err := c.Rebuild(ctx, r.service); err != nil {
			s.ruleErr(r, err)
			return
		}
		s.printf("%s: rebuilt and recreated", r.service)
		return
	}
	targets, err := c.Targets(ctx, r.service)
	if err != nil {
		s.ruleErr(r, err)
		return
	}
	if len(targets) == 0 {
		s.printf("%s: not running; changes are synced when it starts", r.service)
		return
	}
	paths := b.Paths
	if b.Full {
		paths = []string{"."}
	}
	var res SyncResult
	var errs []error
	for _, t := range targets {
		sr, err := t.Sync(r.Path, r.Target, paths, r.m, b.Full)
		res.add(sr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.Container, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		s.ruleErr(r, err)
	}
	s.printf("%s: %s", r.service, describe(res, r.Target))
	switch r.Action {
	case ActionSyncRestart:
		s.restartAll(ctx, r)
	case ActionSyncExec:
		for _, t := range targets {
			pw := &prefixWriter{s: s, prefix: r.service + ": "}
			err := c.Exec(ctx, t.Container, r.ExecCommand, pw)
			pw.Flush()
			if err != nil {
				s.ruleErr(r, fmt.Errorf("exec %q in %s: %w", strings.Join(r.ExecCommand, " "), t.Container, err))
				continue
			}
			s.printf("%s: ran %s", r.service, strings.Join(r.ExecCommand, " "))
		}
	}
}

func (s *Session) restartAll(ctx context.Context, r *rule) {
	targets, err := s.opts.Controller.Targets(ctx, r.service)
	if err != nil {
		s.ruleErr(r, err)
		return
	}
	n := 0
	for _, t := range targets {
		if err := s.opts.Controller.Restart(ctx, t.Container); err != nil {
			s.ruleErr(r, fmt.Errorf("restart %s: %w", t.Container, err))
			continue
		}
		n++
	}
	if n > 0 {
		s.printf("%s: restarted", r.service)
	}
}

// describe says what a sync did: "synced 3 files to /app, deleted 1".
func describe(r SyncResult, target string) string {
	var parts []string
	if r.Written > 0 || (r.Deleted == 0 && r.Dirs == 0) {
		parts = append(parts, fmt.Sprintf("synced %d %s to %s", r.Written, plural(r.Written, "file", "files"), target))
	} else if r.Dirs > 0 {
		parts = append(parts, fmt.Sprintf("made %d %s in %s", r.Dirs, plural(r.Dirs, "directory", "directories"), target))
	}
	if r.Deleted > 0 {
		if len(parts) == 0 {
			parts = append(parts, fmt.Sprintf("deleted %d %s in %s", r.Deleted, plural(r.Deleted, "path", "paths"), target))
		} else {
			parts = append(parts, fmt.Sprintf("deleted %d", r.Deleted))
		}
	}
	return strings.Join(parts, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// prefixWriter writes whole lines to the session's output with a prefix.
type prefixWriter struct {
	s      *Session
	prefix string
	buf    []byte
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			break
		}
		w.s.printf("%s%s", w.prefix, w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// Flush writes a last unterminated line.
func (w *prefixWriter) Flush() {
	if len(w.buf) > 0 {
		w.s.printf("%s%s", w.prefix, w.buf)
		w.buf = nil
	}
}

// Validate checks the develop.watch rules of services (every service when
// empty) of p as NewSession does, without a controller: ErrNothingToWatch
// when none has rules, or the first bad rule.
func Validate(p *spec.Project, services []string) error {
	_, err := NewSession(Options{Project: p, Services: services, Controller: nopController{}, Out: io.Discard})
	return err
}

// nopController is the controller of Validate; it is never called.
type nopController struct{}

func (nopController) Targets(context.Context, string) ([]Target, error) { return nil, nil }
func (nopController) Restart(context.Context, string) error             { return nil }
func (nopController) Exec(context.Context, string, []string, io.Writer) error {
	return nil
}
func (nopController) Rebuild(context.Context, string) error { return nil }
func (nopController) Starts(ctx context.Context, _ func(string, string)) error {
	<-ctx.Done()
	return nil
}
