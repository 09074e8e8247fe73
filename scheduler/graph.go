package scheduler

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/berth-dev/berth/spec"
)

// Sentinel errors. Planning errors wrap one of these (Execute's wrap
// ErrDependencyFailed or the executor's own), so callers can branch with
// errors.Is.
var (
	// ErrUnknownService marks a reference to a service the project does
	// not have (or has disabled by profile).
	ErrUnknownService = errors.New("unknown service")
	// ErrCycle marks a dependency cycle; the error is a *CycleError.
	ErrCycle = errors.New("dependency cycle")
	// ErrInvalid marks bad input that is neither of the above: a bad
	// depends_on condition, a negative scale, a malformed plan.
	ErrInvalid = errors.New("invalid input")
)

// Condition is what a dependent waits for before it starts.
type Condition string

// Wait conditions, from depends_on (service_started, service_healthy,
// service_completed_successfully). Edges that do not come from depends_on
// (links, volumes_from, network_mode) wait for ConditionStarted.
const (
	ConditionStarted   Condition = "started"
	ConditionHealthy   Condition = "healthy"
	ConditionCompleted Condition = "completed"
)

// EdgeKind says which part of a service definition made an edge.
type EdgeKind string

// Edge kinds. An edge may have several (depends_on and links naming the
// same service, say).
const (
	KindDependsOn   EdgeKind = "depends_on"
	KindLinks       EdgeKind = "links"
	KindNetworkMode EdgeKind = "network_mode"
	KindIPC         EdgeKind = "ipc"
	KindPID         EdgeKind = "pid"
	KindVolumesFrom EdgeKind = "volumes_from"
)

// Edge says that Service depends on On. There is at most one edge per
// ordered pair of services; the fields merge every reference between them.
type Edge struct {
	Service string // the dependent
	On      string // the dependency
	// Condition is what Service waits for before starting: the depends_on
	// condition, or ConditionStarted for the other kinds.
	Condition Condition
	// Required is false only for a depends_on with required: false and no
	// other reference: a failure of On then does not stop Service.
	Required bool
	// Restart is set when Service must be restarted after On is recreated
	// or restarted (depends_on restart: true).
	Restart bool
	// SharesNamespaces is set when Service joins a namespace of On
	// (network_mode, ipc or pid "service:On"): Service is recreated when
	// On is, and its container can only be created once On runs.
	SharesNamespaces bool
	// Kinds lists what made the edge, sorted.
	Kinds []EdgeKind
}

// Graph is the dependency graph of a project's enabled services. It is
// immutable once built; every list it returns is in a deterministic order
// (by name, or dependency order for Order) and owned by the caller.
type Graph struct {
	services   []string
	deps       map[string][]Edge // service -> edges to its dependencies, sorted by On
	dependents map[string][]Edge // service -> edges from its dependents, sorted by Service
	order      []string          // topological: dependencies first, ties by name
	svcs       map[string]*spec.Service
}

// has reports whether service is in the graph.
func (g *Graph) has(service string) bool {
	_, ok := g.svcs[service]
	return ok
}

// CycleError reports one or more dependency cycles. Each cycle starts and
// ends at its smallest service name and follows dependency edges
// ("api -> db -> api": api depends on db, which depends on api).
type CycleError struct {
	Cycles [][]string
}

func (e *CycleError) Error() string {
	parts := make([]string, len(e.Cycles))
	for i, c := range e.Cycles {
		parts[i] = "dependency cycle: " + strings.Join(c, " -> ")
	}
	return strings.Join(parts, "; ")
}

// Is lets errors.Is(err, ErrCycle) match.
func (e *CycleError) Is(target error) bool { return target == ErrCycle }

// NewGraph builds the dependency graph of p's services from depends_on,
// links, volumes_from (the service form; "container:" is not a service
// edge) and network_mode/ipc/pid "service:X".
//
// A reference to an unknown or profile-disabled service is an error,
// except a depends_on with required: false, which is dropped. A cycle is a
// *CycleError. Errors are sorted and all reported, joined.
func NewGraph(p *spec.Project) (*Graph, error) {
	g, errs := buildGraph(p, false)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := g.sortTopo(); err != nil {
		return nil, err
	}
	return g, nil
}

