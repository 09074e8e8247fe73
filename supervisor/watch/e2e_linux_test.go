package watch

import (
	"context"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor"
	"github.com/berth-dev/berth/supervisor/api"
	"github.com/berth-dev/berth/supervisor/build"
	"github.com/berth-dev/berth/supervisor/image"
	"github.com/berth-dev/berth/supervisor/image/imagetest"
	"github.com/berth-dev/berth/supervisor/runtime"
)

// The end-to-end tests run a real daemon (in-process) on a temporary
// berth root with a busybox image, bring a stack with develop.watch
// rules up, and watch it with the real controller.

// stackEnv is a daemon on a temporary root with one project up.
type stackEnv struct {
	t       testing.TB
	root    string
	dir     string // project directory (host side of the watched paths)
	project *spec.Project
	client  *api.Client
	rt      *runtime.Runtime
	builder *build.Builder
	port    int // web's published port on 127.0.0.1
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// newStack starts a daemon and brings up the compose file (with
// $PORT, $NAME substituted) written in a new project directory, after
// prepare made the host files.
func newStack(t testing.TB, compose string, prepare func(dir string)) *stackEnv {
	t.Helper()
	return newStackWith(t, compose, prepare, nil)
}

// newStackWith is newStack with a hook that runs just before up.
func newStackWith(t testing.TB, compose string, prepare func(dir string), beforeUp func(*stackEnv)) *stackEnv {
	t.Helper()
	requirePrivileged(t)
	root, err := os.MkdirTemp("", "berth-watch-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("berth root %s", root)
	env := &stackEnv{t: t, root: root, dir: filepath.Join(root, "project"), port: freePort(t)}
	name := fmt.Sprintf("w%d%d", os.Getpid()%100000, mrand.IntN(1000))
	pool := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(100 + mrand.IntN(100)), byte(mrand.IntN(64) * 4), 0}), 22)
	cfg := supervisor.DaemonConfig{Root: root, Version: "test", Upstreams: []string{"127.0.0.1:9"}, Pool: pool, NoBootRestore: true}
	t.Cleanup(func() { env.sweep(cfg) })

	if err := os.MkdirAll(env.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	prepare(env.dir)
	compose = strings.NewReplacer("$PORT", fmt.Sprint(env.port), "$NAME", name).Replace(compose)
	if err := os.WriteFile(filepath.Join(env.dir, "compose.yaml"), []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := spec.Load(context.Background(), spec.LoadOptions{WorkingDir: env.dir, ProjectName: name})
	if err != nil {
		t.Fatal(err)
	}
	env.project = p

	st, err := image.Open(filepath.Join(root, "images"))
	if err != nil {
		t.Fatal(err)
	}
	imagetest.ImportBusybox(t, st, map[string]string{"srv/index.html": "from-image\n"})
	if env.builder, err = build.New(root, st, nil); err != nil {
		t.Fatal(err)
	}
	d, err := supervisor.NewDaemon(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if env.client, err = api.Dial(root); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.client.Close() })
	if env.rt, err = runtime.New(filepath.Join(root, "runtime")); err != nil {
		t.Fatal(err)
	}
	if beforeUp != nil {
		beforeUp(env)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := env.client.Up(ctx, api.UpRequest{Project: env.project, Options: api.UpOptions{Detach: true, Wait: true, WaitTimeout: time.Minute}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	return env
}

// sweep takes the project down through a fresh daemon (the test's own
// is closed by then) and removes what a failed test left: containers,
// networks, mounts, the root.
func (env *stackEnv) sweep(cfg supervisor.DaemonConfig) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if d, err := supervisor.NewDaemon(cfg); err == nil {
		if err := d.Start(ctx); err == nil {
			if c, err := api.Dial(env.root); err == nil && env.project != nil {
				if _, err := c.Down(ctx, api.DownRequest{ProjectName: env.project.Name, Volumes: true}, nil); err != nil {
					env.t.Logf("down: %v", err)
				}
				c.Close()
			}
			for _, i := range d.Engine().Instances("") {
				_ = i.Remove(ctx, supervisor.RemoveOptions{Force: true, Volumes: true})
			}
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

// watch runs a session on the stack; its output goes to the returned
// buffer.
func (env *stackEnv) watch(services ...string) *syncBuffer {
	env.t.Helper()
	out := &syncBuffer{}
	ready := make(chan struct{})
	s, err := NewSession(Options{Project: env.project, Services: services, Out: out,
		Controller: NewDaemonController(env.project, env.client, env.rt, env.builder),
		Ready:      func() { close(ready) }})
	if err != nil {
		env.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	env.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			env.t.Errorf("Run: %v", err)
		}
		env.t.Logf("watch output:\n%s", out)
	})
	select {
	case <-ready:
	case err := <-done:
		env.t.Fatalf("Run: %v", err)
	}
	return out
}

// get fetches a path from web's published port: status and body.
func (env *stackEnv) get(path string) (int, string) {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get(fmt.Sprintf("http://127.0.0.1:%d%s", env.port, path))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitGet waits until path is served with status and body.
func (env *stackEnv) waitGet(path string, status int, body string) {
	env.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, got := env.get(path)
		if code == status && (body == "" || got == body) {
			return
		}
		if time.Now().After(deadline) {
			env.t.Fatalf("GET %s = %d %q, want %d %q", path, code, got, status, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const webStack = `
name: $NAME
services:
  web:
    image: busybox:latest
    command: ["httpd", "-f", "-p", "8080", "-h", "/srv"]
    ports: ["127.0.0.1:$PORT:8080"]
    stop_grace_period: 1s
    develop:
      watch:
        - path: ./site
          target: /srv
          action: sync
          ignore: ["*.bak", "private/"]
`

func TestE2ESync(t *testing.T) {
	env := newStack(t, webStack, func(dir string) {
		write(t, filepath.Join(dir, "site/keep.txt"), "keep")
	})
	env.waitGet("/index.html", 200, "from-image\n") // the image's upper layer
	out := env.watch()

	// An edit on the host is served.
	write(t, filepath.Join(env.dir, "site/index.html"), "v1\n")
	env.waitGet("/index.html", 200, "v1\n")
	write(t, filepath.Join(env.dir, "site/index.html"), "v2\n")
	env.waitGet("/index.html", 200, "v2\n")

	// A new subdirectory: its first file and one written later.
	write(t, filepath.Join(env.dir, "site/sub/deeper/a.html"), "a")
	env.waitGet("/sub/deeper/a.html", 200, "a")
	write(t, filepath.Join(env.dir, "site/sub/deeper/b.html"), "b")
	env.waitGet("/sub/deeper/b.html", 200, "b")

	// Ignored files are not synced: write them, then a file that is
	// synced after them; once that one is served, they are not.
	write(t, filepath.Join(env.dir, "site/old.bak"), "no")
	write(t, filepath.Join(env.dir, "site/private/p.html"), "no")
	write(t, filepath.Join(env.dir, "site/.index.html.swp"), "no")
	write(t, filepath.Join(env.dir, "site/after.html"), "after")
	env.waitGet("/after.html", 200, "after")
	for _, p := range []string{"/old.bak", "/private/p.html", "/.index.html.swp"} {
		if code, _ := env.get(p); code != 404 {
			t.Errorf("GET %s = %d, want 404 (ignored)", p, code)
		}
	}

	// A deleted file disappears, a deleted directory too.
	if err := os.Remove(filepath.Join(env.dir, "site/index.html")); err != nil {
		t.Fatal(err)
	}
	env.waitGet("/index.html", 404, "")
	if err := os.RemoveAll(filepath.Join(env.dir, "site/sub")); err != nil {
		t.Fatal(err)
	}
	env.waitGet("/sub/deeper/b.html", 404, "")

	if !strings.Contains(out.String(), "web: synced 1 file to /srv") {
		t.Errorf("output lacks a sync line:\n%s", out)
	}

	// Recreated (a fresh container filesystem): the watched paths are
	// synced again once it starts (docker/compose#12592).
	write(t, filepath.Join(env.dir, "site/index.html"), "v3\n")
	env.waitGet("/index.html", 200, "v3\n")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := env.client.Up(ctx, api.UpRequest{Project: env.project, Services: []string{"web"},
		Options: api.UpOptions{Detach: true, ForceRecreate: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	env.waitGet("/index.html", 200, "v3\n")
	env.waitGet("/keep.txt", 200, "keep")
	env.waitGet("/after.html", 200, "after")
}

const actionStack = `
name: $NAME
services:
  rs:
    image: busybox:latest
    command: ["sh", "-c", "echo start >> /log/starts; trap 'exit 0' TERM; while :; do sleep 0.1; done"]
    volumes: ["./log:/log"]
    stop_grace_period: 1s
    develop:
      watch:
        - path: ./rs
          target: /app
          action: sync+restart
  ex:
    image: busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
    volumes: ["./out:/out"]
    stop_grace_period: 1s
    develop:
      watch:
        - path: ./ex
          target: /app
          action: sync+exec
          exec:
            command: ["sh", "-c", "cat /app/in.txt > /out/marker"]
  own:
    image: busybox:latest
    user: nobody
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
    stop_grace_period: 1s
    develop:
      watch:
        - path: ./own
          target: /home/app
          action: sync
        - path: ./conf.txt
          target: /home/conf.txt
          action: sync
        - path: ./t
          target: /run/t/app
          action: sync
    volumes:
      - data:/data
      - type: tmpfs
        target: /run/t
  vol:
    image: busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
    stop_grace_period: 1s
    volumes: ["data:/data"]
    develop:
      watch:
        - path: ./v
          target: /data/app
          action: sync
volumes:
  data:
`

func TestE2EActions(t *testing.T) {
	env := newStack(t, actionStack, func(dir string) {
		write(t, filepath.Join(dir, "conf.txt"), "c0")
		for _, d := range []string{"rs", "ex", "log", "out", "own", "t", "v"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	})
	out := env.watch()
	starts := func() int {
		b, _ := os.ReadFile(filepath.Join(env.dir, "log/starts"))
		return strings.Count(string(b), "start")
	}
	// up --wait returns once the process runs; its first line may
	// come a moment later.
	waitFor(t, "rs first start logged", func() bool { return starts() >= 1 })
	if n := starts(); n != 1 {
		t.Fatalf("rs started %d times before any change", n)
	}

	// Three files in one batch: one restart, and the files are in the
	// restarted container.
	for i := range 3 {
		write(t, filepath.Join(env.dir, fmt.Sprintf("rs/%d.txt", i)), fmt.Sprint(i))
	}
	waitFor(t, "rs restarted", func() bool { return strings.Contains(out.String(), "rs: restarted") })
	waitFor(t, "rs start logged", func() bool { return starts() >= 2 })
	time.Sleep(500 * time.Millisecond) // a second restart would show up here
	if n := starts(); n != 2 {
		t.Errorf("rs started %d times, want 2 (one restart for one batch)", n)
	}
	if n := strings.Count(out.String(), "rs: restarted"); n != 1 {
		t.Errorf("%d restart lines, want 1:\n%s", n, out)
	}
	if !strings.Contains(out.String(), "rs: synced 3 files to /app") {
		t.Errorf("no sync line for rs:\n%s", out)
	}
	got := execOut(t, env, env.project.Name+"-rs-1", "cat", "/app/0.txt", "/app/1.txt", "/app/2.txt")
	if got != "012" {
		t.Errorf("files in restarted rs = %q", got)
	}

	// sync+exec runs its command after the sync.
	write(t, filepath.Join(env.dir, "ex/in.txt"), "hello")
	waitFor(t, "marker", func() bool {
		b, _ := os.ReadFile(filepath.Join(env.dir, "out/marker"))
		return string(b) == "hello"
	})

	// Files and directories made by a sync belong to the container's
	// user (nobody, from the image's /etc/passwd); a rule watching one
	// file syncs that file.
	write(t, filepath.Join(env.dir, "own/d/f.txt"), "f")
	write(t, filepath.Join(env.dir, "conf.txt"), "c1")
	own := env.project.Name + "-own-1"
	waitFor(t, "own synced", func() bool {
		return strings.Contains(out.String(), "own: synced 1 file to /home/app") &&
			strings.Contains(out.String(), "own: synced 1 file to /home/conf.txt")
	})
	if got := execOut(t, env, own, "stat", "-c", "%n %u:%g", "/home/app", "/home/app/d", "/home/app/d/f.txt"); got != "/home/app 65534:65534\n/home/app/d 65534:65534\n/home/app/d/f.txt 65534:65534\n" {
		t.Errorf("ownership in the container:\n%s", got)
	}
	if got := execOut(t, env, own, "cat", "/home/conf.txt"); got != "c1" {
		t.Errorf("conf.txt = %q", got)
	}

	// Under a tmpfs mount (reached through the running container) and
	// under a named volume (through its host directory): the other
	// container sharing the volume sees the file too.
	write(t, filepath.Join(env.dir, "t/tm.txt"), "tm")
	write(t, filepath.Join(env.dir, "v/vol.txt"), "vol")
	waitFor(t, "tmpfs and volume synced", func() bool {
		return strings.Contains(out.String(), "own: synced 1 file to /run/t/app") &&
			strings.Contains(out.String(), "vol: synced 1 file to /data/app")
	})
	if got := execOut(t, env, own, "cat", "/run/t/app/tm.txt"); got != "tm" {
		t.Errorf("tmpfs file = %q", got)
	}
	if got := execOut(t, env, own, "cat", "/data/app/vol.txt"); got != "vol" {
		t.Errorf("volume file seen from own = %q", got)
	}
}

const rebuildStack = `
name: $NAME
services:
  web:
    build: ./ctx
    ports: ["127.0.0.1:$PORT:8080"]
    stop_grace_period: 1s
    develop:
      watch:
        - path: ./ctx
          action: rebuild
`

// A rebuild rule builds the image again from its context and recreates
// the service: the new image's content is served.
func TestE2ERebuild(t *testing.T) {
	var st *stackEnv
	prepare := func(dir string) {
		write(t, filepath.Join(dir, "ctx/Dockerfile"), "FROM busybox:latest\nCOPY page.html /srv/index.html\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/srv\"]\n")
		write(t, filepath.Join(dir, "ctx/page.html"), "built 1")
	}
	// The stack's image must exist before up: build it first, as
	// `berth up` does for a service with build:.
	st = newStackWith(t, rebuildStack, prepare, func(env *stackEnv) {
		svc, _ := env.project.Service("web")
		ref, err := env.builder.BuildService(context.Background(), env.project, svc, build.ServiceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range env.project.Services {
			if env.project.Services[i].Name == "web" {
				env.project.Services[i].Image = ref
			}
		}
	})
	st.waitGet("/index.html", 200, "built 1")
	out := st.watch()
	write(t, filepath.Join(st.dir, "ctx/page.html"), "built 2")
	st.waitGet("/index.html", 200, "built 2")
	waitFor(t, "rebuild line", func() bool { return strings.Contains(out.String(), "web: rebuilt") })
}

// execOut runs a command in a container and returns its output.
func execOut(t testing.TB, env *stackEnv, container string, args ...string) string {
	t.Helper()
	var buf syncBuffer
	c := NewDaemonController(env.project, env.client, env.rt, env.builder)
	if err := c.Exec(context.Background(), container, args, &buf); err != nil {
		t.Fatalf("exec %v: %v (%s)", args, err, buf.String())
	}
	return buf.String()
}

// BenchmarkWatchLatency measures the time from a file write on the host
// to the new content being served by httpd inside the container (polled
// over the published port every millisecond), with the default batching
// (DefaultQuiet). Run it with -benchtime=100x for the median over 100
// edits (bench/watch.sh does).
func BenchmarkWatchLatency(b *testing.B) {
	env := newStack(b, webStack, func(dir string) {
		write(b, filepath.Join(dir, "site/keep.txt"), "keep")
	})
	env.watch()
	write(b, filepath.Join(env.dir, "site/index.html"), "start")
	env.waitGet("/index.html", 200, "start")
	cl := &http.Client{Timeout: 2 * time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/index.html", env.port)
	fetch := func() string {
		resp, err := cl.Get(url)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		want := fmt.Sprintf("edit %d", i)
		start := time.Now()
		write(b, filepath.Join(env.dir, "site/index.html"), want)
		for fetch() != want {
			if time.Since(start) > 10*time.Second {
				b.Fatalf("edit %d not served after 10 s", i)
			}
			time.Sleep(time.Millisecond)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	if os.Getenv("WATCH_BENCH_DUMP") != "" {
		b.Logf("latencies: %v", lat)
	}
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms-median")
	b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "ms-p90")
}
