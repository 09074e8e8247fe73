package supervisor

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/api"
)

// runEnv starts a daemon for a run test: its client, a context bounding
// the test, and a stack of one service, sh, whose container stops at
// once on SIGTERM.
func runEnv(t *testing.T) (*daemonEnv, *Daemon, *api.Client, context.Context, *spec.Project) {
	env := newDaemonEnv(t)
	d, c := env.start()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return env, d, c, ctx, env.runStack()
}

func (env *daemonEnv) runStack() *spec.Project {
	return &spec.Project{Name: env.project, WorkingDir: env.root,
		Networks: []spec.Network{{Name: "default", ActualName: env.project + "_default"}},
		Services: []spec.Service{{Name: "sh", Image: "busybox:latest", Replicas: 1,
			Command:  []string{"sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait; done"},
			Networks: []spec.ServiceNetwork{{Name: "default"}}, StopGracePeriod: sdur(time.Second)}},
	}
}

// waitRunGone waits until the project has no one-off container left.
func waitRunGone(t *testing.T, c *api.Client, project string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var left []string
		for n := range psByName(t, c, project) {
			if strings.Contains(n, "-run-") {
				left = append(left, n)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("one-off containers left: %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// An interactive run's stdin is a pipe whose write end the client gets:
// what it writes reaches the command, closing it is end of file, and the
// output still comes back as log lines.
func TestDaemonRunStdin(t *testing.T) {
	env, _, c, ctx, p := runEnv(t)
	var out []string
	var att api.Attach
	res, err := c.RunAttached(ctx, api.RunRequest{Project: p, Service: "sh", Remove: true, Interactive: true,
		Command: []string{"sh", "-c", "wc -l; exit 4"}}, nil,
		func(l api.LogLine) { out = append(out, l.Log) },
		func(a api.Attach, f *os.File) {
			att = a
			go func() {
				io.WriteString(f, "a\nb\nc\n")
				f.Close()
			}()
		})
	if err != nil || res.Err() != nil {
		t.Fatalf("run: %v %v", err, res.Err())
	}
	if att.Kind != api.AttachStdin || !strings.HasPrefix(att.Container, env.project+"-sh-run-") {
		t.Errorf("attach: %+v", att)
	}
	if res.ExitCode != 4 || len(out) != 1 || strings.TrimSpace(out[0]) != "3" {
		t.Errorf("run: exit %d, output %q; want 4 and wc's 3", res.ExitCode, out)
	}
	waitRunGone(t, c, env.project)
}

// A pty run passes the pty master: the command sees a terminal of the
// size asked, and what it writes comes on the master, not in the log.
func TestDaemonRunPty(t *testing.T) {
	env, _, c, ctx, p := runEnv(t)
	var logged []string
	got := make(chan string, 1)
	res, err := c.RunAttached(ctx, api.RunRequest{Project: p, Service: "sh", Remove: true, TTY: true, Interactive: true,
		ConsoleSize: &api.ConsoleSize{Rows: 12, Cols: 34},
		Command:     []string{"sh", "-c", "test -t 0 && test -t 1 && stty size; exit 5"}}, nil,
		func(l api.LogLine) { logged = append(logged, l.Log) },
		func(a api.Attach, f *os.File) {
			if a.Kind != api.AttachConsole {
				t.Errorf("attach: %+v", a)
			}
			go func() {
				b, _ := io.ReadAll(f) // ends with EIO once the command exits
				f.Close()
				got <- string(b)
			}()
		})
	if err != nil || res.Err() != nil {
		t.Fatalf("run: %v %v", err, res.Err())
	}
	if res.ExitCode != 5 {
		t.Errorf("exit %d, want 5", res.ExitCode)
	}
	select {
	case s := <-got:
		if s != "12 34\r\n" {
			t.Errorf("pty output %q, want stty's %q", s, "12 34\r\n")
		}
	case <-time.After(10 * time.Second):
		t.Error("the pty output did not end")
	}
	if len(logged) != 0 {
		t.Errorf("a pty run's output went to the log: %q", logged)
	}
	waitRunGone(t, c, env.project)
}

// The client leaving an attached run (its connection closed) stops the
// container, and --rm removes it.
func TestDaemonRunClientLeaves(t *testing.T) {
	env, _, c, ctx, p := runEnv(t)
	rctx, leave := context.WithCancel(ctx)
	var stdin *os.File
	_, err := c.RunAttached(rctx, api.RunRequest{Project: p, Service: "sh", Remove: true, Interactive: true}, func(e api.Event) {
		if e.Action == "start" && e.Status == "done" {
			leave()
		}
	}, nil, func(_ api.Attach, f *os.File) { stdin = f })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("run after leaving: %v, want context.Canceled", err)
	}
	waitRunGone(t, c, env.project)
	if stdin != nil {
		stdin.Close()
	}
}

// A daemon that stops leaves an attached run's container running and
// sends no Result: the client keeps its stdin, and the next daemon
// reports the exit.
func TestDaemonRunOutlivesDaemon(t *testing.T) {
	env, d, c, ctx, p := runEnv(t)
	var stdin *os.File
	var name string
	errc := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		_, err := c.RunAttached(ctx, api.RunRequest{Project: p, Service: "sh", Interactive: true,
			Command: []string{"sh", "-c", "read line; echo got $line; exit 6"}}, func(e api.Event) {
			if e.Action == "start" && e.Status == "done" {
				close(started)
			}
		}, nil, func(a api.Attach, f *os.File) { stdin, name = f, a.Container })
		errc <- err
	}()
	select {
	case <-started:
	case err := <-errc:
		t.Fatalf("run ended early: %v", err)
	}
	d.Close()
	if err := <-errc; !errors.Is(err, api.ErrNoResult) {
		t.Fatalf("run when the daemon stopped: %v, want ErrNoResult", err)
	}
	defer stdin.Close()
	_, c2 := env.start()
	if s := psByName(t, c2, env.project)[name]; s.State != StateRunning {
		t.Fatalf("%s after the daemon stopped: %+v", name, s)
	}
	io.WriteString(stdin, "hello\n")
	sum, err := c2.Container(ctx, name, api.ActionWait, api.ContainerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.State != StateExited {
		t.Errorf("%s: %+v", name, sum)
	}
	var lines []string
	_ = c2.Logs(ctx, api.LogsRequest{Containers: []string{name}, Tail: -1}, func(l api.LogLine) error {
		lines = append(lines, l.Log)
		return nil
	})
	if len(lines) != 1 || lines[0] != "got hello" {
		t.Errorf("logs of %s: %q", name, lines)
	}
	if _, err := c2.Container(ctx, name, api.ActionRemove, api.ContainerRequest{Force: true}); err != nil {
		t.Error(err)
	}
}
