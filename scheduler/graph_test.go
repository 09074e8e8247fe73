package scheduler

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-dev/berth/spec"
)

func TestGraphOrder(t *testing.T) {
	tests := []struct {
		name string
		p    *spec.Project
		want []string
	}{
		{"chain", proj("p",
			svc("a", dependsOn("b", started)),
			svc("b", dependsOn("c", healthy)),
			svc("c"),
		), []string{"c", "b", "a"}},
		{"diamond", proj("p",
			svc("top", dependsOn("left", started), dependsOn("right", started)),
			svc("left", dependsOn("bottom", healthy)),
			svc("right", dependsOn("bottom", healthy)),
			svc("bottom"),
		), []string{"bottom", "left", "right", "top"}},
		{"fan-out", proj("p",
			svc("db"),
			svc("w3", dependsOn("db", started)),
			svc("w1", dependsOn("db", started)),
			svc("w2", dependsOn("db", started)),
			svc("alone"),
		), []string{"alone", "db", "w1", "w2", "w3"}},
		{"ties broken by name across levels", proj("p",
			svc("z"),
			svc("a", dependsOn("z", started)),
			svc("m"),
		), []string{"m", "z", "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := NewGraph(tt.p)
			if err != nil {
				t.Fatal(err)
			}
			if got := g.Order(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Order() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestGraphEdges(t *testing.T) {
	p := proj("p",
		svc("web",
			dependsOn("db", healthy), links("db:database", "cache"),
			volumesFrom("data:ro", "container:foreign", "logs"),
		),
		svc("sidecar", networkMode("service:web"), restartDep("db", completed)),
		svc("db"), svc("cache"), svc("data"), svc("logs"),
	)
	g, err := NewGraph(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []Edge{
		{Service: "web", On: "cache", Condition: ConditionStarted, Required: true, Kinds: []EdgeKind{KindLinks}},
		{Service: "web", On: "data", Condition: ConditionStarted, Required: true, Kinds: []EdgeKind{KindVolumesFrom}},
		{Service: "web", On: "db", Condition: ConditionHealthy, Required: true, Kinds: []EdgeKind{KindDependsOn, KindLinks}},
		{Service: "web", On: "logs", Condition: ConditionStarted, Required: true, Kinds: []EdgeKind{KindVolumesFrom}},
	}
	if got := g.Dependencies("web"); !reflect.DeepEqual(got, want) {
		t.Errorf("Dependencies(web) =\n%+v\nwant\n%+v", got, want)
	}
	wantSide := []Edge{
		{Service: "sidecar", On: "db", Condition: ConditionCompleted, Required: true, Restart: true, Kinds: []EdgeKind{KindDependsOn}},
		{Service: "sidecar", On: "web", Condition: ConditionStarted, Required: true, SharesNamespaces: true, Kinds: []EdgeKind{KindNetworkMode}},
	}
	if got := g.Dependencies("sidecar"); !reflect.DeepEqual(got, wantSide) {
		t.Errorf("Dependencies(sidecar) =\n%+v\nwant\n%+v", got, wantSide)
	}
	var dependents []string
	for _, e := range g.Dependents("db") {
		dependents = append(dependents, e.Service)
	}
	if want := []string{"sidecar", "web"}; !reflect.DeepEqual(dependents, want) {
		t.Errorf("Dependents(db) = %v, want %v", dependents, want)
	}
	if got, want := g.Order(), []string{"cache", "data", "db", "logs", "web", "sidecar"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Order() = %v, want %v", got, want)
	}
	// Returned slices belong to the caller.
	g.Dependencies("web")[0].Kinds[0] = "mutated"
	if g.Dependencies("web")[0].Kinds[0] != KindLinks {
		t.Error("Dependencies shares memory with the graph")
	}
}

func TestGraphCycles(t *testing.T) {
	tests := []struct {
		name string
		p    *spec.Project
		want string
	}{
		{"two", proj("p",
			svc("db", dependsOn("api", started)),
			svc("api", dependsOn("db", started)),
		), "dependency cycle: api -> db -> api"},
		{"three starts at smallest name", proj("p",
			svc("x", dependsOn("m", started)),
			svc("m", dependsOn("b", started)),
			svc("b", dependsOn("x", started)),
			svc("outside", dependsOn("x", started)),
		), "dependency cycle: b -> x -> m -> b"},
		{"self", proj("p",
			svc("loop", links("loop")),
		), "dependency cycle: loop -> loop"},
		{"through network_mode and volumes_from", proj("p",
			svc("a", networkMode("service:b")),
			svc("b", volumesFrom("c:ro")),
			svc("c", dependsOn("a", healthy)),
		), "dependency cycle: a -> b -> c -> a"},
		{"two separate cycles, both named", proj("p",
			svc("d", dependsOn("c", started)),
			svc("c", dependsOn("d", started)),
			svc("b", dependsOn("a", started)),
			svc("a", dependsOn("b", started)),
		), "dependency cycle: a -> b -> a; dependency cycle: c -> d -> c"},
		{"shortest cycle through the smallest name", proj("p",
			svc("a", dependsOn("b", started), dependsOn("z", started)),
			svc("b", dependsOn("c", started)),
			svc("c", dependsOn("a", started)),
			svc("z", dependsOn("a", started)),
		), "dependency cycle: a -> z -> a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Same answer however the services are listed.
			for i := 0; i < 2; i++ {
				if i == 1 {
					s := tt.p.Services
					for l, r := 0, len(s)-1; l < r; l, r = l+1, r-1 {
						s[l], s[r] = s[r], s[l]
					}
				}
				_, err := NewGraph(tt.p)
				if err == nil {
					t.Fatal("no error")
				}
				if err.Error() != tt.want {
					t.Errorf("error = %q, want %q", err, tt.want)
				}
				var ce *CycleError
				if !errors.As(err, &ce) || !errors.Is(err, ErrCycle) {
					t.Errorf("error %v is not a *CycleError matching ErrCycle", err)
				}
				if _, err := PlanUp(tt.p, nil, UpOptions{}); err == nil || err.Error() != tt.want {
					t.Errorf("PlanUp error = %v, want %q", err, tt.want)
				}
			}
		})
	}
}

func TestGraphBadReferences(t *testing.T) {
	tests := []struct {
		name string
		p    *spec.Project
		want string // "" = no error
	}{
		{"depends_on unknown", proj("p", svc("web", dependsOn("nope", started))),
			`service "web": depends_on "nope": unknown service "nope"`},
		{"links unknown", proj("p", svc("web", links("nope:alias"))),
			`service "web": links "nope:alias": unknown service "nope"`},
		{"volumes_from unknown", proj("p", svc("web", volumesFrom("nope:ro"))),
			`service "web": volumes_from "nope:ro": unknown service "nope"`},
		{"network_mode unknown", proj("p", svc("web", networkMode("service:nope"))),
			`service "web": network_mode "service:nope": unknown service "nope"`},
		{"all reported, sorted", proj("p",
			svc("web", dependsOn("x", started)),
			svc("api", links("y")),
		), "service \"api\": links \"y\": unknown service \"y\"\nservice \"web\": depends_on \"x\": unknown service \"x\""},
		{"required false and absent is dropped", proj("p", svc("web", optionalDep("nope"))), ""},
		{"volumes_from container: is not a service", proj("p", svc("web", volumesFrom("container:other:ro"))), ""},
		{"network_mode container: and host are not services", proj("p",
			svc("a", networkMode("container:x")), svc("b", networkMode("host"))), ""},
		{"bad condition", proj("p", svc("db"), svc("web", dependsOn("db", "service_ready"))),
			`service "web": depends_on "db": invalid input: unknown condition "service_ready" (want service_started, service_healthy or service_completed_successfully)`},
	}
	disabled := proj("p", svc("web", dependsOn("debug", started)))
	disabled.DisabledServices = []string{"debug"}
	tests = append(tests, struct {
		name string
		p    *spec.Project
		want string
	}{"required dependency disabled by profile", disabled,
		`service "web": depends_on "debug": unknown service "debug" (disabled by its profiles)`})
	optDisabled := proj("p", svc("web", optionalDep("debug")))
	optDisabled.DisabledServices = []string{"debug"}
	tests = append(tests, struct {
		name string
		p    *spec.Project
		want string
	}{"optional dependency disabled by profile is dropped", optDisabled, ""})

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := NewGraph(tt.p)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range g.Services() {
					if d := g.Dependencies(s); len(d) != 0 {
						t.Errorf("%s has edges %+v", s, d)
					}
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error = %q\nwant    %q", err, tt.want)
			}
			if strings.Contains(tt.want, "unknown service") && !errors.Is(err, ErrUnknownService) {
				t.Error("not ErrUnknownService")
			}
		})
	}
}

func TestGraphBadInput(t *testing.T) {
	if _, err := NewGraph(nil); err == nil {
		t.Error("nil project: no error")
	}
	p := &spec.Project{Name: "p", Services: []spec.Service{{Name: "a"}, {Name: "a"}, {Name: ""}}}
	_, err := NewGraph(p)
	if err == nil || !strings.Contains(err.Error(), `service "a" defined twice`) || !strings.Contains(err.Error(), "empty name") {
		t.Errorf("error = %v", err)
	}
	g, err := NewGraph(proj("p", svc("a"), svc("b", dependsOn("a", started))))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.WithDependencies([]string{"b", "zzz"}); !errors.Is(err, ErrUnknownService) {
		t.Errorf("WithDependencies unknown: %v", err)
	}
	got, err := g.WithDependencies([]string{"b"})
	if err != nil || !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("WithDependencies(b) = %v, %v", got, err)
	}
}
