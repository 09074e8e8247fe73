package supervisor

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/netstack"
	"github.com/berth-dev/berth/scheduler"
	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/api"
	"github.com/berth-dev/berth/supervisor/image"
	"github.com/berth-dev/berth/supervisor/image/imagetest"
	"github.com/berth-dev/berth/supervisor/runtime"
	"github.com/vishvananda/netlink"
)

// daemonEnv is a berth root with the busybox image, for a daemon.
type daemonEnv struct {
	t       testing.TB
	root    string
	project string
	pool    netip.Prefix
}

func newDaemonEnv(t testing.TB) *daemonEnv {
	t.Helper()
	requirePrivileged(t)
	root, err := os.MkdirTemp("", "berth-dmn-")
	if err != nil {
		t.Fatal(err)
	}
	env := &daemonEnv{t: t, root: root,
		project: fmt.Sprintf("d%d%s", os.Getpid()%100000, strings.ToLower(strings.NewReplacer("/", "", "_", "").Replace(t.Name())))}
	if len(env.project) > 24 {
		env.project = env.project[:24]
	}
	env.pool = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(100 + mrand.IntN(100)), byte(mrand.IntN(64) * 4), 0}), 22)
	t.Cleanup(env.sweep)
	st, err := image.Open(filepath.Join(root, "images"))
	if err != nil {
		t.Fatal(err)
	}
	imagetest.ImportBusybox(t, st, nil)
	return env
}

func (env *daemonEnv) config() DaemonConfig {
	return DaemonConfig{Root: env.root, Version: "test", Upstreams: []string{"127.0.0.1:9"}, Pool: env.pool, NoBootRestore: true}
}

// start runs a daemon in-process; t.Cleanup closes it.
func (env *daemonEnv) start() (*Daemon, *api.Client) {
	env.t.Helper()
	d, err := NewDaemon(env.config())
	if err != nil {
		env.t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		env.t.Fatal(err)
	}
	env.t.Cleanup(func() { d.Close() })
	c, err := api.Dial(env.root)
	if err != nil {
		env.t.Fatal(err)
	}
	env.t.Cleanup(func() { c.Close() })
	return d, c
}

// sweep removes whatever a failed test left: through a daemon that adopts
// and takes down every project, then networks, mounts and the root.
func (env *daemonEnv) sweep() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := env.config()
	if d, err := NewDaemon(cfg); err == nil {
		if err := d.Start(ctx); err == nil {
			for _, i := range d.engine.Instances("") {
				_ = i.Remove(ctx, RemoveOptions{Force: true, Volumes: true})
			}
			d.net.RemoveAll()
		} else {
			env.t.Logf("sweep: %v", err)
		}
		d.Close()
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		lines := strings.Split(string(b), "\n")
		for k := len(lines) - 1; k >= 0; k-- {
			f := strings.Fields(lines[k])
			if len(f) > 4 && strings.HasPrefix(f[4], env.root+"/") {
				syscall.Unmount(f[4], syscall.MNT_DETACH)
			}
		}
	}
	os.RemoveAll(env.root)
}

// stack is the health-gated chain web -> api -> db used by the tests.
func (env *daemonEnv) stack(restart string) *spec.Project {
	hc := func() *spec.Healthcheck {
		r := 30
		return &spec.Healthcheck{Test: []string{"CMD-SHELL", "test -f /tmp/ready"},
			Interval: sdur(time.Second), StartInterval: sdur(50 * time.Millisecond), StartPeriod: sdur(30 * time.Second), Retries: &r}
	}
	svc := func(name string, dep string, cmd string) spec.Service {
		s := spec.Service{Name: name, Image: "busybox:latest", Replicas: 1,
			Command:     []string{"sh", "-c", cmd},
			Networks:    []spec.ServiceNetwork{{Name: "default"}},
			Restart:     spec.RestartPolicy{Condition: restart},
			Healthcheck: hc(), StopGracePeriod: sdur(time.Second)}
		if dep != "" {
			s.DependsOn = []spec.Dependency{{Service: dep, Condition: "service_healthy", Required: true}}
		}
		return s
	}
	ready := "trap 'exit 0' TERM; sleep 0.3; touch /tmp/ready; echo ready; while :; do sleep 1 & wait; done"
	return &spec.Project{Name: env.project, WorkingDir: env.root,
		Networks: []spec.Network{{Name: "default", ActualName: env.project + "_default"}},
		Services: []spec.Service{svc("api", "db", ready), svc("db", "", ready), svc("web", "api", ready)},
	}
}

