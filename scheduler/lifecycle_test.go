package scheduler

import (
	"errors"
	"testing"

	"github.com/berth-dev/berth/spec"
)

func TestPlanStopStartRestart(t *testing.T) {
	p := proj("demo",
		svc("web", dependsOn("api", started)),
		svc("api", restartDep("db", healthy)),
		svc("db"),
		svc("side", networkMode("service:db")),
	)
	obs := running(p)
	stoppedDB := withState(withState(obs, "demo-db-1", StateExited), "demo-api-1", StateExited)

	tests := []struct {
		name string
		plan func() (*Plan, error)
		want string
	}{
		{"stop all, dependents first", func() (*Plan, error) { return PlanStop(p, obs, nil) }, lines(
			"1. stop demo-web-1 (stop)",
			"2. stop demo-side-1 (stop)",
			"3. stop demo-api-1 after [~1] (stop)",
			"4. stop demo-db-1 after [~2 ~3] (stop)",
		)},
		{"stop only what is named", func() (*Plan, error) { return PlanStop(p, obs, []string{"db"}) }, lines(
			"1. stop demo-db-1 (stop)",
		)},
		{"stop skips stopped containers", func() (*Plan, error) { return PlanStop(p, stoppedDB, []string{"db", "api"}) }, ""},
		{"start pulls in dependencies", func() (*Plan, error) { return PlanStart(p, stoppedDB, []string{"web"}) }, lines(
			"1. start demo-db-1 (start)",
			"2. start demo-api-1 after [1] wait [demo-db-1 healthy] (start)",
		)},
		{"start of running containers is empty", func() (*Plan, error) { return PlanStart(p, obs, nil) }, ""},
		{"restart propagates to restart:true dependents and namespace sharers", func() (*Plan, error) {
			return PlanRestart(p, obs, []string{"db"})
		}, lines(
			"1. stop demo-side-1 (dependency db restarted)",
			"2. stop demo-api-1 (dependency db restarted)",
			"3. stop demo-db-1 after [~1 ~2] (restart)",
			"4. start demo-db-1 after [3] (restart)",
			"5. start demo-api-1 after [2 4] wait [demo-db-1 healthy] (dependency db restarted)",
			"6. start demo-side-1 after [1 4] wait [demo-db-1 started] (dependency db restarted)",
		)},
		{"restart of a stopped service starts it", func() (*Plan, error) {
			return PlanRestart(p, withState(obs, "demo-api-1", StateExited), []string{"api"})
		}, lines(
			"1. start demo-api-1 wait [demo-db-1 healthy] (restart)",
		)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := tt.plan()
			if err != nil {
				t.Fatal(err)
			}
			if got := plan.String(); got != tt.want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, tt.want)
			}
			if err := plan.Validate(); err != nil {
				t.Error(err)
			}
		})
	}

	for name, f := range map[string]func(*spec.Project, []Observed, []string) (*Plan, error){
		"stop": PlanStop, "start": PlanStart, "restart": PlanRestart,
	} {
		if _, err := f(p, obs, []string{"nope"}); !errors.Is(err, ErrUnknownService) {
			t.Errorf("%s of an unknown service: %v", name, err)
		}
		if _, err := f(nil, obs, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s of a nil project: %v", name, err)
		}
	}
}
