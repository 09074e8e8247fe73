package scheduler

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"

	"github.com/berth-dev/berth/spec"
)

// testHash stands in for spec's config hash: it covers the service minus
// what does not change a running container (replicas, depends_on,
// profiles).
func testHash(s spec.Service) string {
	s.Replicas, s.DependsOn, s.Profiles = 0, nil, nil
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func hashes(p *spec.Project) map[string]string {
	m := map[string]string{}
	for _, s := range p.Services {
		m[s.Name] = testHash(s)
	}
	return m
}

// running returns what the supervisor would observe after bringing p up:
// every replica running, with p's hashes and digest "sha256:old".
func running(p *spec.Project) []Observed {
	var out []Observed
	for i := range p.Services {
		s := &p.Services[i]
		for n := 1; n <= s.Replicas; n++ {
			out = append(out, Observed{
				Project: p.Name, Service: s.Name, Number: n, Name: ContainerName(p.Name, s, n),
				ConfigHash: testHash(*s), ImageDigest: "sha256:old", State: StateRunning,
			})
		}
	}
	return out
}

func image(ref string) svcOpt { return func(s *spec.Service) { s.Image = ref } }

func withState(obs []Observed, name, state string) []Observed {
	out := append([]Observed(nil), obs...)
	for i := range out {
		if out[i].Name == name {
			out[i].State = state
		}
	}
	return out
}

func TestReconcile(t *testing.T) {
	base := func(extra ...svcOpt) *spec.Project {
		return proj("demo",
			svc("web", dependsOn("api", started)),
			svc("api", append([]svcOpt{restartDep("db", healthy)}, extra...)...),
			svc("db"),
		)
	}
	tests := []struct {
		name     string
		before   *spec.Project
		observed func([]Observed) []Observed // adjusts running(before); nil = as is
		after    *spec.Project
		opts     ReconcileOptions
		want     string
	}{
		{name: "nothing changed: empty plan", before: base(), after: base(), want: ""},

		{name: "one leaf service changed: only it", before: base(),
			after: proj("demo",
				svc("web", dependsOn("api", started), image("busybox:2")),
				svc("api", restartDep("db", healthy)),
				svc("db"),
			), want: lines(
				"1. stop demo-web-1 (config changed)",
				"2. remove demo-web-1 after [1] (config changed)",
				"3. create demo-web-1 after [2] (config changed)",
				"4. start demo-web-1 after [3] wait [demo-api-1 started] (config changed)",
			)},

		{name: "changed dependency restarts restart:true dependents only", before: base(),
			after: proj("demo",
				svc("web", dependsOn("api", started)),
				svc("api", restartDep("db", healthy)),
				svc("db", image("postgres:17")),
			), want: lines(
				"1. stop demo-api-1 (dependency db restarted)",
				"2. stop demo-db-1 after [~1] (config changed)",
				"3. remove demo-db-1 after [2] (config changed)",
				"4. create demo-db-1 after [3] (config changed)",
				"5. start demo-db-1 after [4] (config changed)",
				"6. start demo-api-1 after [1 5] wait [demo-db-1 healthy] (dependency db restarted)",
			)},

		{name: "restart propagates through restart:true chains", before: proj("demo",
			svc("c", restartDep("b", started)),
			svc("b", restartDep("a", started)),
			svc("a"),
		), after: proj("demo",
			svc("c", restartDep("b", started)),
			svc("b", restartDep("a", started)),
			svc("a", image("busybox:2")),
		), want: lines(
			"1. stop demo-c-1 (dependency b restarted)",
			"2. stop demo-b-1 after [~1] (dependency a restarted)",
			"3. stop demo-a-1 after [~2] (config changed)",
			"4. remove demo-a-1 after [3] (config changed)",
			"5. create demo-a-1 after [4] (config changed)",
			"6. start demo-a-1 after [5] (config changed)",
			"7. start demo-b-1 after [2 6] wait [demo-a-1 started] (dependency a restarted)",
			"8. start demo-c-1 after [1 7] wait [demo-b-1 started] (dependency b restarted)",
		)},

		{name: "a dependent restarted through two dependencies restarts once", before: proj("demo",
			svc("a"), svc("b"),
			svc("c", restartDep("a", started), restartDep("b", healthy)),
		), after: proj("demo",
			svc("a", image("x")), svc("b", image("y")),
			svc("c", restartDep("a", started), restartDep("b", healthy)),
		), want: lines(
			"1. stop demo-c-1 (dependency a restarted)",
			"2. stop demo-b-1 after [~1] (config changed)",
			"3. remove demo-b-1 after [2] (config changed)",
			"4. stop demo-a-1 after [~1] (config changed)",
			"5. remove demo-a-1 after [4] (config changed)",
			"6. create demo-a-1 after [5] (config changed)",
			"7. start demo-a-1 after [6] (config changed)",
			"8. create demo-b-1 after [3] (config changed)",
			"9. start demo-b-1 after [8] (config changed)",
			"10. start demo-c-1 after [1 7 9] wait [demo-a-1 started, demo-b-1 healthy] (dependency a restarted)",
		)},

		{name: "namespace sharers are recreated with their owner", before: proj("demo",
			svc("vpn"),
			svc("app", networkMode("service:vpn")),
			svc("other", dependsOn("vpn", started)),
		), after: proj("demo",
			svc("vpn", image("wireguard")),
			svc("app", networkMode("service:vpn")),
			svc("other", dependsOn("vpn", started)),
		), want: lines(
			"1. stop demo-app-1 (shares namespaces with vpn)",
			"2. remove demo-app-1 after [1] (shares namespaces with vpn)",
			"3. stop demo-vpn-1 after [~1] (config changed)",
			"4. remove demo-vpn-1 after [3 ~2] (config changed)",
			"5. create demo-vpn-1 after [4] (config changed)",
			"6. start demo-vpn-1 after [5] (config changed)",
			"7. create demo-app-1 after [2 6] (shares namespaces with vpn)",
			"8. start demo-app-1 after [6 7] wait [demo-vpn-1 started] (shares namespaces with vpn)",
		)},

		{name: "scale up takes the next numbers", before: base(),
			after: proj("demo",
				svc("web", dependsOn("api", started), replicas(3)),
				svc("api", restartDep("db", healthy)),
				svc("db"),
			), want: lines(
				"1. create demo-web-2 (scale up)",
				"2. start demo-web-2 after [1] wait [demo-api-1 started] (scale up)",
				"3. create demo-web-3 (scale up)",
				"4. start demo-web-3 after [3] wait [demo-api-1 started] (scale up)",
			)},

		{name: "scale down removes the highest numbers first", before: proj("demo",
			svc("worker", replicas(4)),
		), after: proj("demo",
			svc("worker", replicas(4)),
		), opts: ReconcileOptions{Scale: map[string]int{"worker": 2}}, want: lines(
			"1. stop demo-worker-4 (scale down)",
			"2. remove demo-worker-4 after [1] (scale down)",
			"3. stop demo-worker-3 (scale down)",
			"4. remove demo-worker-3 after [3] (scale down)",
		)},

		{name: "scale down of a dependency: dependents wait for what is left", before: proj("demo",
			svc("web", dependsOn("db", healthy)),
			svc("db", replicas(2)),
		), after: proj("demo",
			svc("web", dependsOn("db", healthy), image("busybox:2")),
			svc("db", replicas(1)),
		), want: lines(
			"1. stop demo-web-1 (config changed)",
			"2. remove demo-web-1 after [1] (config changed)",
			"3. stop demo-db-2 after [~1] (scale down)",
			"4. remove demo-db-2 after [3 ~2] (scale down)",
			"5. create demo-web-1 after [2] (config changed)",
			"6. start demo-web-1 after [5] wait [demo-db-1 healthy] (config changed)",
		)},

		{name: "a gap in numbers is filled first", before: proj("demo", svc("w", replicas(3))),
			observed: func(o []Observed) []Observed { return append(o[:1:1], o[2]) }, // w-1, w-3
			after:    proj("demo", svc("w", replicas(3))),
			want: lines(
				"1. create demo-w-2 (scale up)",
				"2. start demo-w-2 after [1] (scale up)",
			)},

		{name: "orphans are warned about", before: base(),
			after: proj("demo",
				svc("api", restartDep("db", healthy)),
				svc("db"),
			), want: lines(
				`warning: orphan container demo-web-1 (service "web"): not in the project; remove it with --remove-orphans`,
			)},

		{name: "orphans are removed with RemoveOrphans", before: base(),
			after: proj("demo",
				svc("api", restartDep("db", healthy)),
				svc("db"),
			), opts: ReconcileOptions{RemoveOrphans: true}, want: lines(
				"1. stop demo-web-1 (orphan)",
				"2. remove demo-web-1 after [1] (orphan)",
			)},

		{name: "containers of profile-disabled services are not orphans", before: base(),
			after: func() *spec.Project {
				p := proj("demo", svc("api", restartDep("db", healthy)), svc("db"))
				p.DisabledServices = []string{"web"}
				return p
			}(), opts: ReconcileOptions{RemoveOrphans: true}, want: ""},

		{name: "stopped containers are started", before: base(),
			observed: func(o []Observed) []Observed { return withState(o, "demo-api-1", StateExited) },
			after:    base(), want: lines(
				"1. start demo-api-1 wait [demo-db-1 healthy] (not running)",
			)},

		{name: "a recreated container that was stopped needs no stop", before: base(),
			observed: func(o []Observed) []Observed { return withState(o, "demo-db-1", StateExited) },
			after: proj("demo",
				svc("web", dependsOn("api", started)),
				svc("api", restartDep("db", healthy)),
				svc("db", image("postgres:17")),
			), want: lines(
				"1. stop demo-api-1 (dependency db restarted)",
				"2. remove demo-db-1 (config changed)",
				"3. create demo-db-1 after [2] (config changed)",
				"4. start demo-db-1 after [3] (config changed)",
				"5. start demo-api-1 after [1 4] wait [demo-db-1 healthy] (dependency db restarted)",
			)},

		{name: "force recreate", before: proj("demo", svc("a"), svc("b", dependsOn("a", started))),
			after: proj("demo", svc("a"), svc("b", dependsOn("a", started))),
			opts:  ReconcileOptions{ForceRecreate: true}, want: lines(
				"1. stop demo-b-1 (forced)",
				"2. remove demo-b-1 after [1] (forced)",
				"3. stop demo-a-1 after [~1] (forced)",
				"4. remove demo-a-1 after [3 ~2] (forced)",
				"5. create demo-a-1 after [4] (forced)",
				"6. start demo-a-1 after [5] (forced)",
				"7. create demo-b-1 after [2 ~5] (forced)",
				"8. start demo-b-1 after [6 7] wait [demo-a-1 started] (forced)",
			)},

		{name: "no recreate leaves changed containers", before: base(),
			after: proj("demo",
				svc("web", dependsOn("api", started)),
				svc("api", restartDep("db", healthy)),
				svc("db", image("postgres:17")),
			), opts: ReconcileOptions{NoRecreate: true}, want: ""},

		{name: "image digest changed", before: base(), after: base(),
			opts: ReconcileOptions{ImageDigests: map[string]string{"web": "sha256:new", "db": "sha256:old"}}, want: lines(
				"1. stop demo-web-1 (image changed)",
				"2. remove demo-web-1 after [1] (image changed)",
				"3. create demo-web-1 after [2] (image changed)",
				"4. start demo-web-1 after [3] wait [demo-api-1 started] (image changed)",
			)},

		{name: "selected services only", before: proj("demo", svc("a"), svc("b")),
			after: proj("demo", svc("a", image("x")), svc("b", image("y"))),
			opts:  ReconcileOptions{Services: []string{"b"}}, want: lines(
				"1. stop demo-b-1 (config changed)",
				"2. remove demo-b-1 after [1] (config changed)",
				"3. create demo-b-1 after [2] (config changed)",
				"4. start demo-b-1 after [3] (config changed)",
			)},

		{name: "new service added next to running ones", before: proj("demo", svc("db")),
			after: proj("demo", svc("db"), svc("web", dependsOn("db", healthy))), want: lines(
				"1. create demo-web-1 (new)",
				"2. start demo-web-1 after [1] wait [demo-db-1 healthy] (new)",
			)},

		{name: "container_name change replaces the container", before: proj("demo", svc("db")),
			after: proj("demo", svc("db", containerName("database"))), want: lines(
				"1. stop demo-db-1 (config changed)",
				"2. remove demo-db-1 after [1] (config changed)",
				"3. create database after [2] (config changed)",
				"4. start database after [3] (config changed)",
			)},

		{name: "a new container waits for the orphan that had its name", before: proj("demo",
			svc("old", containerName("shared")),
		), after: proj("demo",
			svc("new", containerName("shared")),
		), opts: ReconcileOptions{RemoveOrphans: true}, want: lines(
			"1. stop shared (orphan)",
			"2. remove shared after [1] (orphan)",
			"3. create shared after [2] (new)",
			"4. start shared after [3] (new)",
		)},

		{name: "duplicate replica numbers keep one", before: proj("demo", svc("w")),
			observed: func(o []Observed) []Observed {
				d := o[0]
				d.Name = "demo-w-1-stray"
				return append(o, d)
			},
			after: proj("demo", svc("w")), want: lines(
				"1. stop demo-w-1-stray (duplicate number)",
				"2. remove demo-w-1-stray after [1] (duplicate number)",
			)},

		{name: "other projects' containers are ignored", before: proj("demo", svc("w")),
			observed: func(o []Observed) []Observed {
				return append(o, Observed{Project: "else", Service: "zzz", Number: 1, Name: "else-zzz-1", State: StateRunning})
			},
			after: proj("demo", svc("w")), opts: ReconcileOptions{RemoveOrphans: true}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := running(tt.before)
			if tt.observed != nil {
				obs = tt.observed(obs)
			}
			plan, err := Reconcile(tt.after, hashes(tt.after), obs, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := plan.String(); got != tt.want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, tt.want)
			}
			if err := plan.Validate(); err != nil {
				t.Error(err)
			}
			if tt.want == "" && !plan.Empty() {
				t.Error("plan not Empty")
			}
		})
	}
}