// buildGraph collects edges. With lenient set, bad references are dropped
// instead of reported (for down, which must work whatever the file says).
func buildGraph(p *spec.Project, lenient bool) (*Graph, []error) {
	if p == nil {
		return &Graph{deps: map[string][]Edge{}, dependents: map[string][]Edge{}}, []error{fmt.Errorf("%w: nil project", ErrInvalid)}
	}
	g := &Graph{
		deps:       make(map[string][]Edge, len(p.Services)),
		dependents: make(map[string][]Edge, len(p.Services)),
		svcs:       make(map[string]*spec.Service, len(p.Services)),
	}
	known := make(map[string]bool, len(p.Services))
	var errs []error
	for i, s := range p.Services {
		if s.Name == "" {
			errs = append(errs, fmt.Errorf("%w: service with an empty name", ErrInvalid))
			continue
		}
		if known[s.Name] {
			errs = append(errs, fmt.Errorf("%w: service %q defined twice", ErrInvalid, s.Name))
			continue
		}
		known[s.Name] = true
		g.svcs[s.Name] = &p.Services[i]
		g.services = append(g.services, s.Name)
	}
	sort.Strings(g.services)
	disabled := make(map[string]bool, len(p.DisabledServices))
	for _, d := range p.DisabledServices {
		disabled[d] = true
	}

	for i := range p.Services {
		s := &p.Services[i]
		if s.Name == "" {
			continue
		}
		edges := map[string]*Edge{}
		// add records an edge to on; field and raw name the reference in
		// an error (formatted only then: this is the planner's hot path).
		add := func(on string, kind EdgeKind, field, raw string) *Edge {
			if !known[on] {
				if !lenient {
					hint := ""
					if disabled[on] {
						hint = " (disabled by its profiles)"
					}
					errs = append(errs, fmt.Errorf("service %q: %s %q: %w %q%s", s.Name, field, raw, ErrUnknownService, on, hint))
				}
				return nil
			}
			e := edges[on]
			if e == nil {
				e = &Edge{Service: s.Name, On: on, Condition: ConditionStarted}
				edges[on] = e
			}
			if !slices.Contains(e.Kinds, kind) {
				e.Kinds = append(e.Kinds, kind)
			}
			if kind != KindDependsOn {
				e.Required = true
			}
			return e
		}
		for _, d := range s.DependsOn {
			cond, err := parseCondition(d.Condition)
			if err != nil {
				if !lenient {
					errs = append(errs, fmt.Errorf("service %q: depends_on %q: %w", s.Name, d.Service, err))
				}
				continue
			}
			if !d.Required && !known[d.Service] {
				continue // optional and absent or disabled: dropped
			}
			e := add(d.Service, KindDependsOn, "depends_on", d.Service)
			if e == nil {
				continue
			}
			e.Condition = cond
			e.Required = e.Required || d.Required
			e.Restart = e.Restart || d.Restart
		}
		for _, l := range s.Links {
			name, _, _ := strings.Cut(l, ":")
			if name == "" {
				if !lenient {
					errs = append(errs, fmt.Errorf("service %q: %w: empty link %q", s.Name, ErrInvalid, l))
				}
				continue
			}
			add(name, KindLinks, "links", l)
		}
		for _, v := range s.VolumesFrom {
			if strings.HasPrefix(v, "container:") {
				continue
			}
			name := v
			if i := strings.LastIndexByte(v, ':'); i >= 0 && (v[i+1:] == "ro" || v[i+1:] == "rw") {
				name = v[:i]
			}
			if name == "" {
				if !lenient {
					errs = append(errs, fmt.Errorf("service %q: %w: empty volumes_from %q", s.Name, ErrInvalid, v))
				}
				continue
			}
			add(name, KindVolumesFrom, "volumes_from", v)
		}
		for _, ns := range []struct {
			mode, key string
			kind      EdgeKind
		}{{s.NetworkMode, "network_mode", KindNetworkMode}, {s.IpcMode, "ipc", KindIPC}, {s.PidMode, "pid", KindPID}} {
			name, ok := strings.CutPrefix(ns.mode, "service:")
			if !ok {
				continue
			}
			if e := add(name, ns.kind, ns.key, ns.mode); e != nil {
				e.SharesNamespaces = true
			}
		}
		for _, e := range edges {
			sort.Slice(e.Kinds, func(a, b int) bool { return e.Kinds[a] < e.Kinds[b] })
			g.deps[s.Name] = append(g.deps[s.Name], *e)
			g.dependents[e.On] = append(g.dependents[e.On], *e)
		}
	}
	for k, es := range g.deps {
		sort.Slice(es, func(a, b int) bool { return es[a].On < es[b].On })
		g.deps[k] = es
	}
	for k, es := range g.dependents {
		sort.Slice(es, func(a, b int) bool { return es[a].Service < es[b].Service })
		g.dependents[k] = es
	}
	sort.Slice(errs, func(a, b int) bool { return errs[a].Error() < errs[b].Error() })
	return g, errs
}

func parseCondition(c string) (Condition, error) {
	switch c {
	case "", spec.ConditionStarted:
		return ConditionStarted, nil
	case spec.ConditionHealthy:
		return ConditionHealthy, nil
	case spec.ConditionCompletedSuccessfully:
		return ConditionCompleted, nil
	}
	return "", fmt.Errorf("%w: unknown condition %q (want %s, %s or %s)", ErrInvalid, c,
		spec.ConditionStarted, spec.ConditionHealthy, spec.ConditionCompletedSuccessfully)
}

