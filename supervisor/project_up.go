package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/netstack"
	"github.com/berth-dev/berth/scheduler"
	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/api"
	"github.com/berth-dev/berth/supervisor/image"
	"github.com/berth-dev/berth/volumes"
	"github.com/hashicorp/go-multierror"
)

// planLimit bounds the create/start/stop/remove steps run at once.
const planLimit = 8

// planExecutor carries out scheduler steps on the engine.
type planExecutor struct {
	d *Daemon
	p *spec.Project // nil for a down without project
	// timeout for stops; negative: each service's stop_grace_period.
	timeout time.Duration
	// removeVolumes also removes anonymous volumes (down -v).
	removeVolumes bool
	// renewAnon gives created containers fresh anonymous volumes (up -V).
	renewAnon bool
	// hashes are the services' spec.ServiceHash, when the plan was made
	// from them (up): creates reuse them instead of reading the files
	// they cover again.
	hashes map[string]string
	// failed holds services found unable to start before the plan ran
	// (a host port in use): their create and start steps fail with it,
	// so nothing of them is made and their dependents are not started,
	// while the rest of the plan runs and reports its own errors.
	failed map[string]error
	send   func(api.Event)
}

func (x *planExecutor) event(s scheduler.Step, status string, err error) {
	if x.send == nil {
		return
	}
	e := api.Event{Time: time.Now().UTC(), Service: s.Service, Container: s.Container,
		Action: string(s.Action), Status: status, Message: s.Cause}
	if x.p != nil {
		e.Project = x.p.Name
	}
	if err != nil {
		e.Error = err.Error()
	}
	x.send(e)
}

func (x *planExecutor) Do(ctx context.Context, s scheduler.Step) error {
	x.event(s, "working", nil)
	err := x.do(ctx, s)
	if err != nil {
		x.event(s, "error", err)
		return err
	}
	x.event(s, "done", nil)
	return nil
}

func (x *planExecutor) do(ctx context.Context, s scheduler.Step) error {
	if err := x.failed[s.Service]; err != nil && (s.Action == scheduler.ActionCreate || s.Action == scheduler.ActionStart) {
		return err
	}
	e := x.d.engine
	switch s.Action {
	case scheduler.ActionCreate:
		if x.p == nil {
			return fmt.Errorf("create %s: no project", s.Container)
		}
		svc, ok := x.p.Service(s.Service)
		if !ok {
			return fmt.Errorf("create %s: no service %q", s.Container, s.Service)
		}
		_, err := e.CreateWithOptions(ctx, x.p, svc, s.Number, CreateOptions{RenewAnonVolumes: x.renewAnon, ConfigHash: x.hashes[svc.Name]})
		return err
	case scheduler.ActionStart:
		i, ok := e.Instance(s.Container)
		if !ok {
			return fmt.Errorf("start %s: %w", s.Container, ErrNotFound)
		}
		return i.Start(ctx)
	case scheduler.ActionStop:
		i, ok := e.Instance(s.Container)
		if !ok {
			return nil
		}
		return i.Stop(ctx, x.timeout)
	case scheduler.ActionRemove:
		i, ok := e.Instance(s.Container)
		if !ok {
			return nil
		}
		return i.Remove(ctx, RemoveOptions{Force: true, Volumes: x.removeVolumes})
	}
	return fmt.Errorf("unknown step action %q", s.Action)
}

func (x *planExecutor) WaitCondition(ctx context.Context, w scheduler.Wait) error {
	i, ok := x.d.engine.Instance(w.Container)
	if !ok {
		return fmt.Errorf("container %s: %w", w.Container, ErrNotFound)
	}
	cond := string(w.Condition)
	if w.Condition == scheduler.ConditionCompleted {
		cond = ConditionCompletedSuccessfully
	}
	return i.WaitCondition(ctx, cond)
}

// observed lists the project's containers for the planner, without the
// one-off (run) containers.
func (d *Daemon) observed(project string, oneOff map[string]bool) []scheduler.Observed {
	var out []scheduler.Observed
	for _, i := range d.engine.Instances(project) {
		c := i.Snapshot()
		if oneOff[c.Name] {
			continue
		}
		out = append(out, scheduler.Observed{Project: c.Project, Service: c.Service, Number: c.Number,
			Name: c.Name, ConfigHash: c.ConfigHash, ImageDigest: c.ImageDigest, State: c.State})
	}
	return out
}

