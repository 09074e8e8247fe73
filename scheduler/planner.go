package scheduler

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"

	"github.com/berth-dev/berth/spec"
)

// Container states as the supervisor reports them in Observed.State.
const (
	StateCreated    = "created"
	StateRunning    = "running"
	StateRestarting = "restarting"
	StatePaused     = "paused"
	StateExited     = "exited"
	StateDead       = "dead"
)

// Observed is a container that exists (running or not), as the
// supervisor knows it.
type Observed struct {
	Project     string // empty means the project being planned
	Service     string
	Number      int // replica number, from 1
	Name        string
	ConfigHash  string // the service's config hash when it was created
	ImageDigest string // digest of the image it was created from
	State       string // one of the State constants
}

// alive reports whether the container has a process to stop. Unknown
// states count as alive, so a stop is never skipped by mistake.
func (o Observed) alive() bool {
	switch o.State {
	case StateCreated, StateExited, StateDead:
		return false
	}
	return true
}

// ContainerName returns the name of replica n of service s in project:
// container_name when set, otherwise PROJECT-SERVICE-N.
func ContainerName(project string, s *spec.Service, n int) string {
	if s.ContainerName != "" {
		return s.ContainerName
	}
	return project + "-" + s.Name + "-" + strconv.Itoa(n)
}

// UpOptions tune PlanUp.
type UpOptions struct {
	// NoDeps plans only the named services, not their dependencies, and
	// does not wait for dependencies outside them.
	NoDeps bool
	// NoStart creates containers without starting them.
	NoStart bool
	// Scale overrides the replica count of services (up --scale).
	Scale map[string]int
}

// ReconcileOptions tune Reconcile.
type ReconcileOptions struct {
	// Services limits the plan to these services (plus their
	// dependencies unless NoDeps); empty means all. Dependents recreated
	// or restarted because of them are included regardless.
	Services []string
	NoDeps   bool
	NoStart  bool
	Scale    map[string]int
	// ForceRecreate recreates every selected container; NoRecreate
	// recreates none (changed containers are left as they are). They
	// exclude each other.
	ForceRecreate bool
	NoRecreate    bool
	// RemoveOrphans stops and removes containers of services that are no
	// longer in the project; without it they get a warning.
	RemoveOrphans bool
	// ImageDigests, when it has an entry for a service, is compared with
	// Observed.ImageDigest: a difference recreates the container.
	ImageDigests map[string]string
}

// DownOptions tune PlanDown.
type DownOptions struct {
	RemoveOrphans bool
}

// PlanUp plans bringing up the named services (all when none are named)
// and, unless opts.NoDeps, everything they depend on, from nothing:
// create and start per container, in dependency order.
func PlanUp(p *spec.Project, services []string, opts UpOptions) (*Plan, error) {
	return Reconcile(p, nil, nil, ReconcileOptions{
		Services: services,
		NoDeps:   opts.NoDeps,
		NoStart:  opts.NoStart,
		Scale:    opts.Scale,
	})
}

// ctr is one container as the planner sees it: what exists, what it
// becomes, and the steps that get it there.
type ctr struct {
	service string
	number  int
	oldName string // observed name; "" for a new container
	alive   bool   // observed and has a process
	newName string // name after the plan; "" when it goes away
	stop    bool
	remove  bool
	create  bool
	start   bool
	cause   string

	stopID, removeID, createID, startID int
}

func (c *ctr) recreate(cause string, newName string, noStart bool) {
	c.stop = c.alive
	c.remove = true
	c.create = true
	c.start = !noStart
	c.newName = newName
	c.cause = cause
}