func (env *daemonEnv) up(c *api.Client, p *spec.Project, o api.UpOptions) ([]api.Event, *api.Result) {
	env.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var evs []api.Event
	res, err := c.Up(ctx, api.UpRequest{Project: p, Options: o}, func(e api.Event) { evs = append(evs, e) })
	if err != nil {
		env.t.Fatal(err)
	}
	return evs, res
}

// stepEvents lists "action container status" of the plan progress events.
func stepEvents(evs []api.Event) []string {
	var out []string
	for _, e := range evs {
		switch e.Action {
		case "create", "start", "stop", "remove":
			out = append(out, e.Action+" "+e.Container+" "+e.Status)
		}
	}
	return out
}

func psByName(t testing.TB, c *api.Client, project string) map[string]api.ContainerSummary {
	t.Helper()
	list, err := c.Ps(context.Background(), project, true)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]api.ContainerSummary{}
	for _, s := range list {
		out[s.Name] = s
	}
	return out
}

// projectTraces is what a project may leave on the host, for the
// "nothing left" checks: container pids, cgroup paths and host links.
type projectTraces struct {
	pids    []int
	cgroups []string
	links   []string
}

func (env *daemonEnv) traces(c *api.Client) projectTraces {
	env.t.Helper()
	var tr projectTraces
	rt, err := runtime.New(filepath.Join(env.root, "runtime"))
	if err != nil {
		env.t.Fatal(err)
	}
	for _, s := range psByName(env.t, c, env.project) {
		if s.Pid > 0 {
			tr.pids = append(tr.pids, s.Pid)
		}
		if rc, err := rt.Load(s.Name); err == nil {
			if st, err := rc.State(); err == nil {
				for _, p := range st.CgroupPaths {
					tr.cgroups = append(tr.cgroups, p)
				}
			}
		}
	}
	tr.links = append(tr.links, netstack.BridgeName(env.root, env.project, "default"))
	return tr
}

// leftovers lists what of the project is still on the host.
func (env *daemonEnv) leftovers(tr projectTraces) []string {
	var out []string
	for _, pid := range tr.pids {
		if syscall.Kill(pid, 0) == nil {
			out = append(out, fmt.Sprintf("process %d", pid))
		}
	}
	for _, p := range tr.cgroups {
		if _, err := os.Stat(p); err == nil {
			out = append(out, "cgroup "+p)
		}
	}
	for _, l := range tr.links {
		if _, err := netlink.LinkByName(l); err == nil {
			out = append(out, "link "+l)
		}
	}
	links, _ := netlink.LinkList()
	for _, l := range links {
		if v, ok := l.(*netlink.Veth); ok && strings.Contains(v.Alias, env.project) {
			out = append(out, "veth "+v.Name)
		}
	}
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], env.root+"/") && !strings.HasPrefix(f[4], env.root+"/images/") {
			out = append(out, "mount "+f[4])
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(env.root, "netns")); len(ents) > 0 {
		out = append(out, fmt.Sprintf("netns files %d", len(ents)))
	}
	if ents, _ := os.ReadDir(filepath.Join(env.root, "state", "containers")); len(ents) > 0 {
		out = append(out, fmt.Sprintf("container state files %d", len(ents)))
	}
	if _, err := os.Stat(filepath.Join(env.root, "state", "projects", env.project+".json")); err == nil {
		out = append(out, "project state")
	}
	if nft, err := exec.Command("nft", "list", "table", "ip", netstack.TableName(env.root)).CombinedOutput(); err == nil {
		bridge := netstack.BridgeName(env.root, env.project, "default")
		if strings.Contains(string(nft), bridge) {
			out = append(out, "nft rules for "+bridge)
		}
	}
	return out
}

