package scheduler

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/berth-dev/berth/spec"
)

// wildProject builds an arbitrary project from a seed: cycles, self
// references, unknown and disabled services, odd reference strings, bad
// conditions, any replica count.
func wildProject(r *rand.Rand) (*spec.Project, []Observed, ReconcileOptions) {
	n := r.IntN(8)
	// Half the projects are wild; the other half only reference earlier
	// services with valid conditions (no cycles, few errors), so the
	// planners' happy paths get odd observed states too.
	wild := r.IntN(2) == 0
	cur := 0 // index of the service being built
	name := func() string {
		if wild {
			return fmt.Sprintf("s%d", r.IntN(n+2)) // may not exist
		}
		if cur == 0 {
			return "s0"
		}
		return fmt.Sprintf("s%d", r.IntN(cur))
	}
	refs := []func() string{
		name,
		func() string { return name() + ":ro" },
		func() string { return name() + ":alias" },
		func() string { return "container:" + name() },
	}
	conds := []string{started, healthy, completed, ""}
	if wild {
		refs = append(refs, func() string { return "" }, func() string { return ":" }, func() string { return "service:" })
		conds = append(conds, "bogus")
	}
	p := &spec.Project{Name: "w"}
	for i := 0; i < n; i++ {
		cur = i
		s := spec.Service{Name: fmt.Sprintf("s%d", i), Replicas: r.IntN(4) - 1}
		if !wild {
			s.Replicas = r.IntN(3)
		}
		if r.IntN(6) == 0 {
			s.ContainerName = "fixed" + fmt.Sprint(r.IntN(2))
		}
		for k := r.IntN(4); k > 0 && (wild || i > 0); k-- {
			switch r.IntN(5) {
			case 0:
				s.DependsOn = append(s.DependsOn, spec.Dependency{Service: name(), Condition: conds[r.IntN(len(conds))], Required: r.IntN(2) == 0, Restart: r.IntN(2) == 0})
			case 1:
				if wild {
					s.Links = append(s.Links, refs[r.IntN(len(refs))]())
				} else {
					s.Links = append(s.Links, name()+":alias")
				}
			case 2:
				if wild {
					s.VolumesFrom = append(s.VolumesFrom, refs[r.IntN(len(refs))]())
				} else {
					s.VolumesFrom = append(s.VolumesFrom, []string{name(), name() + ":ro", "container:x"}[r.IntN(3)])
				}
			case 3:
				if wild {
					s.NetworkMode = "service:" + refs[r.IntN(len(refs))]()
				} else {
					s.NetworkMode = "service:" + name()
				}
			case 4:
				s.IpcMode = "service:" + name()
			}
		}
		p.Services = append(p.Services, s)
	}
	if r.IntN(3) == 0 {
		p.DisabledServices = []string{name()}
	}
	states := []string{StateRunning, StateExited, StateCreated, StatePaused, StateDead, "weird", ""}
	var obs []Observed
	for k := r.IntN(8); k > 0; k-- {
		svc := name()
		num := r.IntN(4) - 1
		cname := fmt.Sprintf("w-%s-%d", svc, num)
		if !wild {
			cname += fmt.Sprintf("-%d", k) // unique
		}
		obs = append(obs, Observed{
			Service: svc, Number: num, Name: cname,
			ConfigHash: fmt.Sprint(r.IntN(2)), ImageDigest: fmt.Sprint(r.IntN(2)), State: states[r.IntN(len(states))],
		})
	}
	opts := ReconcileOptions{
		NoDeps: r.IntN(2) == 0, NoStart: r.IntN(4) == 0, ForceRecreate: r.IntN(4) == 0,
		NoRecreate: r.IntN(4) == 0, RemoveOrphans: r.IntN(2) == 0,
	}
	if !wild && opts.ForceRecreate {
		opts.NoRecreate = false
	}
	cur = n
	if r.IntN(2) == 0 {
		opts.Services = []string{name()}
	}
	if r.IntN(3) == 0 {
		opts.Scale = map[string]int{name(): r.IntN(4) - 1}
	}
	return p, obs, opts
}

// FuzzPlanners feeds wild projects to every planner: each returns an
// error or a valid plan that Execute runs to the end; none panics.
func FuzzPlanners(f *testing.F) {
	for seed := uint64(0); seed < 64; seed++ {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		r := rand.New(rand.NewPCG(seed, 7))
		p, obs, opts := wildProject(r)
		h := map[string]string{}
		for _, s := range p.Services {
			h[s.Name] = "1"
		}
		check := func(what string, plan *Plan, err error) {
			if err != nil {
				if err.Error() == "" {
					t.Errorf("%s: empty error", what)
				}
				return
			}
			if err := plan.Validate(); err != nil {
				t.Fatalf("%s: %v\n%s", what, err, plan)
			}
			_ = plan.String()
			fe := newFake(plan)
			rep, err := Execute(context.Background(), plan, fe, r.IntN(3))
			if err != nil || rep.Count(StatusDone) != len(plan.Steps) {
				t.Fatalf("%s: %v\n%s\n%s", what, err, plan, rep)
			}
			checkOrder(t, plan, fe)
		}
		plan, err := Reconcile(p, h, obs, opts)
		check("Reconcile", plan, err)
		plan, err = PlanUp(p, opts.Services, UpOptions{NoDeps: opts.NoDeps, Scale: opts.Scale})
		check("PlanUp", plan, err)
		plan, err = PlanDown(p, obs, DownOptions{RemoveOrphans: opts.RemoveOrphans})
		if err != nil {
			t.Fatalf("PlanDown must not fail: %v", err)
		}
		check("PlanDown", plan, err)
		plan, err = PlanStop(p, obs, opts.Services)
		check("PlanStop", plan, err)
		plan, err = PlanStart(p, obs, opts.Services)
		check("PlanStart", plan, err)
		plan, err = PlanRestart(p, obs, opts.Services)
		check("PlanRestart", plan, err)
	})
}
