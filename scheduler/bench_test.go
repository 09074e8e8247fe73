package scheduler

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/berth-dev/berth/spec"
)

// project200 is a 200-service project: each service depends on up to
// three earlier ones (depends_on with mixed conditions, links,
// volumes_from), some with two replicas.
func project200() *spec.Project {
	r := rand.New(rand.NewPCG(200, 200))
	conds := []string{started, healthy, completed}
	services := make([]spec.Service, 200)
	for i := range services {
		s := spec.Service{Name: fmt.Sprintf("svc%03d", i), Image: "busybox", Replicas: 1 + r.IntN(2)}
		for k := 0; k < 3 && i > 0; k++ {
			on := services[r.IntN(i)].Name
			switch r.IntN(4) {
			case 0:
				s.Links = append(s.Links, on)
			case 1:
				s.VolumesFrom = append(s.VolumesFrom, on+":ro")
			default:
				s.DependsOn = append(s.DependsOn, spec.Dependency{Service: on, Condition: conds[r.IntN(3)], Required: true, Restart: r.IntN(2) == 0})
			}
		}
		services[i] = s
	}
	return proj("bench", services...)
}

// BenchmarkPlan200 measures graph + plan for a 200-service project.
func BenchmarkPlan200(b *testing.B) {
	p := project200()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewGraph(p); err != nil {
			b.Fatal(err)
		}
		if _, err := PlanUp(p, nil, UpOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReconcile200 measures a reconcile of the running 200-service
// project where one service in the middle changed.
func BenchmarkReconcile200(b *testing.B) {
	p := project200()
	obs := running(p)
	after := project200()
	after.Services[100].Image = "busybox:2"
	h := hashes(after)
	b.ReportAllocs()
	for b.Loop() {
		plan, err := Reconcile(after, h, obs, ReconcileOptions{})
		if err != nil || plan.Empty() {
			b.Fatal(err)
		}
	}
}

type nopExec struct{}

func (nopExec) Do(context.Context, Step) error            { return nil }
func (nopExec) WaitCondition(context.Context, Wait) error { return nil }

// BenchmarkExecute200 measures the walk's own overhead: the up plan of
// the 200-service project with an executor that does nothing.
func BenchmarkExecute200(b *testing.B) {
	plan, err := PlanUp(project200(), nil, UpOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Execute(context.Background(), plan, nopExec{}, 8); err != nil {
			b.Fatal(err)
		}
	}
}
