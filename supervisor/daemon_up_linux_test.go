package supervisor

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/api"
	"github.com/berth-dev/berth/supervisor/image"
)

// TestDaemonFailedUpRunScale: a failed up reports every error and leaves
// what down removes; run streams a one-off's output and exit code; scale
// adds and removes replicas.
func TestDaemonFailedUpRunScale(t *testing.T) {
	env := newDaemonEnv(t)
	_, c := env.start()
	ctx := context.Background()

	// A port the test holds.
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port

	sleeper := func(name string) spec.Service {
		return spec.Service{Name: name, Image: "busybox:latest", Replicas: 1,
			Command:  []string{"sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait; done"},
			Networks: []spec.ServiceNetwork{{Name: "default"}}, Restart: spec.RestartPolicy{Condition: "no"},
			StopGracePeriod: sdur(time.Second)}
	}
	pub := sleeper("pub")
	pub.Ports = []spec.Port{{Target: 80, Published: strconv.Itoa(port), HostIP: "127.0.0.1", Protocol: "tcp"}}
	bad := sleeper("bad")
	bad.Image, bad.PullPolicy = "nosuch.invalid/none:latest", "never"
	dep := sleeper("dep")
	dep.DependsOn = []spec.Dependency{{Service: "pub", Condition: "service_started", Required: true}}
	p := &spec.Project{Name: env.project, WorkingDir: env.root,
		Networks: []spec.Network{{Name: "default", ActualName: env.project + "_default"}},
		Services: []spec.Service{bad, dep, sleeper("ok"), pub}}

	_, res := env.up(c, p, api.UpOptions{})
	errs := strings.Join(res.Errors, "\n")
	t.Logf("failed up:\n%s", errs)
	if !strings.Contains(errs, `service "pub"`) || !strings.Contains(errs, strconv.Itoa(port)) {
		t.Errorf("up errors do not report the port in use:\n%s", errs)
	}
	if !strings.Contains(errs, "nosuch.invalid/none") {
		t.Errorf("up errors do not report the missing image:\n%s", errs)
	}
	if !strings.Contains(errs, env.project+"-dep-1: not run") {
		t.Errorf("up errors do not say that dep was not started:\n%s", errs)
	}
	ps := psByName(t, c, env.project)
	if s := ps[env.project+"-ok-1"]; s.State != StateRunning {
		t.Errorf("ok after a failed up: %+v", s)
	}
	if _, ok := ps[env.project+"-pub-1"]; ok {
		t.Errorf("pub has a container although its port is in use: %+v", ps)
	}
	if s, ok := ps[env.project+"-dep-1"]; ok && s.State == StateRunning {
		t.Errorf("dep started although pub failed: %+v", s)
	}

	// run --rm: output and exit code come back; the container goes.
	var out []string
	rres, err := c.Run(ctx, api.RunRequest{Project: p, Service: "ok", NoDeps: true, Remove: true,
		Command: []string{"sh", "-c", "echo one; echo two >&2; exit 3"}}, nil,
		func(l api.LogLine) { out = append(out, l.Stream+":"+l.Log) })
	if err != nil || rres.Err() != nil {
		t.Fatalf("run: %v %v", err, rres.Err())
	}
	if rres.ExitCode != 3 || len(out) != 2 || !contains(out, "stdout:one") || !contains(out, "stderr:two") {
		t.Errorf("run: exit %d, output %q", rres.ExitCode, out)
	}
	for n := range psByName(t, c, env.project) {
		if strings.Contains(n, "-run-") {
			t.Errorf("run --rm left %s", n)
		}
	}

	// Scale ok to 2, then back to 1 (the highest number goes).
	l.Close()
	p2 := *p
	p2.Services = []spec.Service{sleeper("ok")}
	_, res = env.up(c, &p2, api.UpOptions{Scale: map[string]int{"ok": 2}, RemoveOrphans: true})
	if res.Err() != nil {
		t.Fatalf("up --scale ok=2: %v", res.Err())
	}
	ps = psByName(t, c, env.project)
	if len(ps) != 2 || ps[env.project+"-ok-2"].State != StateRunning {
		t.Fatalf("after scale 2: %+v", ps)
	}
	_, res = env.up(c, &p2, api.UpOptions{Scale: map[string]int{"ok": 1}})
	if res.Err() != nil {
		t.Fatalf("up --scale ok=1: %v", res.Err())
	}
	ps = psByName(t, c, env.project)
	if _, ok := ps[env.project+"-ok-2"]; len(ps) != 1 || ok {
		t.Fatalf("after scale 1: %+v", ps)
	}

	// logs -f follows a container that appears while following.
	fctx, fcancel := context.WithCancel(ctx)
	defer fcancel()
	got := make(chan api.LogLine, 100)
	go c.Logs(fctx, api.LogsRequest{Project: env.project, Follow: true, Tail: 0}, func(l api.LogLine) error {
		select {
		case got <- l:
		default:
		}
		return nil
	})
	talker := sleeper("talker")
	talker.Command = []string{"sh", "-c", "trap 'exit 0' TERM; while :; do echo hello-follow; sleep 0.2; done"}
	p3 := p2
	p3.Services = []spec.Service{sleeper("ok"), talker}
	_, res = env.up(c, &p3, api.UpOptions{})
	if res.Err() != nil {
		t.Fatalf("up with talker: %v", res.Err())
	}
	select {
	case l := <-got:
		if l.Log != "hello-follow" || l.Container != env.project+"-talker-1" || l.Service != "talker" {
			t.Errorf("followed line %+v", l)
		}
	case <-time.After(30 * time.Second):
		t.Error("logs -f did not follow the new container")
	}
	fcancel()

	tr := env.traces(c)
	res, err = c.Down(ctx, api.DownRequest{ProjectName: env.project, RemoveOrphans: true, Volumes: true, RMI: "all"}, nil)
	if err != nil || res.Err() != nil {
		t.Fatalf("down: %v %v", err, res.Err())
	}
	// --rmi all removed the image the project used.
	if st, err := image.Open(filepath.Join(env.root, "images")); err != nil {
		t.Fatal(err)
	} else if _, err := st.Get("busybox:latest"); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("busybox after down --rmi all: %v", err)
	}
	if left := env.leftovers(tr); len(left) > 0 {
		t.Errorf("left after down: %v", left)
	}
}