// sortTopo computes g.order with Kahn's algorithm, always taking the
// smallest ready name, or returns a *CycleError.
func (g *Graph) sortTopo() error {
	indeg := make(map[string]int, len(g.services))
	for _, s := range g.services {
		indeg[s] = len(g.deps[s])
	}
	var ready []string
	for _, s := range g.services {
		if indeg[s] == 0 {
			ready = append(ready, s)
		}
	}
	order := make([]string, 0, len(g.services))
	for len(ready) > 0 {
		s := ready[0]
		ready = ready[1:]
		order = append(order, s)
		for _, e := range g.dependents[s] {
			indeg[e.Service]--
			if indeg[e.Service] == 0 {
				i, _ := slices.BinarySearch(ready, e.Service)
				ready = slices.Insert(ready, i, e.Service)
			}
		}
	}
	if len(order) == len(g.services) {
		g.order = order
		return nil
	}
	return &CycleError{Cycles: g.findCycles()}
}

// findCycles returns one cycle per strongly connected component that has
// one, each the shortest cycle through the component's smallest name,
// sorted by that name.
func (g *Graph) findCycles() [][]string {
	// Tarjan's algorithm over sorted nodes and edges (recursive: depth is
	// bounded by the number of services).
	index := map[string]int{}
	low := map[string]int{}
	onStack := map[string]bool{}
	var stack []string
	var sccs [][]string
	next := 0
	var strong func(v string)
	strong = func(v string) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, e := range g.deps[v] {
			w := e.On
			if _, seen := index[w]; !seen {
				strong(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] == index[v] {
			var comp []string
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				comp = append(comp, w)
				if w == v {
					break
				}
			}
			sccs = append(sccs, comp)
		}
	}
	for _, s := range g.services {
		if _, seen := index[s]; !seen {
			strong(s)
		}
	}
	var cycles [][]string
	for _, comp := range sccs {
		sort.Strings(comp)
		start := comp[0]
		if len(comp) == 1 && !g.hasEdge(start, start) {
			continue
		}
		in := make(map[string]bool, len(comp))
		for _, c := range comp {
			in[c] = true
		}
		cycles = append(cycles, g.shortestCycle(start, in))
	}
	sort.Slice(cycles, func(a, b int) bool { return cycles[a][0] < cycles[b][0] })
	return cycles
}

func (g *Graph) hasEdge(from, to string) bool {
	for _, e := range g.deps[from] {
		if e.On == to {
			return true
		}
	}
	return false
}

// shortestCycle finds, by breadth-first search over sorted edges within
// the component, the shortest path from start back to start.
func (g *Graph) shortestCycle(start string, in map[string]bool) []string {
	prev := map[string]string{}
	queue := []string{start}
	seen := map[string]bool{}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, e := range g.deps[v] {
			w := e.On
			if !in[w] {
				continue
			}
			if w == start {
				path := []string{start}
				for x := v; x != start; x = prev[x] {
					path = append(path, x)
				}
				path = append(path, start)
				// path is start, v, ..., start in reverse order of travel.
				slices.Reverse(path[1 : len(path)-1])
				return path
			}
			if !seen[w] {
				seen[w] = true
				prev[w] = v
				queue = append(queue, w)
			}
		}
	}
	return []string{start, start} // unreachable for a real cycle
}

// Services returns the services in the graph, sorted by name.
func (g *Graph) Services() []string { return slices.Clone(g.services) }

// Order returns the services in dependency order: every service comes
// after all of its dependencies; ties are broken by name. Stop in the
// reverse of this order.
func (g *Graph) Order() []string { return slices.Clone(g.order) }

// Dependencies returns the edges from service to what it depends on,
// sorted by dependency name.
func (g *Graph) Dependencies(service string) []Edge { return cloneEdges(g.deps[service]) }

// Dependents returns the edges from the services that depend on service,
// sorted by dependent name.
func (g *Graph) Dependents(service string) []Edge { return cloneEdges(g.dependents[service]) }

func cloneEdges(es []Edge) []Edge {
	out := slices.Clone(es)
	for i := range out {
		out[i].Kinds = slices.Clone(out[i].Kinds)
	}
	return out
}

// WithDependencies returns the named services plus, transitively, every
// service they depend on, sorted by name. An unknown name is an error.
func (g *Graph) WithDependencies(services []string) ([]string, error) {
	seen := map[string]bool{}
	var errs []error
	var visit func(string)
	visit = func(s string) {
		if seen[s] {
			return
		}
		seen[s] = true
		for _, e := range g.deps[s] {
			visit(e.On)
		}
	}
	for _, s := range services {
		if !g.has(s) {
			errs = append(errs, fmt.Errorf("%w %q", ErrUnknownService, s))
			continue
		}
		visit(s)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out, nil
}
