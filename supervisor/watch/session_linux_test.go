package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/spec"
)

// fakeController keeps one "container" per service as a rootfs dir and
// records what the session asks of it.
type fakeController struct {
	mu       sync.Mutex
	roots    map[string]string // service -> rootfs
	restarts map[string]int
	execs    []string
	rebuilds []string
	starts   chan [2]string
}

func newFake() *fakeController {
	return &fakeController{roots: map[string]string{}, restarts: map[string]int{}, starts: make(chan [2]string, 10)}
}

func (f *fakeController) Targets(ctx context.Context, service string) ([]Target, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.roots[service]
	if !ok {
		return nil, nil
	}
	return []Target{{Container: "p-" + service + "-1", Root: r, UID: os.Getuid(), GID: os.Getgid()}}, nil
}

func (f *fakeController) Restart(ctx context.Context, c string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.restarts[c]++
	return nil
}

func (f *fakeController) Exec(ctx context.Context, c string, cmd []string, out io.Writer) error {
	f.mu.Lock()
	f.execs = append(f.execs, c+": "+strings.Join(cmd, " "))
	f.mu.Unlock()
	fmt.Fprintln(out, "exec output")
	if cmd[0] == "false" {
		return fmt.Errorf("exit code 1")
	}
	return nil
}

func (f *fakeController) Rebuild(ctx context.Context, service string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rebuilds = append(f.rebuilds, service)
	return nil
}

func (f *fakeController) Starts(ctx context.Context, fn func(service, container string)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case s := <-f.starts:
			fn(s[0], s[1])
		}
	}
}

