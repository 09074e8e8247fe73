package scheduler

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/berth-dev/berth/spec"
)

// randomProject builds a random DAG of services: service i may depend on
// any service j < i, through any kind of edge, so there is never a cycle.
func randomProject(r *rand.Rand, n int) *spec.Project {
	conds := []string{started, healthy, completed}
	services := make([]spec.Service, n)
	for i := range services {
		s := spec.Service{Name: fmt.Sprintf("s%03d", i), Image: "busybox", Replicas: r.IntN(4)}
		if r.IntN(8) == 0 {
			s.Replicas = 1
			s.ContainerName = fmt.Sprintf("fixed-%d", i)
		}
		for j := 0; j < i; j++ {
			if r.IntN(n) >= 3 {
				continue
			}
			on := services[j].Name
			switch r.IntN(6) {
			case 0, 1, 2:
				s.DependsOn = append(s.DependsOn, spec.Dependency{
					Service: on, Condition: conds[r.IntN(3)], Required: r.IntN(4) != 0, Restart: r.IntN(2) == 0,
				})
			case 3:
				s.Links = append(s.Links, on+":alias"+on)
			case 4:
				s.VolumesFrom = append(s.VolumesFrom, on+":ro")
			case 5:
				if s.NetworkMode == "" {
					s.NetworkMode = "service:" + on
				}
			}
		}
		services[i] = s
	}
	// Shuffle: the planner must not rely on declaration order.
	r.Shuffle(len(services), func(i, j int) { services[i], services[j] = services[j], services[i] })
	return &spec.Project{Name: "prop", Services: services}
}

// stepsOf indexes a plan's steps by action and service.
func stepsOf(plan *Plan, a Action, service string) []Step {
	var out []Step
	for _, s := range plan.Steps {
		if s.Action == a && s.Service == service {
			out = append(out, s)
		}
	}
	return out
}

// checkEdgeOrder checks, from the graph rather than from the plan's own
// dependency lists, that for every edge X -> Y every Y step of action a
// ended before any X step of action a began (up: Y first; down: X first,
// with reverse set).
func checkEdgeOrder(t *testing.T, g *Graph, plan *Plan, f *fakeExec, a Action, reverse bool) {
	t.Helper()
	for _, x := range g.Services() {
		for _, e := range g.Dependencies(x) {
			first, second := e.On, x
			if reverse {
				first, second = x, e.On
			}
			for _, s1 := range stepsOf(plan, a, first) {
				for _, s2 := range stepsOf(plan, a, second) {
					if f.calls[s1.ID] == 0 || f.calls[s2.ID] == 0 {
						continue
					}
					if f.end[s1.ID] > f.begin[s2.ID] {
						t.Errorf("%s of %s began before %s of %s ended", a, s2.Container, a, s1.Container)
					}
				}
			}
		}
	}
}

