package supervisor

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/netstack"
	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/image"
	"github.com/berth-dev/berth/supervisor/image/imagetest"
	"github.com/berth-dev/berth/supervisor/runtime"
	"github.com/berth-dev/berth/volumes"
	"github.com/vishvananda/netlink"
)

func requirePrivileged(t testing.TB) {
	t.Helper()
	if os.Getenv("BERTH_PRIVILEGED") != "1" {
		if os.Getenv("CI") != "" {
			t.Fatal("privileged test: CI must set BERTH_PRIVILEGED=1")
		}
		t.Skip("privileged test: set BERTH_PRIVILEGED=1 and run as root")
	}
	if os.Geteuid() != 0 {
		t.Fatal("BERTH_PRIVILEGED=1 needs root")
	}
}

// testEnv is an engine over a fresh berth root with the busybox image.
type testEnv struct {
	t       testing.TB
	root    string
	images  *image.Store
	vols    *volumes.Manager
	net     *netstack.Manager
	rt      *runtime.Runtime
	eng     *Engine
	project string
	pool    netip.Prefix

	mu     sync.Mutex
	events []Event
}

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	requirePrivileged(t)
	root, err := os.MkdirTemp("", "berth-eng-")
	if err != nil {
		t.Fatal(err)
	}
	env := &testEnv{t: t, root: root,
		project: fmt.Sprintf("e%d%s", os.Getpid()%100000, strings.ToLower(strings.NewReplacer("/", "", "_", "").Replace(t.Name())))}
	if len(env.project) > 30 {
		env.project = env.project[:30]
	}
	// A pool of our own, so that networks of tests running at the same
	// time on this machine (other packages too) do not meet.
	env.pool = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(100 + mrand.IntN(100)), byte(mrand.IntN(64) * 4), 0}), 22)
	t.Cleanup(func() { env.cleanup() })
	if env.images, err = image.Open(filepath.Join(root, "images")); err != nil {
		t.Fatal(err)
	}
	imagetest.ImportBusybox(t, env.images, nil)
	if env.vols, err = volumes.NewForRoot(root); err != nil {
		t.Fatal(err)
	}
	if env.rt, err = runtime.New(filepath.Join(root, "runtime")); err != nil {
		t.Fatal(err)
	}
	env.newNet()
	env.newEngine()
	return env
}

func (env *testEnv) newNet() {
	var err error
	// Unknown names go to a loopback port where nothing answers: the
	// tests look up only their own names.
	env.net, err = netstack.New(netstack.Config{Root: env.root, Upstreams: []string{"127.0.0.1:9"}, Pool: env.pool})
	if err != nil {
		env.t.Fatal(err)
	}
	if err := env.net.Restore(); err != nil {
		env.t.Fatal(err)
	}
}

func (env *testEnv) newEngine() {
	var err error
	env.eng, err = NewEngine(EngineConfig{Root: env.root, Images: env.images, Volumes: env.vols, Net: env.net, Runtime: env.rt,
		Events: func(ev Event) {
			env.mu.Lock()
			env.events = append(env.events, ev)
			env.mu.Unlock()
		}})
	if err != nil {
		env.t.Fatal(err)
	}
}

func (env *testEnv) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if env.eng != nil {
		for _, i := range env.eng.Instances("") {
			if err := i.Remove(ctx, RemoveOptions{Force: true, Volumes: true}); err != nil {
				env.t.Errorf("cleanup: %v", err)
			}
		}
		env.eng.Close()
	}
	if env.net != nil {
		env.net.RemoveAll()
		env.net.Close()
	}
	// Anything still mounted below the root (a failed test) goes too.
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

