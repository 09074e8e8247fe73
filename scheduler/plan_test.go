package scheduler

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/spec"
)

// lines joins plan lines the way Plan.String prints them.
func lines(l ...string) string {
	if len(l) == 0 {
		return ""
	}
	return strings.Join(l, "\n") + "\n"
}

func TestPlanUp(t *testing.T) {
	tests := []struct {
		name     string
		p        *spec.Project
		services []string
		opts     UpOptions
		want     string
	}{
		{name: "chain", p: proj("demo",
			svc("web", dependsOn("api", started)),
			svc("api", dependsOn("db", healthy)),
			svc("db"),
		), want: lines(
			"1. create demo-db-1 (new)",
			"2. start demo-db-1 after [1] (new)",
			"3. create demo-api-1 after [~1] (new)",
			"4. start demo-api-1 after [2 3] wait [demo-db-1 healthy] (new)",
			"5. create demo-web-1 after [~3] (new)",
			"6. start demo-web-1 after [4 5] wait [demo-api-1 started] (new)",
		)},
		{name: "diamond", p: proj("demo",
			svc("top", dependsOn("left", started), dependsOn("right", healthy)),
			svc("left", dependsOn("base", completed)),
			svc("right", dependsOn("base", completed)),
			svc("base"),
		), want: lines(
			"1. create demo-base-1 (new)",
			"2. start demo-base-1 after [1] (new)",
			"3. create demo-left-1 after [~1] (new)",
			"4. start demo-left-1 after [2 3] wait [demo-base-1 completed] (new)",
			"5. create demo-right-1 after [~1] (new)",
			"6. start demo-right-1 after [2 5] wait [demo-base-1 completed] (new)",
			"7. create demo-top-1 after [~3 ~5] (new)",
			"8. start demo-top-1 after [4 6 7] wait [demo-left-1 started, demo-right-1 healthy] (new)",
		)},
		{name: "fan-out with replicas", p: proj("demo",
			svc("db"),
			svc("worker", dependsOn("db", healthy), replicas(2)),
			svc("cron", dependsOn("db", started)),
		), want: lines(
			"1. create demo-db-1 (new)",
			"2. start demo-db-1 after [1] (new)",
			"3. create demo-cron-1 after [~1] (new)",
			"4. start demo-cron-1 after [2 3] wait [demo-db-1 started] (new)",
			"5. create demo-worker-1 after [~1] (new)",
			"6. start demo-worker-1 after [2 5] wait [demo-db-1 healthy] (new)",
			"7. create demo-worker-2 after [~1] (new)",
			"8. start demo-worker-2 after [2 7] wait [demo-db-1 healthy] (new)",
		)},
		{name: "required false: ordering only, optional wait", p: proj("demo",
			svc("web", optionalDep("metrics"), optionalDep("absent")),
			svc("metrics"),
		), want: lines(
			"1. create demo-metrics-1 (new)",
			"2. start demo-metrics-1 after [1] (new)",
			"3. create demo-web-1 after [~1] (new)",
			"4. start demo-web-1 after [3 ~2] wait [demo-metrics-1 started?] (new)",
		)},
		{name: "network_mode service: waits for the running namespace owner", p: proj("demo",
			svc("vpn"),
			svc("app", networkMode("service:vpn")),
		), want: lines(
			"1. create demo-vpn-1 (new)",
			"2. start demo-vpn-1 after [1] (new)",
			"3. create demo-app-1 after [2] (new)",
			"4. start demo-app-1 after [2 3] wait [demo-vpn-1 started] (new)",
		)},
		{name: "volumes_from needs the source created", p: proj("demo",
			svc("data"),
			svc("app", volumesFrom("data:ro", "container:elsewhere")),
		), want: lines(
			"1. create demo-data-1 (new)",
			"2. start demo-data-1 after [1] (new)",
			"3. create demo-app-1 after [1] (new)",
			"4. start demo-app-1 after [2 3] wait [demo-data-1 started] (new)",
		)},
		{name: "links with alias", p: proj("demo",
			svc("db", containerName("the-db")),
			svc("web", links("db:database")),
		), want: lines(
			"1. create the-db (new)",
			"2. start the-db after [1] (new)",
			"3. create demo-web-1 after [~1] (new)",
			"4. start demo-web-1 after [2 3] wait [the-db started] (new)",
		)},
		{name: "named service pulls in its dependencies only", p: proj("demo",
			svc("web", dependsOn("db", started)),
			svc("db"),
			svc("other"),
		), services: []string{"web"}, want: lines(
			"1. create demo-db-1 (new)",
			"2. start demo-db-1 after [1] (new)",
			"3. create demo-web-1 after [~1] (new)",
			"4. start demo-web-1 after [2 3] wait [demo-db-1 started] (new)",
		)},
		{name: "no deps", p: proj("demo",
			svc("web", dependsOn("db", started)),
			svc("db"),
		), services: []string{"web"}, opts: UpOptions{NoDeps: true}, want: lines(
			"1. create demo-web-1 (new)",
			"2. start demo-web-1 after [1] (new)",
		)},
		{name: "no start", p: proj("demo",
			svc("web", dependsOn("db", started)),
			svc("db"),
		), opts: UpOptions{NoStart: true}, want: lines(
			"1. create demo-db-1 (new)",
			"2. create demo-web-1 after [~1] (new)",
		)},
		{name: "scale override, zero replicas", p: proj("demo",
			svc("web", dependsOn("db", started)),
			svc("db"),
		), opts: UpOptions{Scale: map[string]int{"web": 2, "db": 0}}, want: lines(
			"1. create demo-web-1 (new)",
			"2. start demo-web-1 after [1] (new)",
			"3. create demo-web-2 (new)",
			"4. start demo-web-2 after [3] (new)",
		)},
		{name: "empty project", p: proj("demo"), want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := PlanUp(tt.p, tt.services, tt.opts)
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
}

func TestPlanUpErrors(t *testing.T) {
	p := proj("demo", svc("web", dependsOn("db", started)), svc("db"), svc("solo", containerName("solo")))
	tests := []struct {
		name     string
		p        *spec.Project
		services []string
		opts     UpOptions
		want     string
		is       error
	}{
		{"unknown service", p, []string{"nope"}, UpOptions{}, `unknown service "nope"`, ErrUnknownService},
		{"unknown service with no deps", p, []string{"web", "nope"}, UpOptions{NoDeps: true}, `unknown service "nope"`, ErrUnknownService},
		{"scale unknown", p, nil, UpOptions{Scale: map[string]int{"x": 1}}, `scale: unknown service "x"`, ErrUnknownService},
		{"negative scale", p, nil, UpOptions{Scale: map[string]int{"web": -1}}, `service "web": invalid input: negative scale -1`, ErrInvalid},
		{"container_name with replicas", p, nil, UpOptions{Scale: map[string]int{"solo": 2}}, `service "solo": invalid input: container_name "solo" allows one replica, not 2`, ErrInvalid},
		{"nil project", nil, nil, UpOptions{}, "invalid input: nil project", ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := PlanUp(tt.p, tt.services, tt.opts)
			if err == nil || err.Error() != tt.want || !errors.Is(err, tt.is) {
				t.Errorf("error = %v, want %q (%v)", err, tt.want, tt.is)
			}
		})
	}
}

func TestPlanDown(t *testing.T) {
	p := proj("demo",
		svc("web", dependsOn("api", started), replicas(2)),
		svc("api", dependsOn("db", healthy)),
		svc("db"),
	)
	p.DisabledServices = []string{"debug"}
	observed := []Observed{
		{Service: "db", Number: 1, Name: "demo-db-1", State: StateRunning},
		{Service: "api", Number: 1, Name: "demo-api-1", State: StateRunning},
		{Service: "web", Number: 1, Name: "demo-web-1", State: StateRunning},
		{Service: "web", Number: 2, Name: "demo-web-2", State: StateExited},
		{Service: "debug", Number: 1, Name: "demo-debug-1", State: StateRunning},
		{Service: "gone", Number: 1, Name: "demo-gone-1", State: StateRunning},
		{Project: "other", Service: "db", Number: 1, Name: "other-db-1", State: StateRunning},
	}
	tests := []struct {
		name string
		p    *spec.Project
		opts DownOptions
		want string
	}{
		{"reverse order, orphan warned", p, DownOptions{}, lines(
			"1. stop demo-debug-1 (down)",
			"2. remove demo-debug-1 after [1] (down)",
			"3. remove demo-web-2 (down)",
			"4. stop demo-web-1 (down)",
			"5. remove demo-web-1 after [4] (down)",
			"6. stop demo-api-1 after [~4] (down)",
			"7. remove demo-api-1 after [6 ~3 ~5] (down)",
			"8. stop demo-db-1 after [~6] (down)",
			"9. remove demo-db-1 after [8 ~7] (down)",
			`warning: orphan container demo-gone-1 (service "gone"): not in the project; remove it with --remove-orphans`,
		)},
		{"remove orphans", p, DownOptions{RemoveOrphans: true}, lines(
			"1. stop demo-gone-1 (orphan)",
			"2. remove demo-gone-1 after [1] (orphan)",
			"3. stop demo-debug-1 (down)",
			"4. remove demo-debug-1 after [3] (down)",
			"5. remove demo-web-2 (down)",
			"6. stop demo-web-1 (down)",
			"7. remove demo-web-1 after [6] (down)",
			"8. stop demo-api-1 after [~6] (down)",
			"9. remove demo-api-1 after [8 ~5 ~7] (down)",
			"10. stop demo-db-1 after [~8] (down)",
			"11. remove demo-db-1 after [10 ~9] (down)",
		)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := PlanDown(tt.p, observed, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := plan.String(); got != tt.want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestPlanDownWithoutAUsableProject(t *testing.T) {
	observed := []Observed{
		{Service: "b", Number: 1, Name: "demo-b-1", State: StateRunning},
		{Service: "a", Number: 1, Name: "demo-a-1", State: StateCreated},
	}
	plan, err := PlanDown(nil, observed, DownOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := lines(
		"1. stop demo-b-1 (down)",
		"2. remove demo-b-1 after [1] (down)",
		"3. remove demo-a-1 (down)",
	)
	if got := plan.String(); got != want {
		t.Errorf("nil project plan:\n%s\nwant:\n%s", got, want)
	}

	cyclic := proj("demo", svc("a", dependsOn("b", started)), svc("b", dependsOn("a", started), links("gone")))
	plan, err = PlanDown(cyclic, observed, DownOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want = lines(
		"1. stop demo-b-1 (down)",
		"2. remove demo-b-1 after [1] (down)",
		"3. remove demo-a-1 (down)",
		"warning: stopping in no particular order: dependency cycle: a -> b -> a",
	)
	if got := plan.String(); got != want {
		t.Errorf("cyclic project plan:\n%s\nwant:\n%s", got, want)
	}
}
