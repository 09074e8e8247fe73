package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/netstack"
	"github.com/berth-dev/berth/spec"
)

// execOut runs a command in a running container and returns its output.
func execOut(t testing.TB, i *Instance, args ...string) (int, string) {
	t.Helper()
	i.mu.Lock()
	r := i.run
	i.mu.Unlock()
	if r == nil {
		t.Fatalf("%s is not running", i.Name())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := i.execIn(ctx, r, args, nil)
	if err != nil {
		t.Fatalf("exec %v in %s: %v", args, i.Name(), err)
	}
	return res.Code, res.Output
}

func TestEngineNetworkModes(t *testing.T) {
	env := newTestEnv(t)
	p := env.projectOf(
		spec.Service{Name: "main", Command: []string{"sleep", "1000"}},
		spec.Service{Name: "side", NetworkMode: "service:main", Command: []string{"sleep", "1000"}},
		spec.Service{Name: "alone", NetworkMode: "none", Command: []string{"sleep", "1000"}},
		spec.Service{Name: "hostnet", NetworkMode: "host", Command: []string{"sleep", "1000"}},
	)
	main := env.create(p, "main")
	side := env.create(p, "side")
	alone := env.create(p, "alone")
	hostnet := env.create(p, "hostnet")
	for _, i := range []*Instance{main, side, alone, hostnet} {
		env.start(i)
	}
	addr := main.Snapshot().Networks[0].Address.Addr().String()
	if _, out := execOut(t, side, "ip", "-4", "addr", "show", "eth0"); !strings.Contains(out, addr) {
		t.Errorf("service:main does not share main's namespace (%s): %s", addr, out)
	}
	if _, out := execOut(t, alone, "ip", "-o", "link"); strings.Contains(out, "eth0") || !strings.Contains(out, "lo") {
		t.Errorf("none: links %s", out)
	}
	if _, out := execOut(t, alone, "ip", "-o", "link", "show", "lo"); !strings.Contains(out, "UP") {
		t.Errorf("none: lo is not up: %s", out)
	}
	// thread-self: the runtime retires threads it moved into container
	// namespaces, and the main thread cannot exit, so /proc/self (the
	// main thread's view) may name a container's namespace.
	hostNS, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if _, out := execOut(t, hostnet, "readlink", "/proc/self/ns/net"); strings.TrimSpace(out) != hostNS {
		t.Errorf("host: container netns %q, host %q", out, hostNS)
	}
	_, mainNS := execOut(t, main, "readlink", "/proc/self/ns/net")
	if _, out := execOut(t, side, "readlink", "/proc/self/ns/net"); out != mainNS || strings.TrimSpace(out) == hostNS {
		t.Errorf("service:main: netns %q, main's %q", out, mainNS)
	}
	// Removing everything leaves no netns files.
	ctx := context.Background()
	for _, i := range []*Instance{side, main, alone, hostnet} {
		if err := i.Remove(ctx, RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
	}
	if ents, _ := os.ReadDir(env.eng.netnsPath("")); len(ents) != 0 {
		t.Errorf("netns files left: %v", ents)
	}
}

func TestEngineHooksPauseAndPorts(t *testing.T) {
	env := newTestEnv(t)
	// A free port on the host for the published port.
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	p := env.projectOf(spec.Service{Name: "web",
		Command: []string{"sh", "-c", "mkdir -p /www && echo page > /www/index.html && exec httpd -f -p 80 -h /www"},
		Ports:   []spec.Port{{Target: 80, Published: fmt.Sprint(port), HostIP: "127.0.0.1", Protocol: "tcp"}},
		CapDrop: []string{"CAP_NET_ADMIN", "CAP_SYS_ADMIN"},
		PostStart: []spec.Hook{
			{Command: []string{"sh", "-c", "echo started > /tmp/post_start"}},
		},
		PreStop: []spec.Hook{{Command: []string{"sh", "-c", "echo bye > /proc/1/fd/1"}}},
	})
	i := env.create(p, "web")
	env.start(i)
	if code, out := execOut(t, i, "cat", "/tmp/post_start"); code != 0 || out != "started\n" {
		t.Errorf("post_start hook: %d %q", code, out)
	}
	if code, _ := execOut(t, i, "ip", "link", "set", "lo", "mtu", "1300"); code == 0 {
		t.Error("the container has CAP_NET_ADMIN after cap_drop")
	}
	c := i.Snapshot()
	if len(c.Publishers) != 1 || c.Publishers[0].HostPort != uint16(port) {
		t.Fatalf("publishers: %+v", c.Publishers)
	}
	get := func() (string, error) {
		var lastErr error
		for k := 0; k < 50; k++ {
			conn, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
			if err != nil {
				lastErr = err
				time.Sleep(100 * time.Millisecond)
				continue
			}
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(conn, "GET / HTTP/1.0\r\n\r\n")
			b, err := io.ReadAll(conn)
			conn.Close()
			return string(b), err
		}
		return "", lastErr
	}
	if out, err := get(); err != nil || !strings.HasSuffix(out, "page\n") {
		t.Fatalf("published port: %q %v", out, err)
	}

	if err := i.Pause(); err != nil {
		t.Fatal(err)
	}
	if c := i.Snapshot(); c.State != StatePaused {
		t.Fatalf("after pause: %s", c.State)
	}
	if err := i.Unpause(); err != nil {
		t.Fatal(err)
	}
	if c := i.Snapshot(); c.State != StateRunning {
		t.Fatalf("after unpause: %s", c.State)
	}
	// A paused container still stops.
	if err := i.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := i.Stop(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	waitLog(t, i, "bye")
	if c := i.Snapshot(); c.State != StateExited || len(c.Publishers) != 0 {
		t.Fatalf("after stop: %+v", c)
	}
	// The host port is free while the container is stopped.
	if l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
		t.Errorf("host port still held after stop: %v", err)
	} else {
		l.Close()
	}
	// Start again: the same container, its files kept.
	env.start(i)
	if code, _ := execOut(t, i, "test", "-f", "/tmp/post_start"); code != 0 {
		t.Error("the writable layer was not kept across a restart")
	}
	if out, err := get(); err != nil || !strings.HasSuffix(out, "page\n") {
		t.Fatalf("published port after restart: %q %v", out, err)
	}
}

func TestEngineOOM(t *testing.T) {
	env := newTestEnv(t)
	p := env.projectOf(spec.Service{Name: "hog",
		Resources: spec.Resources{MemoryLimit: 16 << 20, MemorySwap: 16 << 20},
		// dd touches its whole 200 MiB buffer, as pid 1: the OOM killer
		// has no other candidate.
		Command: []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"}})
	i := env.create(p, "hog")
	env.start(i)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := i.WaitCondition(ctx, "exited"); err != nil {
		t.Fatal(err)
	}
	if c := i.Snapshot(); !c.OOMKilled || c.ExitCode != 137 {
		t.Fatalf("after the OOM kill: %+v", c)
	}
}

func TestEngineRenewsNetNSAndRebootAdopt(t *testing.T) {
	env := newTestEnv(t)
	p := env.projectOf(
		spec.Service{Name: "srv", Command: []string{"sh", "-c", "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www"},
			Restart: spec.RestartPolicy{Condition: "always"}},
		spec.Service{Name: "cli", Command: []string{"sleep", "1000"}},
	)
	srv, cli := env.create(p, "srv"), env.create(p, "cli")
	env.start(srv)
	env.start(cli)
	ctx := context.Background()
	// A host reboot, as the engine sees it: the processes are gone,
	// the netns bind mounts too, the boot id differs.
	env.eng.Close()
	for _, i := range []*Instance{srv, cli} {
		syscall.Kill(i.Snapshot().Pid, syscall.SIGKILL)
		st, err := loadState(env.eng.statePath(i.Name()))
		if err != nil {
			t.Fatal(err)
		}
		st.BootID = "an-earlier-boot"
		if err := saveState(env.eng.statePath(i.Name()), "", st, false); err != nil {
			t.Fatal(err)
		}
		path := env.eng.netnsPath(i.Name())
		if err := netstack.RemoveNetNS(path); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, nil, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	env.newEngine()
	got, err := env.eng.Adopt(ctx)
	if err != nil || len(got) != 2 {
		t.Fatalf("adopt: %d %v", len(got), err)
	}
	srv2, _ := env.eng.Instance(srv.Name())
	cli2, _ := env.eng.Instance(cli.Name())
	// Not restarted by the engine (boot restore is the daemon's), exit
	// recorded.
	if c := srv2.Snapshot(); c.State != StateExited || c.ExitCode != 255 || c.RestartCount != 0 || c.Error == "" {
		t.Fatalf("srv after the reboot: %+v", c)
	}
	env.start(srv2)
	env.start(cli2)
	var code int
	var out string
	for k := 0; k < 50; k++ {
		if code, out = execOut(t, cli2, "sh", "-c", "wget -O - http://srv/ 2>/dev/null"); code == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code != 0 || out != "hello\n" {
		t.Fatalf("srv unreachable after the netns was renewed: %d %q", code, out)
	}
	if err := srv2.Remove(ctx, RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(env.eng.netnsPath(srv.Name())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("netns file left: %v", err)
	}
}

func TestEngineTTYLogs(t *testing.T) {
	env := newTestEnv(t)
	p := env.projectOf(spec.Service{Name: "term", Tty: true,
		Command: []string{"sh", "-c", "test -t 1 && echo on-a-tty; exec sleep 1000"}})
	i := env.create(p, "term")
	env.start(i)
	waitLog(t, i, "on-a-tty")
}

// zombies counts our children that exited and were not reaped.
func zombies(t testing.TB) int {
	ents, _ := os.ReadDir("/proc")
	n := 0
	me := fmt.Sprint(os.Getpid())
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[0] == "Z" && f[1] == me {
			n++
		}
	}
	return n
}

func TestEngineRemoveCreatedReaps(t *testing.T) {
	env := newTestEnv(t)
	p := env.projectOf(spec.Service{Name: "idle", Command: []string{"true"}})
	before := zombies(t)
	i := env.create(p, "idle")
	if err := i.Remove(context.Background(), RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := zombies(t); n > before {
		t.Fatalf("%d zombie children after removing a created container", n-before)
	}
}

func TestEngineVolumesAndVolumesFrom(t *testing.T) {
	env := newTestEnv(t)
	p := env.projectOf(
		spec.Service{Name: "data", Command: []string{"sh", "-c", "echo kept > /data/file; exec sleep 1000"},
			Mounts: []spec.Mount{{Type: "volume", Source: "vol", Target: "/data"}}},
		spec.Service{Name: "reader", VolumesFrom: []string{"data:ro"}, Command: []string{"sleep", "1000"}},
	)
	p.Volumes = []spec.Volume{{Name: "vol", ActualName: env.project + "_vol"}}
	data := env.create(p, "data")
	env.start(data)
	reader := env.create(p, "reader")
	env.start(reader)
	var out string
	for k := 0; k < 50; k++ {
		if _, out = execOut(t, reader, "cat", "/data/file"); out == "kept\n" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out != "kept\n" {
		t.Fatalf("volumes_from: /data/file = %q", out)
	}
	if code, _ := execOut(t, reader, "touch", "/data/other"); code == 0 {
		t.Error("volumes_from :ro is writable")
	}
	ctx := context.Background()
	for _, i := range []*Instance{reader, data} {
		if err := i.Remove(ctx, RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
	}
	// The named volume outlives its containers.
	v, err := env.vols.Inspect(env.project + "_vol")
	if err != nil || len(v.UsedBy) != 0 {
		t.Fatalf("volume after remove: %+v %v", v, err)
	}
	if b, err := os.ReadFile(v.Mountpoint + "/file"); err != nil || string(b) != "kept\n" {
		t.Fatalf("volume content: %q %v", b, err)
	}
}