// project builds a project with the services given, on one default network.
func (env *testEnv) projectOf(svcs ...spec.Service) *spec.Project {
	p := &spec.Project{Name: env.project, WorkingDir: env.root,
		Networks: []spec.Network{{Name: "default", ActualName: env.project + "_default"}}}
	for _, s := range svcs {
		if s.Image == "" {
			s.Image = "busybox:latest"
		}
		if s.Networks == nil && s.NetworkMode == "" {
			s.Networks = []spec.ServiceNetwork{{Name: "default"}}
		}
		if s.Restart.Condition == "" {
			s.Restart.Condition = "no"
		}
		s.Replicas = 1
		p.Services = append(p.Services, s)
	}
	if _, err := env.net.EnsureNetworks(p.Name, p.Networks); err != nil {
		env.t.Fatal(err)
	}
	return p
}

func (env *testEnv) create(p *spec.Project, svc string) *Instance {
	env.t.Helper()
	s, ok := p.Service(svc)
	if !ok {
		env.t.Fatalf("no service %s", svc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	i, err := env.eng.Create(ctx, p, s, 1)
	if err != nil {
		env.t.Fatal(err)
	}
	return i
}

func (env *testEnv) start(i *Instance) {
	env.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := i.Start(ctx); err != nil {
		env.t.Fatal(err)
	}
}

func sdur(d time.Duration) *spec.Duration { x := spec.Duration(d); return &x }

// waitLog waits until the container's log holds an entry containing want.
func waitLog(t testing.TB, i *Instance, want string) []LogEntry {
	t.Helper()
	ch, stop := i.FollowLogs()
	defer stop()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		ents, err := ReadLogs(i.LogPath(), time.Time{}, -1)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.Contains(e.Log, want) {
				return ents
			}
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("log of %s never showed %q; it has %v", i.Name(), want, ents)
		}
	}
}

// waitLogCount waits until the container's log holds n entries.
func waitLogCount(t testing.TB, i *Instance, n int) []LogEntry {
	t.Helper()
	ch, stop := i.FollowLogs()
	defer stop()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		ents, _ := ReadLogs(i.LogPath(), time.Time{}, -1)
		if len(ents) >= n {
			return ents
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("log of %s: %d entries, want %d: %v", i.Name(), len(ents), n, ents)
		}
	}
}

// waitState waits (event driven, through Subscribe) until ok(info).
func waitState(t testing.TB, i *Instance, what string, ok func(ContainerInfo) bool) ContainerInfo {
	t.Helper()
	ch := make(chan struct{}, 1)
	unsub := i.Subscribe(func(ContainerInfo) {
		select {
		case ch <- struct{}{}:
		default:
		}
	})
	defer unsub()
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	for {
		c := i.Snapshot()
		if ok(c) {
			return c
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("%s: never %s; now %+v", i.Name(), what, c)
		}
	}
}

// leftovers lists what a removed container could leave behind.
func (env *testEnv) leftovers(name string, cgroupPaths map[string]string, hostIfs []string) []string {
	var out []string
	for _, p := range []string{env.eng.netnsPath(name), env.eng.containerDir(name), env.eng.statePath(name),
		filepath.Join(env.rt.Root(), name), filepath.Join(env.images.Root(), "containers", name)} {
		if _, err := os.Lstat(p); err == nil {
			out = append(out, "file "+p)
		}
	}
	for _, p := range cgroupPaths {
		if _, err := os.Stat(p); err == nil {
			out = append(out, "cgroup "+p)
		}
	}
	for _, h := range hostIfs {
		if _, err := netlink.LinkByName(h); err == nil {
			out = append(out, "link "+h)
		}
	}
	if len(env.net.Attachments(name)) > 0 {
		out = append(out, "attachments")
	}
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.Contains(f[4], name) && strings.HasPrefix(f[4], env.root) {
			out = append(out, "mount "+f[4])
		}
	}
	return out
}