// syncBuffer is an io.Writer safe for the session's goroutines and the
// test reading it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func runSession(t *testing.T, p *spec.Project, fc *fakeController, out *syncBuffer) {
	t.Helper()
	s, err := NewSession(Options{Project: p, Controller: fc, Out: out, Quiet: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	s.opts.Ready = func() { close(ready) }
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
}

func TestSessionSyncRestartExec(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"web", "api", "job"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	write(t, filepath.Join(dir, "web/index.html"), "v0")
	p := &spec.Project{Name: "p", WorkingDir: dir, Services: []spec.Service{
		{Name: "web", Develop: &spec.Develop{Watch: []spec.WatchRule{
			{Path: filepath.Join(dir, "web"), Target: "/srv", Action: ActionSync, InitialSync: true},
		}}},
		{Name: "api", Develop: &spec.Develop{Watch: []spec.WatchRule{
			{Path: filepath.Join(dir, "api"), Target: "/app", Action: ActionSyncRestart},
		}}},
		{Name: "job", Develop: &spec.Develop{Watch: []spec.WatchRule{
			{Path: filepath.Join(dir, "job"), Target: "/job", Action: ActionSyncExec, ExecCommand: []string{"false"}},
		}}},
		{Name: "db"},
	}}
	fc := newFake()
	for _, s := range []string{"web", "api", "job"} {
		fc.roots[s] = t.TempDir()
	}
	out := &syncBuffer{}
	runSession(t, p, fc, out)

	// initial_sync
	if got := readOr(t, filepath.Join(fc.roots["web"], "srv/index.html")); got != "v0" {
		t.Errorf("initial sync: index.html = %q", got)
	}
	write(t, filepath.Join(dir, "web/index.html"), "v1")
	write(t, filepath.Join(dir, "web/b.html"), "b")
	waitFor(t, "web sync", func() bool { return readOr(t, filepath.Join(fc.roots["web"], "srv/b.html")) == "b" })
	waitFor(t, "sync line", func() bool { return strings.Contains(out.String(), "web: synced 2 files to /srv") })

	// sync+restart: three files in one batch, one restart.
	for i := range 3 {
		write(t, filepath.Join(dir, fmt.Sprintf("api/%d.py", i)), "x")
	}
	waitFor(t, "api restart", func() bool { return strings.Contains(out.String(), "api: restarted") })
	time.Sleep(100 * time.Millisecond)
	fc.mu.Lock()
	if n := fc.restarts["p-api-1"]; n != 1 {
		t.Errorf("api restarted %d times for one batch", n)
	}
	fc.mu.Unlock()

	// sync+exec failing names the rule.
	write(t, filepath.Join(dir, "job/x"), "x")
	waitFor(t, "exec error", func() bool {
		return strings.Contains(out.String(), `job: develop.watch[0] (./job → /job): exec "false" in p-job-1: exit code 1`)
	})
	if !strings.Contains(out.String(), "job: exec output") {
		t.Errorf("exec output not shown:\n%s", out)
	}

	// A container started again (recreated: empty rootfs) gets the
	// watched files again.
	fc.mu.Lock()
	fc.roots["web"] = t.TempDir()
	fc.mu.Unlock()
	fc.starts <- [2]string{"web", "p-web-1"}
	waitFor(t, "resync after start", func() bool {
		fc.mu.Lock()
		r := fc.roots["web"]
		fc.mu.Unlock()
		return readOr(t, filepath.Join(r, "srv/index.html")) == "v1" && readOr(t, filepath.Join(r, "srv/b.html")) == "b"
	})
}

func TestSessionRestartAndRebuild(t *testing.T) {
	dir := t.TempDir()
	p := &spec.Project{Name: "p", WorkingDir: dir, Services: []spec.Service{
		{Name: "a", Develop: &spec.Develop{Watch: []spec.WatchRule{{Path: dir, Action: ActionRestart}}}},
		{Name: "b", Develop: &spec.Develop{Watch: []spec.WatchRule{{Path: dir, Action: ActionRebuild}}}},
	}}
	fc := newFake()
	fc.roots["a"] = t.TempDir()
	out := &syncBuffer{}
	runSession(t, p, fc, out)
	write(t, filepath.Join(dir, "f"), "x")
	waitFor(t, "restart+rebuild", func() bool {
		s := out.String()
		return strings.Contains(s, "a: restarted") && strings.Contains(s, "b: rebuilt")
	})
}

func TestNewSessionErrors(t *testing.T) {
	dir := t.TempDir()
	mk := func(r spec.WatchRule) *spec.Project {
		return &spec.Project{Name: "p", WorkingDir: dir, Services: []spec.Service{
			{Name: "web", Develop: &spec.Develop{Watch: []spec.WatchRule{r}}}}}
	}
	fc := newFake()
	for _, c := range []struct {
		p    *spec.Project
		want string
	}{
		{&spec.Project{Name: "p", Services: []spec.Service{{Name: "web"}}}, "none of the selected services has develop.watch rules"},
		{mk(spec.WatchRule{Path: dir, Action: "copy"}), `web: develop.watch[0] (.): unknown action "copy"`},
		{mk(spec.WatchRule{Path: dir, Action: "sync"}), `web: develop.watch[0] (.): action sync needs an absolute target`},
		{mk(spec.WatchRule{Path: dir, Target: "/a", Action: "sync+exec"}), `web: develop.watch[0] (. → /a): action sync+exec needs exec.command`},
		{mk(spec.WatchRule{Path: dir, Target: "/a", Action: "sync", Ignore: []string{"[x-"}}), `web: develop.watch[0] (. → /a): ignore:`},
	} {
		_, err := NewSession(Options{Project: c.p, Controller: fc, Out: io.Discard})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
	// A path that does not exist fails Run, naming the rule.
	s, err := NewSession(Options{Project: mk(spec.WatchRule{Path: filepath.Join(dir, "nope"), Target: "/a", Action: "sync"}), Controller: fc, Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "web: develop.watch[0] (./nope → /a)") {
		t.Errorf("Run: %v", err)
	}
}

func TestRebuildWithBuildNeedsBuilder(t *testing.T) {
	p := &spec.Project{Name: "p", Services: []spec.Service{{Name: "app", Build: &spec.Build{Context: t.TempDir()}}}}
	c := NewDaemonController(p, nil, nil, nil)
	if err := c.Rebuild(context.Background(), "app"); !errors.Is(err, ErrNoBuilder) {
		t.Errorf("Rebuild = %v, want ErrNoBuilder", err)
	}
	if err := c.Rebuild(context.Background(), "nope"); err == nil {
		t.Error("Rebuild of an unknown service succeeded")
	}
}
