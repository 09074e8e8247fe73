package supervisor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/supervisor/api"
	"golang.org/x/sys/unix"
)

// killAndReap kills pid and waits until it is gone, reaping it if it is
// our zombie (the in-process daemon was its parent).
func killAndReap(t *testing.T, pid int) {
	t.Helper()
	syscall.Kill(pid, syscall.SIGKILL)
	waitFor(t, fmt.Sprintf("pid %d gone", pid), func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		s := string(b)
		if f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(f) > 0 && f[0] == "Z" {
			var ws unix.WaitStatus
			unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		}
		return false
	})
}

// TestDaemonBootRestore pretends the host restarted: every container died
// with the daemon. The next daemon brings back restart: always and
// unless-stopped services in dependency order, waiting for health, and
// leaves the one the user had stopped.
func TestDaemonBootRestore(t *testing.T) {
	env := newDaemonEnv(t)
	d1, err := NewDaemon(env.config())
	if err != nil {
		t.Fatal(err)
	}
	if err := d1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d1.Close() })
	c1, err := api.Dial(env.root)
	if err != nil {
		t.Fatal(err)
	}
	p := env.stack("always")
	for k := range p.Services {
		if p.Services[k].Name == "api" {
			p.Services[k].Restart.Condition = "unless-stopped"
		}
	}
	_, res := env.up(c1, p, api.UpOptions{Wait: true, WaitTimeout: time.Minute})
	if res.Err() != nil {
		t.Fatalf("up: %v", res.Err())
	}
	ctx := context.Background()
	web := env.project + "-web-1"
	if _, err := c1.Container(ctx, web, api.ActionStop, api.ContainerRequest{}); err != nil {
		t.Fatal(err)
	}
	before := psByName(t, c1, env.project)
	c1.Close()
	d1.Close()
	// The "reboot": every container process dies with the daemon.
	for _, s := range before {
		if s.Pid > 0 {
			killAndReap(t, s.Pid)
		}
	}

	// The containers last started in another boot, as after a reboot.
	stateDir := filepath.Join(env.root, "state", "containers")
	ents, err := os.ReadDir(stateDir)
	if err != nil || len(ents) != 3 {
		t.Fatalf("container state files: %v %v", ents, err)
	}
	for _, e := range ents {
		path := filepath.Join(stateDir, e.Name())
		st, err := loadState(path)
		if err != nil {
			t.Fatal(err)
		}
		st.BootID = "an-earlier-boot"
		if err := saveState(path, "", st, true); err != nil {
			t.Fatal(err)
		}
	}
	cfg2 := env.config()
	cfg2.NoBootRestore = false
	d2, err := NewDaemon(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	evs, unsub := d2.bus.subscribe(env.project)
	defer unsub()
	if err := d2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d2.Close() })
	select {
	case <-d2.bootDone:
	case <-time.After(2 * time.Minute):
		t.Fatal("boot restore did not finish")
	}
	var seq []string
	for len(evs) > 0 {
		e := <-evs
		switch {
		case e.Action == "start":
			seq = append(seq, "start "+e.Service)
		case e.Action == "health_status" && e.Status == HealthHealthy:
			seq = append(seq, "healthy "+e.Service)
		}
	}
	// api waits for db to be healthy; web, stopped by the user, stays.
	want := "start db,healthy db,start api"
	if got := strings.Join(seq, ","); !strings.HasPrefix(got, want) || strings.Contains(got, "web") {
		t.Errorf("boot restore events %q, want %q first and nothing of web", got, want)
	}
	c2, err := api.Dial(env.root)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	after := psByName(t, c2, env.project)
	for _, s := range []string{"db", "api"} {
		n := env.project + "-" + s + "-1"
		if after[n].State != StateRunning || after[n].Pid == before[n].Pid {
			t.Errorf("%s after boot restore: %+v", n, after[n])
		}
	}
	if after[web].State != StateExited {
		t.Errorf("web (stopped by the user) after boot restore: %+v", after[web])
	}
	tr := env.traces(c2)
	res, err = c2.Down(ctx, api.DownRequest{ProjectName: env.project, Volumes: true}, nil)
	if err != nil || res.Err() != nil {
		t.Fatalf("down: %v %v", err, res.Err())
	}
	if left := env.leftovers(tr); len(left) > 0 {
		t.Errorf("left after down: %v", left)
	}
}