func TestPropertyRandomDAGs(t *testing.T) {
	iterations := 300
	if testing.Short() {
		iterations = 50
	}
	for seed := uint64(1); seed <= uint64(iterations); seed++ {
		r := rand.New(rand.NewPCG(seed, 0xbe27))
		p := randomProject(r, 2+r.IntN(30))
		limit := r.IntN(5)
		g, err := NewGraph(p)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		order := g.Order()
		pos := map[string]int{}
		for i, s := range order {
			pos[s] = i
		}
		for _, s := range order {
			for _, e := range g.Dependencies(s) {
				if pos[e.On] >= pos[s] {
					t.Fatalf("seed %d: order %v puts %s before its dependency %s", seed, order, s, e.On)
				}
			}
		}

		// Up: everything starts, each step once, dependencies first.
		up, err := PlanUp(p, nil, UpOptions{})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if err := up.Validate(); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		wantContainers := 0
		for _, s := range p.Services {
			wantContainers += s.Replicas
		}
		if len(up.Steps) != 2*wantContainers {
			t.Fatalf("seed %d: %d steps for %d containers", seed, len(up.Steps), wantContainers)
		}
		f := newFake(up)
		rep, err := Execute(context.Background(), up, f, limit)
		if err != nil || rep.Count(StatusDone) != len(up.Steps) {
			t.Fatalf("seed %d: %v\n%s", seed, err, rep)
		}
		checkOrder(t, up, f)
		checkEdgeOrder(t, g, up, f, ActionStart, false)
		if t.Failed() {
			t.Fatalf("seed %d: plan\n%s", seed, up)
		}

		// Down: the reverse.
		obs := running(p)
		down, err := PlanDown(p, obs, DownOptions{})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if len(down.Steps) != 2*len(obs) || len(down.Warnings) != 0 {
			t.Fatalf("seed %d: down plan\n%s", seed, down)
		}
		f = newFake(down)
		rep, err = Execute(context.Background(), down, f, limit)
		if err != nil || rep.Count(StatusDone) != len(down.Steps) {
			t.Fatalf("seed %d: %v\n%s", seed, err, rep)
		}
		checkOrder(t, down, f)
		checkEdgeOrder(t, g, down, f, ActionStop, true)
		checkEdgeOrder(t, g, down, f, ActionRemove, true)
		if t.Failed() {
			t.Fatalf("seed %d: plan\n%s", seed, down)
		}

		// Reconcile after changing some services: exactly the changed
		// ones, their namespace sharers and restart: true dependents
		// (transitively) are touched; a second reconcile is empty.
		after := &spec.Project{Name: p.Name, Services: slices.Clone(p.Services)}
		changed := map[string]bool{}
		for i := range after.Services {
			if r.IntN(5) == 0 {
				after.Services[i].Image = "busybox:changed"
				changed[after.Services[i].Name] = true
			}
		}
		affected := map[string]bool{}
		restarted := map[string]bool{}
		for _, s := range order {
			svc, _ := after.Service(s)
			if svc.Replicas == 0 {
				continue
			}
			if changed[s] {
				affected[s] = true
				continue
			}
			for _, e := range g.Dependencies(s) {
				if affected[e.On] || restarted[e.On] {
					if e.SharesNamespaces {
						affected[s] = true
					} else if e.Restart {
						restarted[s] = true
					}
				}
			}
			if affected[s] {
				delete(restarted, s)
			}
		}
		rec, err := Reconcile(after, hashes(after), obs, ReconcileOptions{})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if err := rec.Validate(); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		// The same inputs in another order give the same plan, byte for
		// byte.
		shuffled := &spec.Project{Name: after.Name, Services: slices.Clone(after.Services)}
		r.Shuffle(len(shuffled.Services), func(i, j int) {
			shuffled.Services[i], shuffled.Services[j] = shuffled.Services[j], shuffled.Services[i]
		})
		obs2 := slices.Clone(obs)
		r.Shuffle(len(obs2), func(i, j int) { obs2[i], obs2[j] = obs2[j], obs2[i] })
		if rec2, err := Reconcile(shuffled, hashes(after), obs2, ReconcileOptions{}); err != nil || rec2.String() != rec.String() {
			t.Fatalf("seed %d: reconcile depends on input order: %v\n%s\nvs\n%s", seed, err, rec, rec2)
		}
		for _, s := range p.Services {
			var actions []Action
			for _, st := range rec.Steps {
				if st.Service == s.Name && !slices.Contains(actions, st.Action) {
					actions = append(actions, st.Action)
				}
			}
			slices.Sort(actions)
			var want []Action
			switch {
			case affected[s.Name]:
				want = []Action{ActionCreate, ActionRemove, ActionStart, ActionStop}
			case restarted[s.Name]:
				want = []Action{ActionStart, ActionStop}
			}
			if !slices.Equal(actions, want) {
				t.Fatalf("seed %d: service %s: actions %v, want %v\n%s", seed, s.Name, actions, want, rec)
			}
		}
		f = newFake(rec)
		rep, err = Execute(context.Background(), rec, f, limit)
		if err != nil || rep.Count(StatusDone) != len(rec.Steps) {
			t.Fatalf("seed %d: %v\n%s", seed, err, rep)
		}
		checkOrder(t, rec, f)
		checkEdgeOrder(t, g, rec, f, ActionStop, true)
		checkEdgeOrder(t, g, rec, f, ActionStart, false)
		if t.Failed() {
			t.Fatalf("seed %d: plan\n%s", seed, rec)
		}
		again, err := Reconcile(after, hashes(after), running(after), ReconcileOptions{})
		if err != nil || !again.Empty() {
			t.Fatalf("seed %d: second reconcile: %v\n%s", seed, err, again)
		}
	}
}