// Reconcile plans taking the observed containers to the desired project:
// new containers are created and started; a container whose config hash
// (desiredHashes[service] against Observed.ConfigHash) or image digest
// changed is recreated, and so are containers sharing its namespaces;
// running dependents that declare restart: true on a recreated or
// restarted service are restarted; replicas are scaled (the highest
// numbers go first, new ones take the lowest free numbers); stopped
// containers are started; orphans get a warning or, with RemoveOrphans,
// are removed. When nothing differs the plan has no steps.
//
// The caller computes the hashes; a service with observed containers
// must have one.
func Reconcile(desired *spec.Project, desiredHashes map[string]string, observed []Observed, opts ReconcileOptions) (*Plan, error) {
	if desired == nil {
		return nil, fmt.Errorf("%w: nil project", ErrInvalid)
	}
	if opts.ForceRecreate && opts.NoRecreate {
		return nil, fmt.Errorf("%w: ForceRecreate and NoRecreate exclude each other", ErrInvalid)
	}
	g, err := NewGraph(desired)
	if err != nil {
		return nil, err
	}
	if err := checkObserved(observed, desired.Name); err != nil {
		return nil, err
	}
	var selected []string
	switch {
	case len(opts.Services) == 0:
		selected = g.Services()
	case opts.NoDeps:
		var errs []error
		for _, s := range opts.Services {
			if !g.has(s) {
				errs = append(errs, fmt.Errorf("%w %q", ErrUnknownService, s))
			}
		}
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
		selected = slices.Clone(opts.Services)
		sort.Strings(selected)
		selected = slices.Compact(selected)
	default:
		if selected, err = g.WithDependencies(opts.Services); err != nil {
			return nil, err
		}
	}
	inSel := make(map[string]bool, len(selected))
	for _, s := range selected {
		inSel[s] = true
	}
	replicas, err := desiredReplicas(desired, opts.Scale)
	if err != nil {
		return nil, err
	}
	disabled := make(map[string]bool, len(desired.DisabledServices))
	for _, d := range desired.DisabledServices {
		disabled[d] = true
	}

	b := &builder{
		project:   desired.Name,
		g:         g,
		order:     g.order,
		byService: map[string][]*ctr{},
		waitFor: func(dep string) bool {
			return !opts.NoDeps || inSel[dep]
		},
	}

	// Group observed containers.
	obsBy := map[string][]Observed{}
	var warnings []string
	for _, o := range observed {
		if o.Project != "" && o.Project != desired.Name {
			continue
		}
		switch {
		case g.has(o.Service):
			obsBy[o.Service] = append(obsBy[o.Service], o)
		case disabled[o.Service]:
			// Left alone: its profile is not active this time.
		case opts.RemoveOrphans:
			b.orphans = append(b.orphans, &ctr{
				service: o.Service, number: o.Number, oldName: o.Name, alive: o.alive(),
				stop: o.alive(), remove: true, cause: CauseOrphan,
			})
		default:
			warnings = append(warnings, fmt.Sprintf("orphan container %s (service %q): not in the project; remove it with --remove-orphans", o.Name, o.Service))
		}
	}
	sort.Slice(b.orphans, func(i, j int) bool { return b.orphans[i].oldName < b.orphans[j].oldName })

	recreated := map[string]bool{}
	for _, name := range g.order {
		svc := g.svcs[name]
		obs := obsBy[name]
		sort.Slice(obs, func(i, j int) bool {
			if obs[i].Number != obs[j].Number {
				return obs[i].Number < obs[j].Number
			}
			return obs[i].Name < obs[j].Name
		})
		if len(obs) > 0 {
			if _, ok := desiredHashes[name]; !ok {
				return nil, fmt.Errorf("service %q: %w: no config hash given", name, ErrInvalid)
			}
		}
		var list []*ctr
		if !inSel[name] {
			// Not selected: existing containers stay as they are
			// (dependents may still be restarted below).
			for _, o := range obs {
				list = append(list, &ctr{service: name, number: o.Number, oldName: o.Name, alive: o.alive(), newName: o.Name})
			}
			b.byService[name] = list
			continue
		}
		want := replicas[name]
		used := map[int]bool{}
		var kept []*ctr
		for _, o := range obs {
			c := &ctr{service: name, number: o.Number, oldName: o.Name, alive: o.alive(), newName: o.Name}
			list = append(list, c)
			switch {
			case used[o.Number]:
				c.stop, c.remove, c.newName, c.cause = c.alive, true, "", CauseDuplicate
				continue
			case o.Number < 1:
				c.stop, c.remove, c.newName, c.cause = c.alive, true, "", fmt.Sprintf("bad replica number %d", o.Number)
				continue
			}
			used[o.Number] = true
			kept = append(kept, c)
		}
		for len(kept) > want {
			c := kept[len(kept)-1]
			kept = kept[:len(kept)-1]
			c.stop, c.remove, c.newName, c.cause = c.alive, true, "", CauseScaleDown
		}
		for _, c := range kept {
			o := obs[slices.IndexFunc(obs, func(o Observed) bool { return o.Name == c.oldName })]
			newName := ContainerName(desired.Name, svc, c.number)
			switch {
			case opts.NoRecreate:
			case opts.ForceRecreate:
				c.recreate(CauseForced, newName, opts.NoStart)
			case o.ConfigHash != desiredHashes[name]:
				c.recreate(CauseConfigChanged, newName, opts.NoStart)
			case opts.ImageDigests[name] != "" && o.ImageDigest != opts.ImageDigests[name]:
				c.recreate(CauseImageChanged, newName, opts.NoStart)
			}
			if c.create {
				recreated[name] = true
			} else if !c.alive && !opts.NoStart {
				c.start, c.cause = true, CauseNotRunning
			}
		}
		cause := CauseNew
		if len(kept) > 0 {
			cause = CauseScaleUp
		}
		for n := 1; len(kept) < want; n++ {
			if used[n] || slices.ContainsFunc(obs, func(o Observed) bool { return o.Number == n }) {
				continue
			}
			c := &ctr{service: name, number: n, newName: ContainerName(desired.Name, svc, n), create: true, start: !opts.NoStart, cause: cause}
			kept = append(kept, c)
			list = append(list, c)
		}
		sort.SliceStable(list, func(i, j int) bool { return list[i].number < list[j].number })
		b.byService[name] = list
	}

	// Propagate: in dependency order, a service whose dependency was
	// recreated or restarted is recreated when it shares its namespaces,
	// or restarted when it declared restart: true.
	restarted := map[string]bool{}
	for _, name := range g.order {
		svc := g.svcs[name]
		for _, e := range g.deps[name] {
			if !recreated[e.On] && !restarted[e.On] {
				continue
			}
			switch {
			case e.SharesNamespaces:
				cause := "shares namespaces with " + e.On
				for _, c := range b.byService[name] {
					if c.oldName == "" || c.create || c.newName == "" {
						continue
					}
					c.recreate(cause, ContainerName(desired.Name, svc, c.number), opts.NoStart)
					recreated[name] = true
				}
			case e.Restart && !opts.NoStart:
				cause := "dependency " + e.On + " restarted"
				for _, c := range b.byService[name] {
					if c.oldName == "" || c.create || c.stop || c.newName == "" || !c.alive {
						continue // new, replaced, already restarted, going away or stopped
					}
					c.stop, c.start, c.cause = true, true, cause
					restarted[name] = true
				}
			}
		}
	}

	if err := b.checkNames(observed, desired.Name); err != nil {
		return nil, err
	}
	plan := b.build()
	sort.Strings(warnings)
	plan.Warnings = warnings
	return plan, nil
}