// errStrings flattens err (a multierror or joined errors) into sorted lines.
func errStrings(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	var me *multierror.Error
	if errors.As(err, &me) {
		for _, e := range me.Errors {
			out = append(out, errStrings(e)...)
		}
	} else if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, errStrings(e)...)
		}
	} else {
		out = append(out, err.Error())
	}
	sort.Strings(out)
	return out
}

// checkProject rejects a request for op without a valid project.
func checkProject(p *spec.Project, op string) error {
	if p == nil {
		return badRequest("%s: no project", op)
	}
	if err := validProjectName(p.Name); err != nil {
		return badRequest("%v", err)
	}
	return nil
}

func (d *Daemon) handleUp(w http.ResponseWriter, r *http.Request) {
	var req api.UpRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := checkProject(req.Project, "up"); err != nil {
		writeError(w, err)
		return
	}
	s := api.NewStreamWriter(w)
	res := d.Up(r.Context(), req, func(e api.Event) { _ = s.Event(e) })
	_ = s.Result(res)
}

// Up applies req.Project: it plans with scheduler.Reconcile against the
// containers that exist and carries the plan out, sending progress to
// send. Every failure is in the Result.
func (d *Daemon) Up(ctx context.Context, req api.UpRequest, send func(api.Event)) api.Result {
	p := req.Project
	defer d.burst()()
	unlock := d.projects.lock(p.Name)
	defer unlock()
	var res api.Result
	merr := d.upLocked(ctx, p, req.Services, req.Options, send, &res)
	res.Errors = append(res.Errors, errStrings(merr)...)
	return res
}

