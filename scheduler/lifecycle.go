package scheduler

import (
	"errors"
	"fmt"
	"sort"

	"github.com/berth-dev/berth/spec"
)

// Causes of the plans for the start, stop and restart commands.
const (
	CauseStart   = "start"
	CauseStop    = "stop"
	CauseRestart = "restart"
)

// PlanStop plans stopping the running containers of the named services
// (all when none are named), dependents before their dependencies. It
// stops only what is named, like `compose stop`, and works on a project
// whose graph is broken (the ordering is then dropped, with a warning).
func PlanStop(p *spec.Project, observed []Observed, services []string) (*Plan, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: nil project", ErrInvalid)
	}
	g, warning := lenientGraph(p)
	sel, err := selectServices(g, services, false)
	if err != nil {
		return nil, err
	}
	b, err := newLifecycleBuilder(p, g, observed)
	if err != nil {
		return nil, err
	}
	for name, list := range b.byService {
		if !sel[name] {
			continue
		}
		for _, c := range list {
			if c.alive {
				c.stop, c.cause = true, CauseStop
			}
		}
	}
	plan := b.build()
	if warning != "" {
		plan.Warnings = []string{warning}
	}
	return plan, nil
}

// PlanStart plans starting the existing, stopped containers of the named
// services (all when none are named) and of everything they depend on,
// in dependency order, each waiting for its dependencies' conditions. It
// creates nothing: services without containers are left to up.
func PlanStart(p *spec.Project, observed []Observed, services []string) (*Plan, error) {
	_, sel, b, err := strictLifecycle(p, observed, services, true)
	if err != nil {
		return nil, err
	}
	for name, list := range b.byService {
		if !sel[name] {
			continue
		}
		for _, c := range list {
			if !c.alive {
				c.start, c.cause = true, CauseStart
			}
		}
	}
	return b.build(), nil
}

// PlanRestart plans restarting (stop if running, then start) the
// containers of the named services (all when none are named), plus, as
// Reconcile does, running dependents that declare restart: true on a
// restarted service and the containers that share its namespaces.
func PlanRestart(p *spec.Project, observed []Observed, services []string) (*Plan, error) {
	g, sel, b, err := strictLifecycle(p, observed, services, false)
	if err != nil {
		return nil, err
	}
	restarted := map[string]bool{}
	for _, name := range g.order {
		cause := ""
		if sel[name] {
			cause = CauseRestart
		} else {
			for _, e := range g.deps[name] {
				if restarted[e.On] && (e.Restart || e.SharesNamespaces) {
					cause = "dependency " + e.On + " restarted"
					break
				}
			}
		}
		if cause == "" {
			continue
		}
		for _, c := range b.byService[name] {
			if !sel[name] && !c.alive {
				continue // a stopped dependent stays stopped
			}
			c.stop, c.start, c.cause = c.alive, true, cause
			restarted[name] = true
		}
	}
	return b.build(), nil
}

// selectServices checks the named services and returns them (all when
// none), with their dependencies when withDeps is set.
// strictLifecycle is what PlanStart and PlanRestart begin with: the
// project's graph (which must be sound), the selected services and a
// builder over the observed containers.
func strictLifecycle(p *spec.Project, observed []Observed, services []string, withDeps bool) (*Graph, map[string]bool, *builder, error) {
	if p == nil {
		return nil, nil, nil, fmt.Errorf("%w: nil project", ErrInvalid)
	}
	g, err := NewGraph(p)
	if err != nil {
		return nil, nil, nil, err
	}
	sel, err := selectServices(g, services, withDeps)
	if err != nil {
		return nil, nil, nil, err
	}
	b, err := newLifecycleBuilder(p, g, observed)
	if err != nil {
		return nil, nil, nil, err
	}
	return g, sel, b, nil
}

func selectServices(g *Graph, services []string, withDeps bool) (map[string]bool, error) {
	names := services
	switch {
	case len(services) == 0:
		names = g.services
	case withDeps:
		var err error
		if names, err = g.WithDependencies(services); err != nil {
			return nil, err
		}
	default:
		var errs []error
		for _, s := range services {
			if !g.has(s) {
				errs = append(errs, fmt.Errorf("%w %q", ErrUnknownService, s))
			}
		}
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
	}
	sel := make(map[string]bool, len(names))
	for _, s := range names {
		sel[s] = true
	}
	return sel, nil
}

// newLifecycleBuilder holds p's observed containers, each kept as it is
// until the caller marks steps on it.
func newLifecycleBuilder(p *spec.Project, g *Graph, observed []Observed) (*builder, error) {
	if err := checkObserved(observed, p.Name); err != nil {
		return nil, err
	}
	b := &builder{project: p.Name, g: g, order: g.order, byService: map[string][]*ctr{}, waitFor: func(string) bool { return true }}
	for _, o := range observed {
		if (o.Project != "" && o.Project != p.Name) || !g.has(o.Service) {
			continue
		}
		b.byService[o.Service] = append(b.byService[o.Service], &ctr{
			service: o.Service, number: o.Number, oldName: o.Name, alive: o.alive(), newName: o.Name,
		})
	}
	for _, list := range b.byService {
		sort.Slice(list, func(i, j int) bool {
			if list[i].number != list[j].number {
				return list[i].number < list[j].number
			}
			return list[i].oldName < list[j].oldName
		})
	}
	return b, nil
}
