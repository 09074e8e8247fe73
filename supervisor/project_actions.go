package supervisor

import (
	"context"
	"fmt"
	"net/http"
	"sort"

	"github.com/berth-dev/berth/scheduler"
	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/api"
	"github.com/hashicorp/go-multierror"
)

func (d *Daemon) handleProject(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := validProjectName(name); err != nil {
		writeError(w, badRequest("%v", err))
		return
	}
	st, err := d.projects.load(name)
	if err != nil {
		writeError(w, err)
		return
	}
	if st == nil || st.Project == nil {
		writeError(w, fmt.Errorf("%w: no project %q", api.ErrNotFound, name))
		return
	}
	writeJSON(w, api.ProjectInfo{Project: st.Project, Hashes: st.Hashes, UpdatedAt: st.UpdatedAt})
}

func (d *Daemon) handleProjectAction(w http.ResponseWriter, r *http.Request) {
	name, action := r.PathValue("name"), r.PathValue("action")
	if err := validProjectName(name); err != nil {
		writeError(w, badRequest("%v", err))
		return
	}
	switch action {
	case api.ActionStart, api.ActionStop, api.ActionRestart:
	default:
		writeError(w, badRequest("unknown project action %q (start, stop, restart)", action))
		return
	}
	var req api.ProjectRequest
	if r.ContentLength != 0 {
		if err := decodeBody(r, &req); err != nil {
			writeError(w, err)
			return
		}
	}
	s := api.NewStreamWriter(w)
	res := d.ProjectAction(r.Context(), name, action, req, func(e api.Event) { _ = s.Event(e) })
	_ = s.Result(res)
}

// ProjectAction starts, stops or restarts the existing containers of a
// project, walking the saved project's dependency graph: starts in
// dependency order waiting for the depends_on conditions, stops in
// reverse. Without saved state (or with a broken graph) the containers
// are handled without order.
func (d *Daemon) ProjectAction(ctx context.Context, name, action string, req api.ProjectRequest, send func(api.Event)) api.Result {
	unlock := d.projects.lock(name)
	defer unlock()
	var res api.Result
	st, err := d.projects.load(name)
	if err != nil {
		res.Errors = errStrings(err)
		return res
	}
	var p *spec.Project
	var oneOff map[string]bool
	if st != nil {
		p, oneOff = st.Project, st.OneOff
	}
	var g *scheduler.Graph
	if p != nil {
		if g, err = scheduler.NewGraph(p); err != nil {
			res.Warnings = append(res.Warnings, fmt.Sprintf("no dependency order: %v", err))
			g = nil
		}
	}
	sel := setOf(req.Services)
	byService := map[string][]ContainerInfo{}
	for _, i := range d.engine.Instances(name) {
		c := i.Snapshot()
		if oneOff[c.Name] || (len(sel) > 0 && !sel[c.Service]) {
			continue
		}
		byService[c.Service] = append(byService[c.Service], c)
	}
	for s := range sel {
		if _, ok := byService[s]; !ok {
			res.Errors = append(res.Errors, fmt.Sprintf("service %q has no containers", s))
		}
	}
	if len(res.Errors) > 0 {
		sort.Strings(res.Errors)
		return res
	}
	x := &planExecutor{d: d, p: p, timeout: timeoutOr(req.Timeout), send: send}
	if p == nil {
		x.p = &spec.Project{Name: name}
	}
	var errs error
	run := func(plan *scheduler.Plan) {
		if len(plan.Steps) == 0 {
			return
		}
		report, err := scheduler.Execute(ctx, plan, x, planLimit)
		if err != nil {
			errs = multierror.Append(errs, err)
		}
		for _, r := range report.Results {
			res.Warnings = append(res.Warnings, r.Warnings...)
			res.Containers = append(res.Containers, r.Step.Container)
			stopped := r.Step.Action == scheduler.ActionStop
			if r.Status == scheduler.StatusDone {
				d.markStopped(name, r.Step.Container, stopped)
			}
		}
	}
	order := serviceOrder(g, byService)
	if action == api.ActionStop || action == api.ActionRestart {
		run(stopPlan(name, g, order, byService))
	}
	if errs == nil && (action == api.ActionStart || action == api.ActionRestart) {
		run(startPlan(name, g, order, byService))
	}
	res.Containers = dedupe(res.Containers)
	res.Errors = errStrings(errs)
	return res
}

// serviceOrder lists the services that have containers in dependency
// order (graph order, then services unknown to the graph by name).
func serviceOrder(g *scheduler.Graph, byService map[string][]ContainerInfo) []string {
	var out []string
	seen := map[string]bool{}
	if g != nil {
		for _, s := range g.Order() {
			if _, ok := byService[s]; ok {
				out = append(out, s)
				seen[s] = true
			}
		}
	}
	var rest []string
	for s := range byService {
		if !seen[s] {
			rest = append(rest, s)
		}
	}
	sort.Strings(rest)
	return append(rest, out...)
}

// stopPlan stops dependents before their dependencies.
func stopPlan(project string, g *scheduler.Graph, order []string, byService map[string][]ContainerInfo) *scheduler.Plan {
	plan := &scheduler.Plan{Project: project}
	ids := map[string][]int{} // service -> its stop steps
	for k := len(order) - 1; k >= 0; k-- {
		svc := order[k]
		var after []int
		if g != nil {
			for _, e := range g.Dependents(svc) {
				after = append(after, ids[e.Service]...)
			}
		}
		sort.Ints(after)
		for _, c := range byService[svc] {
			id := len(plan.Steps) + 1
			plan.Steps = append(plan.Steps, scheduler.Step{ID: id, Action: scheduler.ActionStop, Service: svc,
				Number: c.Number, Container: c.Name, OrderAfter: after, Cause: "stop"})
			ids[svc] = append(ids[svc], id)
		}
	}
	return plan
}

// startPlan starts dependencies first; each start waits for the
// depends_on conditions of its dependencies' containers.
func startPlan(project string, g *scheduler.Graph, order []string, byService map[string][]ContainerInfo) *scheduler.Plan {
	plan := &scheduler.Plan{Project: project}
	ids := map[string][]int{}
	for _, svc := range order {
		var after []int
		var waits []scheduler.Wait
		if g != nil {
			for _, e := range g.Dependencies(svc) {
				after = append(after, ids[e.On]...)
				for _, c := range byService[e.On] {
					waits = append(waits, scheduler.Wait{Service: e.On, Container: c.Name, Condition: e.Condition, Required: e.Required})
				}
			}
		}
		sort.Ints(after)
		for _, c := range byService[svc] {
			id := len(plan.Steps) + 1
			plan.Steps = append(plan.Steps, scheduler.Step{ID: id, Action: scheduler.ActionStart, Service: svc,
				Number: c.Number, Container: c.Name, OrderAfter: after, Waits: waits, Cause: "start"})
			ids[svc] = append(ids[svc], id)
		}
	}
	return plan
}