func (d *Daemon) upLocked(ctx context.Context, p *spec.Project, services []string, o api.UpOptions, send func(api.Event), res *api.Result) error {
	if send == nil {
		send = func(api.Event) {}
	}
	if o.ForceRecreate && o.NoRecreate {
		return errors.New("--force-recreate and --no-recreate cannot be used together")
	}
	if o.RenewAnonVolumes && o.NoRecreate {
		return errors.New("--renew-anon-volumes and --no-recreate cannot be used together")
	}
	for _, s := range services {
		if _, ok := p.Service(s); !ok {
			return fmt.Errorf("no such service: %s", s)
		}
	}
	switch o.Pull {
	case "", "always", "missing", "never", "if_not_present", "build", "policy":
	default:
		return fmt.Errorf("invalid --pull %q (always, missing, never)", o.Pull)
	}

	hashes := map[string]string{}
	digests := map[string]string{}
	pulled := map[string]bool{}
	var errs error
	for k := range p.Services {
		svc := &p.Services[k]
		h, err := spec.ServiceHash(p, svc.Name, os.ReadFile)
		if err != nil {
			errs = multierror.Append(errs, err)
			continue
		}
		hashes[svc.Name] = h
		if svc.Image == "" {
			continue
		}
		// Built images (build: sections, built by the CLI) are not pulled.
		if o.Pull == "always" && svc.Build == nil && svc.PullPolicy != "build" && !pulled[svc.Image] && (len(services) == 0 || contains(services, svc.Name)) {
			pulled[svc.Image] = true
			send(api.Event{Time: time.Now().UTC(), Project: p.Name, Service: svc.Name, Action: "pull", Status: "working", Message: svc.Image})
			if _, err := d.images.Pull(ctx, svc.Image, d.cfg.PullOptions); err != nil {
				err = fmt.Errorf("service %q: pulling %s: %w", svc.Name, svc.Image, err)
				send(api.Event{Time: time.Now().UTC(), Project: p.Name, Service: svc.Name, Action: "pull", Status: "error", Message: svc.Image, Error: err.Error()})
				errs = multierror.Append(errs, err)
				continue
			}
			send(api.Event{Time: time.Now().UTC(), Project: p.Name, Service: svc.Name, Action: "pull", Status: "done", Message: svc.Image})
		}
		img, err := d.images.Get(svc.Image)
		if err == nil {
			digests[svc.Name] = img.ID
		} else if o.Pull == "never" && errors.Is(err, image.ErrNotFound) {
			errs = multierror.Append(errs, fmt.Errorf("service %q: image %s is not in the store (--pull never)", svc.Name, svc.Image))
		}
	}
	if errs != nil {
		return errs
	}

	st, err := d.projects.load(p.Name)
	if err != nil {
		return err
	}
	if st == nil {
		st = &projectState{}
	}
	observed := d.observed(p.Name, st.OneOff)
	plan, err := scheduler.Reconcile(p, hashes, observed, scheduler.ReconcileOptions{
		Services: services, NoDeps: o.NoDeps, NoStart: o.NoStart, Scale: o.Scale,
		// -V recreates: fresh anonymous volumes need new containers.
		ForceRecreate: o.ForceRecreate || o.RenewAnonVolumes, NoRecreate: o.NoRecreate, RemoveOrphans: o.RemoveOrphans,
		ImageDigests: digests,
	})
	if err != nil {
		return err
	}
	res.Warnings = append(res.Warnings, plan.Warnings...)
	for _, w := range plan.Warnings {
		send(api.Event{Time: time.Now().UTC(), Project: p.Name, Action: "warning", Message: w})
	}

	// Save what is applied before acting, so that down finds it even if
	// the daemon dies half way.
	st.Project = p
	st.Hashes = hashes
	for _, s := range plan.Steps {
		if s.Action == scheduler.ActionStart {
			delete(st.Stopped, s.Container)
		}
	}
	if err := d.projects.save(p.Name, st); err != nil {
		return fmt.Errorf("saving project state: %w", err)
	}

	if !plan.Empty() {
		if err := d.ensureNetworks(p, plan, send); err != nil {
			return err
		}
		x := &planExecutor{d: d, p: p, timeout: timeoutOr(o.Timeout), send: send, hashes: hashes,
			failed: d.checkPorts(p, plan, observed), renewAnon: o.RenewAnonVolumes}
		report, err := scheduler.Execute(ctx, plan, x, planLimit)
		failedOwn := map[string]bool{}
		for _, r := range report.Results {
			res.Warnings = append(res.Warnings, r.Warnings...)
			res.Containers = append(res.Containers, r.Step.Container)
			if r.Status == scheduler.StatusFailed {
				failedOwn[r.Step.Container] = true
			}
		}
		// Containers not started because a dependency failed: say so,
		// the user sees why a service is not up.
		for _, r := range report.Results {
			if r.Status == scheduler.StatusBlocked && r.Err != nil && r.Step.Action == scheduler.ActionStart && !failedOwn[r.Step.Container] {
				err = multierror.Append(err, r.Err)
			}
		}
		res.Containers = dedupe(res.Containers)
		if err != nil {
			return err
		}
	}
	if o.Wait && !o.NoStart {
		return d.waitUp(ctx, p, services, o.WaitTimeout)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func dedupe(v []string) []string {
	sort.Strings(v)
	out := v[:0]
	for k, s := range v {
		if k == 0 || s != v[k-1] {
			out = append(out, s)
		}
	}
	return out
}

// ensureNetworks makes the networks the plan's new containers join.
func (d *Daemon) ensureNetworks(p *spec.Project, plan *scheduler.Plan, send func(api.Event)) error {
	need := map[string]bool{}
	for _, s := range plan.Steps {
		if s.Action != scheduler.ActionCreate {
			continue
		}
		if svc, ok := p.Service(s.Service); ok {
			for _, n := range svc.Networks {
				need[n.Name] = true
			}
		}
	}
	names := make([]string, 0, len(need))
	for n := range need {
		names = append(names, n)
	}
	sort.Strings(names)
	existed := map[string]bool{}
	for _, n := range d.net.Networks() {
		existed[n.ID] = true
	}
	var errs error
	for _, name := range names {
		n, ok := projectNetwork(p, name)
		if !ok {
			errs = multierror.Append(errs, fmt.Errorf("network %q is not declared", name))
			continue
		}
		if _, err := d.net.EnsureNetwork(p.Name, n); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("network %s: %w", n.ActualName, err))
			continue
		}
		if !existed[netstack.NetworkID(p.Name, name)] && !n.External {
			// Only a network this up made is reported as created.
			send(api.Event{Time: time.Now().UTC(), Project: p.Name, Action: "network", Status: "done", Message: n.ActualName})
		}
	}
	return errs
}

func projectNetwork(p *spec.Project, name string) (spec.Network, bool) {
	for _, n := range p.Networks {
		if n.Name == name {
			return n, true
		}
	}
	if name == "default" {
		return spec.Network{Name: "default", ActualName: p.Name + "_default"}, true
	}
	return spec.Network{}, false
}

// checkPorts finds, before anything starts, the new services whose host
// ports are in use. Services that already have containers hold their
// ports themselves; the engine checks those when it publishes them.
func (d *Daemon) checkPorts(p *spec.Project, plan *scheduler.Plan, observed []scheduler.Observed) map[string]error {
	have := map[string]bool{}
	for _, o := range observed {
		have[o.Service] = true
	}
	checked := map[string]bool{}
	errs := map[string]error{}
	for _, s := range plan.Steps {
		if s.Action != scheduler.ActionStart || have[s.Service] || checked[s.Service] {
			continue
		}
		checked[s.Service] = true
		svc, ok := p.Service(s.Service)
		if !ok || len(svc.Ports) == 0 {
			continue
		}
		if err := d.net.CheckPorts(svc.Ports); err != nil {
			errs[s.Service] = fmt.Errorf("service %q: %w", s.Service, err)
		}
	}
	return errs
}