// checkNames refuses a plan that would create a container under a name
// that an observed container keeps, or create one name twice.
func (b *builder) checkNames(observed []Observed, project string) error {
	taken := map[string]string{} // name -> what holds it after teardown
	for _, o := range observed {
		if o.Project != "" && o.Project != project {
			continue
		}
		taken[o.Name] = fmt.Sprintf("container %s of service %q", o.Name, o.Service)
	}
	release := func(c *ctr) {
		if c.remove {
			delete(taken, c.oldName)
		}
	}
	for _, c := range b.orphans {
		release(c)
	}
	for _, list := range b.byService {
		for _, c := range list {
			release(c)
		}
	}
	var errs []error
	for _, name := range b.order {
		for _, c := range b.byService[name] {
			if !c.create {
				continue
			}
			if holder, ok := taken[c.newName]; ok {
				errs = append(errs, fmt.Errorf("service %q: %w: container name %q is in use by %s", c.service, ErrInvalid, c.newName, holder))
				continue
			}
			taken[c.newName] = fmt.Sprintf("replica %d of service %q", c.number, c.service)
		}
	}
	return errors.Join(errs...)
}

func desiredReplicas(p *spec.Project, scale map[string]int) (map[string]int, error) {
	out := make(map[string]int, len(p.Services))
	var errs []error
	for _, s := range p.Services {
		out[s.Name] = s.Replicas
	}
	names := make([]string, 0, len(scale))
	for n := range scale {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, ok := out[n]; !ok {
			errs = append(errs, fmt.Errorf("scale: %w %q", ErrUnknownService, n))
			continue
		}
		out[n] = scale[n]
	}
	for _, s := range p.Services {
		n := out[s.Name]
		switch {
		case n < 0:
			errs = append(errs, fmt.Errorf("service %q: %w: negative scale %d", s.Name, ErrInvalid, n))
		case n > 1 && s.ContainerName != "":
			errs = append(errs, fmt.Errorf("service %q: %w: container_name %q allows one replica, not %d", s.Name, ErrInvalid, s.ContainerName, n))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// PlanDown plans stopping and removing every observed container of the
// project, dependents before their dependencies. Containers of services
// that are no longer in p are orphans: removed with opts.RemoveOrphans,
// otherwise left with a warning.
//
// PlanDown works whatever the project says: with p nil every observed
// container is removed, in no particular order, and a graph error (a
// cycle, a bad reference) only drops the ordering, with a warning.
func PlanDown(p *spec.Project, observed []Observed, opts DownOptions) (*Plan, error) {
	b := &builder{byService: map[string][]*ctr{}}
	var warnings []string
	member := map[string]bool{}
	if p != nil {
		b.project = p.Name
		g, warning := lenientGraph(p)
		if warning != "" {
			warnings = append(warnings, warning)
		}
		b.g, b.order = g, g.order
		for _, s := range g.services {
			member[s] = true
		}
		for _, s := range p.DisabledServices {
			member[s] = true
		}
	}
	var extra []string // member services not in the graph: disabled ones
	seen := map[string]bool{}
	for _, o := range observed {
		if p != nil && o.Project != "" && o.Project != p.Name {
			continue
		}
		if o.Name == "" || seen[o.Name] {
			// Down must work: skip what cannot be a distinct container.
			warnings = append(warnings, fmt.Sprintf("ignoring observed container %q of service %q: no name or listed twice", o.Name, o.Service))
			continue
		}
		seen[o.Name] = true
		c := &ctr{service: o.Service, number: o.Number, oldName: o.Name, alive: o.alive(), stop: o.alive(), remove: true, cause: CauseDown}
		switch {
		case p == nil || member[o.Service]:
			if _, ok := b.byService[o.Service]; !ok && (b.g == nil || !b.g.has(o.Service)) {
				extra = append(extra, o.Service)
			}
			b.byService[o.Service] = append(b.byService[o.Service], c)
		case opts.RemoveOrphans:
			c.cause = CauseOrphan
			b.orphans = append(b.orphans, c)
		default:
			warnings = append(warnings, fmt.Sprintf("orphan container %s (service %q): not in the project; remove it with --remove-orphans", o.Name, o.Service))
		}
	}
	if b.g == nil {
		b.g = &Graph{}
	}
	sort.Strings(extra)
	b.order = append(slices.Clone(b.order), extra...)
	for _, list := range b.byService {
		sort.Slice(list, func(i, j int) bool {
			if list[i].number != list[j].number {
				return list[i].number < list[j].number
			}
			return list[i].oldName < list[j].oldName
		})
	}
	sort.Slice(b.orphans, func(i, j int) bool { return b.orphans[i].oldName < b.orphans[j].oldName })
	plan := b.build()
	sort.Strings(warnings)
	plan.Warnings = warnings
	return plan, nil
}

// checkObserved refuses observed containers of project without a name
// or with a name given twice.
func checkObserved(observed []Observed, project string) error {
	seen := make(map[string]bool, len(observed))
	var errs []error
	for _, o := range observed {
		if o.Project != "" && o.Project != project {
			continue
		}
		switch {
		case o.Name == "":
			errs = append(errs, fmt.Errorf("%w: observed container of service %q has no name", ErrInvalid, o.Service))
		case seen[o.Name]:
			errs = append(errs, fmt.Errorf("%w: observed container %q listed twice", ErrInvalid, o.Name))
		}
		seen[o.Name] = true
	}
	return errors.Join(errs...)
}

// lenientGraph builds p's graph for stopping: bad references are
// dropped, and a graph that still fails (a cycle, duplicate names) loses
// its edges, with a warning, so that stopping always works.
func lenientGraph(p *spec.Project) (*Graph, string) {
	g, errs := buildGraph(p, true)
	if len(errs) == 0 {
		errs = append(errs, g.sortTopo())
	}
	if err := errors.Join(errs...); err != nil {
		g = &Graph{services: g.services, svcs: g.svcs}
		g.order = g.services
		return g, fmt.Sprintf("stopping in no particular order: %v", err)
	}
	return g, ""
}

// builder turns per-container decisions into ordered steps.
type builder struct {
	project   string
	g         *Graph
	order     []string // services, dependencies first
	byService map[string][]*ctr
	orphans   []*ctr
	// waitFor reports whether start steps wait for dependency dep's
	// condition (false for dependencies outside --no-deps).
	waitFor func(dep string) bool

	plan *Plan
}

func (b *builder) add(s Step) int {
	s.ID = len(b.plan.Steps) + 1
	s.After = sortedUnique(s.After)
	s.OrderAfter = sortedUnique(s.OrderAfter)
	// A hard dependency already implies ordering.
	s.OrderAfter = slices.DeleteFunc(s.OrderAfter, func(id int) bool { return slices.Contains(s.After, id) })
	if len(s.After) == 0 {
		s.After = nil
	}
	if len(s.OrderAfter) == 0 {
		s.OrderAfter = nil
	}
	b.plan.Steps = append(b.plan.Steps, s)
	return s.ID
}

func sortedUnique(ids []int) []int {
	ids = slices.DeleteFunc(ids, func(id int) bool { return id == 0 })
	slices.Sort(ids)
	return slices.Compact(ids)
}

func (b *builder) build() *Plan {
	b.plan = &Plan{Project: b.project}

	// Teardown: orphans, then services in reverse dependency order, the
	// highest replica numbers first; a container is stopped after the
	// containers that depend on it, and removed after they are.
	teardown := func(c *ctr, dependents []*ctr) {
		if c.stop {
			var order []int
			for _, d := range dependents {
				order = append(order, d.stopID)
			}
			c.stopID = b.add(Step{Action: ActionStop, Service: c.service, Number: c.number, Container: c.oldName, OrderAfter: order, Cause: c.cause})
		}
		if c.remove {
			var order []int
			for _, d := range dependents {
				order = append(order, d.removeID)
			}
			c.removeID = b.add(Step{Action: ActionRemove, Service: c.service, Number: c.number, Container: c.oldName, After: []int{c.stopID}, OrderAfter: order, Cause: c.cause})
		}
	}
	for _, c := range b.orphans {
		teardown(c, nil)
	}
	for i := len(b.order) - 1; i >= 0; i-- {
		name := b.order[i]
		var dependents []*ctr
		for _, e := range b.g.dependents[name] {
			dependents = append(dependents, b.byService[e.Service]...)
		}
		list := b.byService[name]
		for j := len(list) - 1; j >= 0; j-- {
			teardown(list[j], dependents)
		}
	}

	// A new container waits for the removal of any container that had
	// its name (its own old self, or another one being replaced).
	removedName := map[string]int{}
	for _, s := range b.plan.Steps {
		if s.Action == ActionRemove {
			removedName[s.Container] = s.ID
		}
	}

	// Bring-up: services in dependency order, lowest numbers first.
	for _, name := range b.order {
		deps := b.g.deps[name]
		for _, c := range b.byService[name] {
			if c.create {
				var after, order []int
				after = append(after, c.removeID, removedName[c.newName])
				for _, e := range deps {
					hard := e.SharesNamespaces || slices.Contains(e.Kinds, KindVolumesFrom)
					for _, d := range b.byService[e.On] {
						id := d.createID
						if e.SharesNamespaces && d.startID != 0 {
							id = d.startID
						}
						if hard {
							after = append(after, id)
						} else {
							order = append(order, id)
						}
					}
				}
				c.createID = b.add(Step{Action: ActionCreate, Service: c.service, Number: c.number, Container: c.newName, After: after, OrderAfter: order, Cause: c.cause})
			}
			if c.start {
				after := []int{c.createID}
				if !c.create {
					after = append(after, c.stopID) // restart
				}
				var order []int
				var waits []Wait
				for _, e := range deps {
					for _, d := range b.byService[e.On] {
						if d.newName == "" {
							continue
						}
						if e.Required {
							after = append(after, d.startID)
						} else {
							order = append(order, d.startID)
						}
						if b.waitFor != nil && b.waitFor(e.On) {
							waits = append(waits, Wait{Service: e.On, Container: d.newName, Condition: e.Condition, Required: e.Required})
						}
					}
				}
				sort.Slice(waits, func(i, j int) bool { return waits[i].Container < waits[j].Container })
				c.startID = b.add(Step{Action: ActionStart, Service: c.service, Number: c.number, Container: c.newName, After: after, OrderAfter: order, Waits: waits, Cause: c.cause})
			}
		}
	}
	return b.plan
}