func TestReconcileIsIdempotent(t *testing.T) {
	// Apply a plan to the observed state by hand and reconcile again:
	// nothing left to do.
	before := proj("demo", svc("db", replicas(3)), svc("web", dependsOn("db", healthy)))
	after := proj("demo", svc("db", replicas(1), image("x")), svc("web", restartDep("db", healthy), replicas(2)))
	plan, err := Reconcile(after, hashes(after), running(before), ReconcileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Empty() {
		t.Fatal("first plan is empty")
	}
	again, err := Reconcile(after, hashes(after), running(after), ReconcileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Empty() {
		t.Errorf("second reconcile is not empty:\n%s", again)
	}
}

func TestReconcileNameConflicts(t *testing.T) {
	before := proj("demo", svc("old", containerName("shared")))
	after := proj("demo", svc("new", containerName("shared")))
	_, err := Reconcile(after, hashes(after), running(before), ReconcileOptions{})
	want := `service "new": invalid input: container name "shared" is in use by container shared of service "old"`
	if err == nil || err.Error() != want {
		t.Errorf("orphan keeps the name: error %v, want %q", err, want)
	}
	twice := proj("demo", svc("a", containerName("x")), svc("b", containerName("x")))
	_, err = PlanUp(twice, nil, UpOptions{})
	want = `service "b": invalid input: container name "x" is in use by replica 1 of service "a"`
	if err == nil || err.Error() != want {
		t.Errorf("same container_name twice: error %v, want %q", err, want)
	}
}

func TestReconcileErrors(t *testing.T) {
	p := proj("demo", svc("a"))
	if _, err := Reconcile(p, nil, running(p), ReconcileOptions{}); err == nil || !errors.Is(err, ErrInvalid) ||
		err.Error() != `service "a": invalid input: no config hash given` {
		t.Errorf("missing hash: %v", err)
	}
	if _, err := Reconcile(p, hashes(p), nil, ReconcileOptions{ForceRecreate: true, NoRecreate: true}); !errors.Is(err, ErrInvalid) {
		t.Errorf("force+no recreate: %v", err)
	}
	if _, err := Reconcile(nil, nil, nil, ReconcileOptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil project: %v", err)
	}
}