// waitUp waits until every container of the selected services runs and,
// when it has a health check, is healthy (up --wait).
func (d *Daemon) waitUp(ctx context.Context, p *spec.Project, services []string, timeout time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var (
		mu   sync.Mutex
		errs error
		wg   sync.WaitGroup
	)
	for _, i := range d.engine.Instances(p.Name) {
		if len(services) > 0 && !contains(services, i.ServiceName()) {
			continue
		}
		if _, ok := p.Service(i.ServiceName()); !ok {
			continue
		}
		cond := "running"
		if svc := i.Service(); svc != nil && NewHealthConfig(svc.Healthcheck) != nil {
			cond = ConditionHealthy
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := i.WaitCondition(ctx, cond); err != nil {
				mu.Lock()
				errs = multierror.Append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}

func (d *Daemon) handleDown(w http.ResponseWriter, r *http.Request) {
	var req api.DownRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.ProjectName == "" && req.Project != nil {
		req.ProjectName = req.Project.Name
	}
	if err := validProjectName(req.ProjectName); err != nil {
		writeError(w, badRequest("%v", err))
		return
	}
	switch req.RMI {
	case "", "local", "all":
	default:
		writeError(w, badRequest("--rmi %q: want local or all", req.RMI))
		return
	}
	s := api.NewStreamWriter(w)
	res := d.Down(r.Context(), req, func(e api.Event) { _ = s.Event(e) })
	_ = s.Result(res)
}

// Down stops and removes a project from its saved state (req.Project, when
// given, tells orphans apart): containers in reverse dependency order, then
// networks, volumes with req.Volumes and images with req.RMI.
func (d *Daemon) Down(ctx context.Context, req api.DownRequest, send func(api.Event)) api.Result {
	if send == nil {
		send = func(api.Event) {}
	}
	name := req.ProjectName
	defer d.burst()()
	unlock := d.projects.lock(name)
	defer unlock()
	var res api.Result
	var errs error
	st, err := d.projects.load(name)
	if err != nil {
		// A damaged state file must not keep down from removing what runs.
		errs = multierror.Append(errs, err)
	}
	p := req.Project
	if p == nil && st != nil {
		p = st.Project
	}
	var oneOff map[string]bool
	if st != nil {
		oneOff = st.OneOff
	}
	plan, err := scheduler.PlanDown(p, d.observed(name, oneOff), scheduler.DownOptions{RemoveOrphans: req.RemoveOrphans})
	if err != nil {
		res.Errors = errStrings(multierror.Append(errs, err))
		return res
	}
	res.Warnings = append(res.Warnings, plan.Warnings...)
	for _, w := range plan.Warnings {
		send(api.Event{Time: time.Now().UTC(), Project: name, Action: "warning", Message: w})
	}
	x := &planExecutor{d: d, p: p, timeout: timeoutOr(req.Timeout), removeVolumes: req.Volumes, send: send}
	if p == nil {
		x.p = &spec.Project{Name: name}
	}
	report, err := scheduler.Execute(ctx, plan, x, planLimit)
	if err != nil {
		errs = multierror.Append(errs, err)
	}
	for _, r := range report.Results {
		res.Containers = append(res.Containers, r.Step.Container)
	}
	// One-off containers go with the project.
	for n := range oneOff {
		if i, ok := d.engine.Instance(n); ok {
			if err := i.Remove(ctx, RemoveOptions{Force: true, Volumes: req.Volumes}); err != nil {
				errs = multierror.Append(errs, err)
			}
		}
	}
	res.Containers = dedupe(res.Containers)

	if left := d.engine.Instances(name); len(left) > 0 {
		var names []string
		for _, i := range left {
			names = append(names, i.Name())
		}
		w := fmt.Sprintf("containers left (networks and state kept): %s", strings.Join(names, ", "))
		res.Warnings = append(res.Warnings, w)
		send(api.Event{Time: time.Now().UTC(), Project: name, Action: "warning", Message: w})
		res.Errors = errStrings(errs)
		return res
	}
	var netNames []string
	for _, n := range d.net.Networks() {
		if n.Project == name && !n.External {
			netNames = append(netNames, n.ActualName)
		}
	}
	sort.Strings(netNames)
	if err := d.net.RemoveProject(name); err != nil {
		errs = multierror.Append(errs, fmt.Errorf("removing networks: %w", err))
	} else {
		for _, n := range netNames {
			send(api.Event{Time: time.Now().UTC(), Project: name, Action: "network", Status: "removed", Message: n})
		}
	}
	if req.Volumes {
		var ext []string
		if p != nil {
			ext = volumes.ExternalNames(p)
		}
		removed, err := d.vols.RemoveProjectVolumes(name, true, ext...)
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("removing volumes: %w", err))
		}
		for _, v := range removed {
			send(api.Event{Time: time.Now().UTC(), Project: name, Action: "volume", Status: "removed", Message: v})
		}
	}
	if req.RMI != "" && p != nil {
		for _, ref := range projectImages(p, req.RMI) {
			removed, err := d.images.Remove(ref)
			if err != nil && !errors.Is(err, image.ErrNotFound) {
				errs = multierror.Append(errs, fmt.Errorf("removing image %s: %w", ref, err))
			}
			for _, id := range removed {
				send(api.Event{Time: time.Now().UTC(), Project: name, Action: "image", Status: "removed", Message: id})
			}
		}
	}
	if errs == nil {
		if err := d.projects.remove(name); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	res.Errors = errStrings(errs)
	return res
}

// projectImages lists the images down --rmi removes: "all" every image the
// services use; "local" only those without a custom tag (services without
// image:, whose image berth names PROJECT-SERVICE).
func projectImages(p *spec.Project, mode string) []string {
	seen := map[string]bool{}
	var out []string
	for _, svc := range p.Services {
		ref := svc.Image
		if ref == "" {
			ref = p.Name + "-" + svc.Name
		} else if mode == "local" {
			continue
		}
		if !seen[ref] {
			seen[ref] = true
			out = append(out, ref)
		}
	}
	sort.Strings(out)
	return out
}

// bootRestore brings back, in dependency order and waiting where
// depends_on asks, the services with restart: always or unless-stopped of
// every saved project, except those the user stopped.
func (d *Daemon) bootRestore(ctx context.Context) {
	for _, name := range d.projects.names() {
		if ctx.Err() != nil {
			return
		}
		if err := d.restoreProject(ctx, name); err != nil {
			d.log.Warn("boot restore", "project", name, "err", err)
		}
	}
}

func (d *Daemon) restoreProject(ctx context.Context, name string) error {
	unlock := d.projects.lock(name)
	defer unlock()
	st, err := d.projects.load(name)
	if err != nil || st == nil || st.Project == nil {
		return err
	}
	p := st.Project
	byService := map[string][]ContainerInfo{}
	for _, i := range d.engine.Instances(name) {
		c := i.Snapshot()
		byService[c.Service] = append(byService[c.Service], c)
	}
	var services []string
	for _, svc := range p.Services {
		cs := byService[svc.Name]
		if len(cs) == 0 {
			// Removed by hand, or never created (up --no-start is not
			// recorded): nothing to bring back.
			continue
		}
		want := false
		for _, c := range cs {
			if RestartOnBoot(svc.Restart, c.StoppedByUser || st.Stopped[c.Name]) {
				want = true
			}
		}
		if want {
			services = append(services, svc.Name)
		}
	}
	if len(services) == 0 {
		return nil
	}
	plan, err := scheduler.Reconcile(p, st.Hashes, d.observed(name, st.OneOff), scheduler.ReconcileOptions{
		Services: services, NoDeps: true, NoRecreate: true,
	})
	if err != nil {
		return err
	}
	if plan.Empty() {
		return nil
	}
	d.log.Info("boot restore", "project", name, "services", strings.Join(services, ","))
	if err := d.ensureNetworks(p, &scheduler.Plan{Steps: startAsCreate(plan.Steps)}, func(api.Event) {}); err != nil {
		return err
	}
	x := &planExecutor{d: d, p: p, timeout: -1, send: func(e api.Event) {
		if e.Error != "" {
			d.log.Warn("boot restore", "project", name, "container", e.Container, "action", e.Action, "err", e.Error)
		}
	}}
	_, err = scheduler.Execute(ctx, plan, x, planLimit)
	return err
}

// startAsCreate turns the plan's start steps into create steps, so that
// ensureNetworks looks at every service being started.
func startAsCreate(steps []scheduler.Step) []scheduler.Step {
	out := make([]scheduler.Step, len(steps))
	for k, s := range steps {
		if s.Action == scheduler.ActionStart {
			s.Action = scheduler.ActionCreate
		}
		out[k] = s
	}
	return out
}
