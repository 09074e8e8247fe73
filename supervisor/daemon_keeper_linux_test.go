package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/supervisor/api"
)

// daemonHelperProcess is the test binary re-executed (see TestMain) as
// `berth keeper` (role dkeeper) or `berth daemon` (role daemon) on a test
// root. It does not return.
func daemonHelperProcess(role string) {
	root := os.Getenv("BERTH_DMN_TEST_ROOT")
	switch role {
	case "dkeeper":
		os.Setenv("BERTH_DMN_TEST_ROLE", "daemon")
		err := RunKeeper(KeeperConfig{Root: root, Daemon: []string{os.Args[0]}, Log: os.Stderr})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	case "daemon":
		pool, err := netip.ParsePrefix(os.Getenv("BERTH_DMN_TEST_POOL"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		d, err := NewDaemon(DaemonConfig{Root: root, Version: "test", Upstreams: []string{"127.0.0.1:9"}, Pool: pool})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		err = d.Run(ctx)
		if errors.Is(err, ErrDaemonRunning) {
			os.Exit(ExitCodeAlreadyRunning)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	fmt.Fprintf(os.Stderr, "unknown helper role %q\n", role)
	os.Exit(2)
}

func ppidOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

func TestDaemonKill9KeeperRespawnsAndDownCleans(t *testing.T) {
	env := newDaemonEnv(t)
	keeper := exec.Command(os.Args[0])
	keeper.Env = append(os.Environ(), "BERTH_DMN_TEST_ROLE=dkeeper", "BERTH_DMN_TEST_ROOT="+env.root,
		"BERTH_DMN_TEST_POOL="+env.pool.String())
	logf, err := os.Create(filepath.Join(t.TempDir(), "daemon.log"))
	if err != nil {
		t.Fatal(err)
	}
	keeper.Stdout, keeper.Stderr = logf, logf
	keeper.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := keeper.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- keeper.Wait() }()
	t.Cleanup(func() {
		// Runs before env.sweep: no keeper or daemon may hold the root.
		keeper.Process.Signal(syscall.SIGKILL)
		<-done
		if b, err := os.ReadFile(filepath.Join(env.root, "berth.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
				for k := 0; k < 100 && syscall.Kill(pid, 0) == nil; k++ {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("daemon log:\n%s", b)
		}
	})
	var c *api.Client
	waitFor(t, "the daemon", func() bool {
		c, err = api.Dial(env.root)
		return err == nil
	})
	defer c.Close()
	ctx := context.Background()
	info1, err := c.Ping(ctx)
	if err != nil {
		t.Fatal(err)
	}

	p := env.stack("always")
	_, res := env.up(c, p, api.UpOptions{Wait: true, WaitTimeout: time.Minute})
	if res.Err() != nil {
		t.Fatalf("up: %v", res.Err())
	}
	before := psByName(t, c, env.project)
	web := env.project + "-web-1"
	for n, s := range before {
		if s.State != StateRunning || s.Pid <= 0 {
			t.Fatalf("%s after up: %+v", n, s)
		}
	}

	// kill -9 the daemon, and kill web while no daemon watches: the
	// keeper reaps it and records its exit.
	if err := syscall.Kill(info1.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(before[web].Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var info2 api.Info
	waitFor(t, "a new daemon", func() bool {
		info2, err = c.Ping(ctx)
		return err == nil && info2.Pid != info1.Pid
	})
	after := psByName(t, c, env.project)
	for _, s := range []string{"api", "db"} {
		n := env.project + "-" + s + "-1"
		if after[n].State != StateRunning || after[n].Pid != before[n].Pid {
			t.Errorf("%s after the daemon crash: %+v (was pid %d)", n, after[n], before[n].Pid)
		}
		if pp := ppidOf(before[n].Pid); pp != keeper.Process.Pid {
			t.Errorf("%s: parent %d, want the keeper %d", n, pp, keeper.Process.Pid)
		}
	}
	// web died meanwhile with SIGKILL; restart: always brings it back.
	waitFor(t, "web restarted", func() bool {
		s := psByName(t, c, env.project)[web]
		return s.State == StateRunning && s.Pid != before[web].Pid && s.RestartCount >= 1
	})

	// down from the new daemon leaves nothing.
	tr := env.traces(c)
	tr.pids = append(tr.pids, before[web].Pid)
	res, err = c.Down(ctx, api.DownRequest{ProjectName: env.project, Volumes: true}, nil)
	if err != nil || res.Err() != nil {
		t.Fatalf("down: %v %v", err, res.Err())
	}
	if left := env.leftovers(tr); len(left) > 0 {
		t.Errorf("left after down: %v", left)
	}

	// SIGTERM to the keeper stops the daemon and the keeper.
	keeper.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Errorf("keeper: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the keeper did not stop")
	}
	if _, err := api.Dial(env.root); !errors.Is(err, api.ErrNoDaemon) {
		t.Errorf("daemon still answers after the keeper stopped: %v", err)
	}
}