func TestDaemonUpReconcileDown(t *testing.T) {
	env := newDaemonEnv(t)
	d, c := env.start()
	ctx := context.Background()

	// API round trips that need no containers.
	info, err := c.Ping(ctx)
	if err != nil || info.Pid != os.Getpid() || info.Root != env.root {
		t.Fatalf("ping: %+v %v", info, err)
	}
	if st, err := os.Stat(filepath.Join(env.root, api.SocketName)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v %v", st, err)
	}
	if _, err := c.Container(ctx, "nope", api.ActionStop, api.ContainerRequest{}); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("stop of a missing container: %v", err)
	}
	if _, err := c.Up(ctx, api.UpRequest{}, nil); !errors.Is(err, api.ErrBadRequest) {
		t.Fatalf("up without project: %v", err)
	}
	if res, err := c.Down(ctx, api.DownRequest{ProjectName: env.project + "-none"}, nil); err != nil || res.Err() != nil {
		t.Fatalf("down of an unknown project: %v %v", err, res.Err())
	}
	if _, err := c.Down(ctx, api.DownRequest{ProjectName: "../etc"}, nil); !errors.Is(err, api.ErrBadRequest) {
		t.Fatalf("down of a bad project name: %v", err)
	}
	if _, err := NewDaemon(env.config()); err == nil {
		d2, _ := NewDaemon(env.config())
		if err := d2.Start(ctx); !errors.Is(err, ErrDaemonRunning) {
			t.Fatalf("second daemon on the root: %v", err)
		}
	}

	// Events of the project, as `berth events` sees them.
	evctx, evcancel := context.WithCancel(ctx)
	defer evcancel()
	busEvents := make(chan api.Event, 1000)
	go c.Events(evctx, env.project, func(e api.Event) error { busEvents <- e; return nil })

	// 1. Up: the chain comes up in order, each waiting for its
	// dependency's health.
	p := env.stack("no")
	names := map[string]string{}
	for _, s := range []string{"api", "db", "web"} {
		names[s] = env.project + "-" + s + "-1"
	}
	var order []string
	var healthyAtStart []string
	res, err := c.Up(ctx, api.UpRequest{Project: p, Options: api.UpOptions{Wait: true, WaitTimeout: time.Minute}}, func(e api.Event) {
		if e.Action == "start" && e.Status == "working" {
			order = append(order, e.Service)
			// The dependency is healthy when the dependent starts.
			dep := map[string]string{"api": "db", "web": "api"}[e.Service]
			if dep != "" {
				if i, ok := d.engine.Instance(names[dep]); ok && i.Snapshot().Health == HealthHealthy {
					healthyAtStart = append(healthyAtStart, e.Service)
				}
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Err() != nil {
		t.Fatalf("up: %v", res.Err())
	}
	if strings.Join(order, ",") != "db,api,web" {
		t.Errorf("start order %v, want db,api,web", order)
	}
	if strings.Join(healthyAtStart, ",") != "api,web" {
		t.Errorf("dependents started with a healthy dependency: %v, want api,web", healthyAtStart)
	}
	ps := psByName(t, c, env.project)
	if len(ps) != 3 {
		t.Fatalf("ps: %+v", ps)
	}
	for _, s := range ps {
		if s.State != StateRunning || s.Health != HealthHealthy || s.Project != env.project || s.Number != 1 || s.StartedAt.IsZero() || s.ID == "" {
			t.Errorf("ps after up --wait: %+v", s)
		}
	}
	projects, err := c.Projects(ctx, false)
	if err != nil || len(projects) != 1 || projects[0].Name != env.project || projects[0].Status != "running(3)" {
		t.Errorf("ls: %+v %v", projects, err)
	}

	// 2. A second up with no change touches nothing: the plan is empty.
	st, err := d.projects.load(env.project)
	if err != nil || st == nil {
		t.Fatalf("project state: %v %v", st, err)
	}
	plan, err := scheduler.Reconcile(p, st.Hashes, d.observed(env.project, nil), scheduler.ReconcileOptions{ImageDigests: map[string]string{}})
	if err != nil || !plan.Empty() {
		t.Fatalf("reconcile after up: %v\n%s", err, plan)
	}
	evs, res := env.up(c, p, api.UpOptions{})
	if res.Err() != nil || len(stepEvents(evs)) != 0 || len(res.Containers) != 0 {
		t.Fatalf("second up: %v %v %v", res.Err(), stepEvents(evs), res.Containers)
	}
	after := psByName(t, c, env.project)
	for n, s := range ps {
		if after[n].Pid != s.Pid || !after[n].StartedAt.Equal(s.StartedAt) {
			t.Errorf("second up touched %s: %+v -> %+v", n, s, after[n])
		}
	}

	// 3. Changing one service recreates only it.
	p2 := env.stack("no")
	for k := range p2.Services {
		if p2.Services[k].Name == "web" {
			p2.Services[k].Environment = []string{"CHANGED=1"}
		}
	}
	evs, res = env.up(c, p2, api.UpOptions{})
	if res.Err() != nil {
		t.Fatalf("up after change: %v", res.Err())
	}
	for _, s := range stepEvents(evs) {
		if !strings.Contains(s, " "+names["web"]+" ") {
			t.Errorf("up after a change of web touched: %s", s)
		}
	}
	if want := "stop remove create start"; actionsOf(stepEvents(evs)) != want {
		t.Errorf("steps %v, want %s", stepEvents(evs), want)
	}
	after = psByName(t, c, env.project)
	for _, s := range []string{"api", "db"} {
		if after[names[s]].Pid != ps[names[s]].Pid {
			t.Errorf("%s was restarted", s)
		}
	}
	if after[names["web"]].ID == ps[names["web"]].ID || after[names["web"]].State != StateRunning {
		t.Errorf("web was not recreated: %+v", after[names["web"]])
	}

	// Logs through the API.
	var lines []api.LogLine
	if err := c.Logs(ctx, api.LogsRequest{Project: env.project, Services: []string{"db"}, Tail: -1}, func(l api.LogLine) error {
		lines = append(lines, l)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 || lines[0].Log != "ready" || lines[0].Container != names["db"] || lines[0].Stream != "stdout" {
		t.Errorf("logs of db: %+v", lines)
	}

	// Container actions: stop marks the container stopped by the user.
	sum, err := c.Container(ctx, names["web"], api.ActionStop, api.ContainerRequest{})
	if err != nil || sum.State != StateExited || !sum.StoppedByUser {
		t.Fatalf("stop web: %+v %v", sum, err)
	}
	if sum, err = c.Container(ctx, names["web"], api.ActionStart, api.ContainerRequest{}); err != nil || sum.State != StateRunning {
		t.Fatalf("start web: %+v %v", sum, err)
	}

	// The saved project, and project-wide stop/start in dependency order.
	pi, err := c.Project(ctx, env.project)
	if err != nil || len(pi.Project.Services) != 3 || pi.Hashes["web"] == "" {
		t.Fatalf("project: %+v %v", pi, err)
	}
	if _, err := c.Project(ctx, env.project+"-none"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("project of an unknown name: %v", err)
	}
	doneSeq := func(evs []api.Event) string {
		var out []string
		for _, e := range evs {
			if e.Status == "done" {
				out = append(out, e.Action+" "+e.Service)
			}
		}
		return strings.Join(out, ",")
	}
	var pevs []api.Event
	res, err = c.ProjectAction(ctx, env.project, api.ActionRestart, api.ProjectRequest{}, func(e api.Event) { pevs = append(pevs, e) })
	if err != nil || res.Err() != nil {
		t.Fatalf("project restart: %v %v", err, res.Err())
	}
	if got, want := doneSeq(pevs), "stop web,stop api,stop db,start db,start api,start web"; got != want {
		t.Errorf("project restart steps %q, want %q", got, want)
	}
	for n, s := range psByName(t, c, env.project) {
		if s.State != StateRunning || s.StoppedByUser {
			t.Errorf("%s after project restart: %+v", n, s)
		}
	}

	// 4. Down leaves nothing.
	tr := env.traces(c)
	var devs []api.Event
	res, err = c.Down(ctx, api.DownRequest{ProjectName: env.project, Volumes: true}, func(e api.Event) { devs = append(devs, e) })
	if err != nil || res.Err() != nil {
		t.Fatalf("down: %v %v", err, res.Err())
	}
	netGone := false
	for _, e := range devs {
		if e.Action == "network" && e.Status == "removed" && e.Message == env.project+"_default" {
			netGone = true
		}
	}
	if !netGone {
		t.Errorf("down events lack the removed network: %+v", devs)
	}
	if len(psByName(t, c, env.project)) != 0 {
		t.Error("ps lists containers after down")
	}
	if left := env.leftovers(tr); len(left) > 0 {
		t.Errorf("left after down: %v", left)
	}

	// The event stream saw the lifecycle.
	evcancel()
	seen := map[string]bool{}
	for len(busEvents) > 0 {
		e := <-busEvents
		seen[e.Action] = true
	}
	for _, a := range []string{"create", "start", "health_status", "stop", "destroy"} {
		if !seen[a] {
			t.Errorf("events: no %q event (saw %v)", a, seen)
		}
	}
}

func actionsOf(steps []string) string {
	var out []string
	for _, s := range steps {
		if strings.HasSuffix(s, " done") {
			out = append(out, strings.Fields(s)[0])
		}
	}
	return strings.Join(out, " ")
}