func TestEngineLogsAndRemove(t *testing.T) {
	env := newTestEnv(t)
	p := env.projectOf(spec.Service{Name: "app",
		Command: []string{"sh", "-c", "echo hello-out; echo hello-err >&2; exec sleep 1000"}})
	i := env.create(p, "app")
	if c := i.Snapshot(); c.State != StateCreated || c.Name != env.project+"-app-1" || len(c.ID) != 64 || c.ImageDigest == "" || c.ConfigHash == "" {
		t.Fatalf("after create: %+v", c)
	}
	env.start(i)
	c := i.Snapshot()
	if c.State != StateRunning || c.Pid <= 0 || c.StartedAt.IsZero() {
		t.Fatalf("after start: %+v", c)
	}
	ents := waitLog(t, i, "hello-err")
	waitLog(t, i, "hello-out")
	for _, e := range ents {
		if strings.Contains(e.Log, "hello-err") && e.Stream != "stderr" {
			t.Errorf("stderr line in stream %q", e.Stream)
		}
	}
	rs, err := i.rc.State()
	if err != nil {
		t.Fatal(err)
	}
	var hostIfs []string
	for _, a := range c.Networks {
		hostIfs = append(hostIfs, a.HostIf)
	}
	if len(hostIfs) != 1 {
		t.Fatalf("networks: %+v", c.Networks)
	}
	if !netstack.IsNetNSMounted(env.eng.netnsPath(i.Name())) {
		t.Fatal("netns file is not mounted")
	}
	ctx := context.Background()
	if err := i.Remove(ctx, RemoveOptions{}); !errors.Is(err, ErrIsRunning) {
		t.Fatalf("remove of a running container: %v", err)
	}
	// sleep as pid 1 ignores SIGTERM: SIGKILL after the grace period.
	if err := i.Stop(ctx, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	c = i.Snapshot()
	if c.State != StateExited || c.ExitCode != 137 || !c.StoppedByUser {
		t.Fatalf("after stop: %+v", c)
	}
	// Logs stay readable after the exit.
	if ents, err := ReadLogs(i.LogPath(), time.Time{}, -1); err != nil || len(ents) != 2 {
		t.Fatalf("logs after exit: %v %v", ents, err)
	}
	if err := i.Remove(ctx, RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if left := env.leftovers(i.Name(), rs.CgroupPaths, hostIfs); len(left) > 0 {
		t.Fatalf("left after remove: %v", left)
	}
	if _, ok := env.eng.Instance(i.Name()); ok {
		t.Fatal("engine still lists the container")
	}
	if err := i.WaitCondition(ctx, "started"); !errors.Is(err, ErrRemoved) {
		t.Fatalf("WaitCondition after remove: %v", err)
	}
}

func TestEngineDNSBetweenServices(t *testing.T) {
	env := newTestEnv(t)
	p := env.projectOf(
		spec.Service{Name: "srv", Command: []string{"sh", "-c", "mkdir -p /www && echo hi-from-srv > /www/index.html && exec httpd -f -p 80 -h /www"}},
		spec.Service{Name: "cli", Command: []string{"sleep", "1000"}},
	)
	srv := env.create(p, "srv")
	cli := env.create(p, "cli")
	env.start(srv)
	env.start(cli)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, host := range []string{"srv", srv.Name()} {
		var res execResult
		var err error
		// httpd may need a moment to bind after exec.
		for k := 0; k < 50; k++ {
			cli.mu.Lock()
			r := cli.run
			cli.mu.Unlock()
			// (busybox wget -T crashes; its progress goes to stderr.)
			script := "wget -O - http://" + host + "/ 2>/dev/null"
			res, err = cli.execIn(ctx, r, []string{"sh", "-c", script}, nil)
			if err == nil && res.Code == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil || res.Code != 0 || strings.TrimSpace(res.Output) != "hi-from-srv" {
			t.Fatalf("wget http://%s/: %v code %d output %q", host, err, res.Code, res.Output)
		}
	}
}

// TestEngineStartWritesNoLayer: starting a container writes nothing into
// its own writable layer (the mount points of its /etc files come from a
// shared lower layer), and it sees its own files there.
func TestEngineStartWritesNoLayer(t *testing.T) {
	env := newTestEnv(t)
	p := env.projectOf(spec.Service{Name: "app", Hostname: "apphost", Command: []string{"sleep", "1000"}})
	app := env.create(p, "app")
	env.start(app)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	app.mu.Lock()
	r := app.run
	app.mu.Unlock()
	res, err := app.execIn(ctx, r, []string{"sh", "-c", "cat /etc/hostname; grep -c apphost /etc/hosts; grep -c nameserver /etc/resolv.conf"}, nil)
	if err != nil || res.Code != 0 || res.Output != "apphost\n1\n1\n" {
		t.Fatalf("container's /etc files: %v code %d output %q", err, res.Code, res.Output)
	}
	upper := filepath.Join(env.images.Root(), "containers", app.Name(), "upper")
	if ents, err := os.ReadDir(upper); err != nil || len(ents) != 0 {
		t.Fatalf("writable layer after start holds %v (%v), want nothing", ents, err)
	}
}

func TestEngineRestartOnFailure(t *testing.T) {
	env := newTestEnv(t)
	p := env.projectOf(spec.Service{Name: "crash", Command: []string{"sh", "-c", "echo run; exit 3"},
		Restart: spec.RestartPolicy{Condition: "on-failure", MaxAttempts: 3}})
	i := env.create(p, "crash")
	env.start(i)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := i.WaitCondition(ctx, "exited"); err != nil {
		t.Fatal(err)
	}
	c := i.Snapshot()
	if c.RestartCount != 3 || c.ExitCode != 3 || c.State != StateExited {
		t.Fatalf("after giving up: %+v", c)
	}
	// The event stream (what `berth events` shows) has every start and
	// exit; snapshots given to subscribers are conflated under load. The
	// last die event is announced just after the state turns exited,
	// which a waiter woken by an earlier change can see first: wait for
	// it.
	dies := func() (n int) {
		env.mu.Lock()
		defer env.mu.Unlock()
		for _, ev := range env.events {
			if ev.Container == i.Name() && ev.Action == "die" {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(10 * time.Second); dies() < 4 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	var starts, exits []time.Time
	var delays []time.Duration
	env.mu.Lock()
	for _, ev := range env.events {
		if ev.Container != i.Name() {
			continue
		}
		switch ev.Action {
		case "start", "restart": // the policy's restarts are "restart"
			starts = append(starts, ev.Time)
		case "die":
			exits = append(exits, ev.Time)
			if ev.Status == StateRestarting {
				delays = append(delays, ev.RestartDelay)
			}
		}
	}
	env.mu.Unlock()
	if len(starts) != 4 || len(exits) != 4 {
		t.Fatalf("%d starts and %d exits, want 4 (1 + 3 restarts)", len(starts), len(exits))
	}
	// The backoff the engine applied grows (100 ms, 200 ms, 400 ms), and
	// each gap between an exit and the next start is at least that long
	// (less the moment between deciding and announcing the exit). Gaps
	// also hold the time to create the next run, which a loaded machine
	// makes vary by seconds.
	if len(delays) != 3 {
		t.Fatalf("%d restart decisions, want 3", len(delays))
	}
	for k := range delays {
		if k > 0 && delays[k] <= delays[k-1] {
			t.Errorf("backoff does not grow: %v", delays)
		}
		if gap := starts[k+1].Sub(exits[k]); gap < delays[k]-10*time.Millisecond {
			t.Errorf("restart %d came %v after the exit, before its backoff %v", k+1, gap, delays[k])
		}
	}
	if err := i.WaitCondition(ctx, "completed_successfully"); !errors.Is(err, ErrConditionFailed) || !strings.Contains(err.Error(), i.Name()) {
		t.Errorf("completed_successfully after exit 3: %v", err)
	}
	ents, _ := ReadLogs(i.LogPath(), time.Time{}, -1)
	if len(ents) != 4 {
		t.Errorf("log has %d entries, want 4 runs: %v", len(ents), ents)
	}
	// The count survives in the state file.
	st, err := loadState(env.eng.statePath(i.Name()))
	if err != nil || st.Info.RestartCount != 3 {
		t.Errorf("state file: %+v %v", st, err)
	}
}

func TestEngineHealth(t *testing.T) {
	env := newTestEnv(t)
	retries := 2
	p := env.projectOf(
		spec.Service{Name: "good", Command: []string{"sh", "-c", "touch /tmp/ok; exec sleep 1000"},
			Healthcheck: &spec.Healthcheck{Test: []string{"CMD-SHELL", "test -f /tmp/ok"}, Interval: sdur(200 * time.Millisecond), Retries: &retries}},
		spec.Service{Name: "bad", Command: []string{"sleep", "1000"},
			Healthcheck: &spec.Healthcheck{Test: []string{"CMD", "false"}, Interval: sdur(200 * time.Millisecond), Retries: &retries}},
	)
	one := 1
	p.Services = append(p.Services, spec.Service{Name: "slow", Image: "busybox:latest", Command: []string{"sleep", "1000"},
		Networks: []spec.ServiceNetwork{{Name: "default"}}, Restart: spec.RestartPolicy{Condition: "no"}, Replicas: 1,
		Healthcheck: &spec.Healthcheck{Test: []string{"CMD", "sleep", "30"}, Interval: sdur(100 * time.Millisecond),
			Timeout: sdur(300 * time.Millisecond), Retries: &one}})
	good, bad, slow := env.create(p, "good"), env.create(p, "bad"), env.create(p, "slow")
	env.start(good)
	env.start(bad)
	env.start(slow)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := good.WaitCondition(ctx, "service_healthy"); err != nil {
		t.Fatal(err)
	}
	if c := good.Snapshot(); c.Health != HealthHealthy || len(c.HealthLog) == 0 || c.HealthLog[0].ExitCode != 0 {
		t.Fatalf("good: %+v", c)
	}
	err := bad.WaitCondition(ctx, "service_healthy")
	if !errors.Is(err, ErrConditionFailed) || !strings.Contains(err.Error(), bad.Name()) || !strings.Contains(err.Error(), "unhealthy") {
		t.Fatalf("bad: %v", err)
	}
	if c := bad.Snapshot(); c.Health != HealthUnhealthy || c.State != StateRunning || c.RestartCount != 0 {
		t.Fatalf("bad: %+v", c)
	}
	// A probe that outlives its timeout is killed and counts as failed.
	if err := slow.WaitCondition(ctx, "healthy"); !errors.Is(err, ErrConditionFailed) {
		t.Fatalf("slow: %v", err)
	}
	c := slow.Snapshot()
	if len(c.HealthLog) == 0 || c.HealthLog[0].ExitCode != -1 || !strings.Contains(c.HealthLog[0].Output, "timeout") {
		t.Fatalf("slow: health log %+v", c.HealthLog)
	}
	if d := c.HealthLog[0].End.Sub(c.HealthLog[0].Start); d > 10*time.Second {
		t.Fatalf("slow: the probe was not killed at its timeout (ran %v)", d)
	}
}

func TestEngineRestartOnUnhealthy(t *testing.T) {
	env := newTestEnv(t)
	retries := 1
	p := env.projectOf(spec.Service{Name: "sick", Command: []string{"sleep", "1000"},
		StopGracePeriod: sdur(100 * time.Millisecond),
		Healthcheck:     &spec.Healthcheck{Test: []string{"CMD", "false"}, Interval: sdur(100 * time.Millisecond), Retries: &retries},
		Extensions:      &spec.BerthExtension{RestartOnUnhealthy: true, UnhealthyRestartLimit: 2}})
	i := env.create(p, "sick")
	env.start(i)
	c := waitState(t, i, "restarted twice and unhealthy again", func(c ContainerInfo) bool {
		return c.RestartCount == 2 && c.Health == HealthUnhealthy && c.State == StateRunning
	})
	// The limit is reached: it stays up, unhealthy.
	time.Sleep(600 * time.Millisecond)
	if c2 := i.Snapshot(); c2.RestartCount != 2 || c2.State != StateRunning || c2.StartedAt != c.StartedAt {
		t.Fatalf("restarted past the limit: %+v", c2)
	}
}

func TestEngineStopSignalAndGrace(t *testing.T) {
	env := newTestEnv(t)
	p := env.projectOf(
		spec.Service{Name: "polite", StopSignal: "SIGUSR1",
			Command: []string{"sh", "-c", `trap "echo got-usr1; exit 7" USR1; echo ready; while true; do sleep 0.05; done`}},
		spec.Service{Name: "stubborn", StopGracePeriod: sdur(300 * time.Millisecond),
			Command: []string{"sh", "-c", `trap "echo ignored" TERM; echo ready; while true; do sleep 0.05; done`}},
	)
	polite, stubborn := env.create(p, "polite"), env.create(p, "stubborn")
	env.start(polite)
	env.start(stubborn)
	waitLog(t, polite, "ready")
	waitLog(t, stubborn, "ready")
	ctx := context.Background()
	if err := polite.Stop(ctx, -1); err != nil {
		t.Fatal(err)
	}
	if c := polite.Snapshot(); c.ExitCode != 7 || c.State != StateExited {
		t.Fatalf("polite: %+v", c)
	}
	waitLog(t, polite, "got-usr1")
	if err := stubborn.Stop(ctx, -1); err != nil {
		t.Fatal(err)
	}
	if c := stubborn.Snapshot(); c.ExitCode != 137 || c.State != StateExited {
		t.Fatalf("stubborn: %+v", c)
	}
	waitLog(t, stubborn, "ignored")
}

func TestEngineAdopt(t *testing.T) {
	env := newTestEnv(t)
	p := env.projectOf(
		spec.Service{Name: "steady", Command: []string{"sleep", "1000"}},
		spec.Service{Name: "always", Command: []string{"sh", "-c", "echo up; exec sleep 1000"},
			Restart: spec.RestartPolicy{Condition: "always"}},
	)
	steady, always := env.create(p, "steady"), env.create(p, "always")
	env.start(steady)
	env.start(always)
	waitLog(t, always, "up")
	pid, alwaysPid := steady.Snapshot().Pid, always.Snapshot().Pid

	// The daemon "dies": its engine and network manager go away, the
	// containers keep running.
	env.eng.Close()
	env.net.Close()
	// While nobody watches, one container dies.
	if err := syscall.Kill(alwaysPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)

	var err error
	if env.rt, err = runtime.New(filepath.Join(env.root, "runtime")); err != nil {
		t.Fatal(err)
	}
	env.newNet()
	env.newEngine()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got, err := env.eng.Adopt(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("adopted %d containers", len(got))
	}
	steady2, _ := env.eng.Instance(steady.Name())
	if c := steady2.Snapshot(); c.State != StateRunning || c.Pid != pid {
		t.Fatalf("steady after adopt: %+v (pid was %d)", c, pid)
	}
	if addrs := env.net.DNSServer(netstack.NetworkID(p.Name, "default")).Lookup("steady"); len(addrs) != 1 {
		t.Fatalf("steady does not resolve after adopt: %v", addrs)
	}
	always2, _ := env.eng.Instance(always.Name())
	c := waitState(t, always2, "restarted by its policy", func(c ContainerInfo) bool {
		return c.State == StateRunning && c.RestartCount == 1
	})
	if c.Pid == alwaysPid {
		t.Fatalf("always: same pid after restart: %+v", c)
	}
	// Ingestion resumed: the restarted run's line is in the log too.
	if ents := waitLogCount(t, always2, 2); ents[0].Log != "up\n" || ents[1].Log != "up\n" {
		t.Fatalf("log after adopt: %v", ents)
	}
	// The adopted process is watched: its exit is seen.
	if err := steady2.Kill(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := steady2.WaitCondition(ctx, "exited"); err != nil {
		t.Fatal(err)
	}
	if c := steady2.Snapshot(); c.ExitCode != 137 {
		t.Fatalf("steady exit: %+v", c)
	}
}
