package supervisor

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/netstack"
	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/image"
	"github.com/berth-dev/berth/supervisor/runtime"
	"github.com/berth-dev/berth/volumes"
	"golang.org/x/sys/unix"
)

// engineCrashHelper is the "daemon" of TestEngineDaemonCrash, run in a
// child process (see TestMain): it starts the containers described in
// BERTH_ENG_HELPER_PROJECT over root, prints their pids, and waits to be
// killed. It does not return.
func engineCrashHelper(root string) {
	must := func(err error) {
		if err != nil {
			fmt.Fprintln(os.Stderr, "engine crash helper:", err)
			os.Exit(2)
		}
	}
	var p spec.Project
	must(json.Unmarshal([]byte(os.Getenv("BERTH_ENG_HELPER_PROJECT")), &p))
	images, err := image.Open(filepath.Join(root, "images"))
	must(err)
	vols, err := volumes.NewForRoot(root)
	must(err)
	rt, err := runtime.New(filepath.Join(root, "runtime"))
	must(err)
	pool, _ := netipParsePrefix(os.Getenv("BERTH_ENG_HELPER_POOL"))
	nm, err := netstack.New(netstack.Config{Root: root, Upstreams: []string{"127.0.0.1:9"}, Pool: pool})
	must(err)
	must(nm.Restore())
	eng, err := NewEngine(EngineConfig{Root: root, Images: images, Volumes: vols, Net: nm, Runtime: rt})
	must(err)
	ctx := context.Background()
	for k := range p.Services {
		i, err := eng.Create(ctx, &p, &p.Services[k], 1)
		must(err)
		must(i.Start(ctx))
		fmt.Printf("started %s %d\n", i.Name(), i.Snapshot().Pid)
	}
	fmt.Println("ready")
	select {}
}

// TestEngineDaemonCrash kills a real "daemon" process (a child running an
// engine) with SIGKILL while its containers run. The test process plays
// the keeper: a child subreaper that inherits the container inits, reaps
// them and writes their exit records. A new engine then adopts them.
func TestEngineDaemonCrash(t *testing.T) {
	env := newTestEnv(t)
	p := env.projectOf(
		spec.Service{Name: "lives", Command: []string{"sleep", "1000"}},
		spec.Service{Name: "dies", Command: []string{"sleep", "1000"},
			Restart: spec.RestartPolicy{Condition: "on-failure"}},
	)
	// The helper owns the root while it runs.
	env.eng.Close()
	env.net.Close()
	pj, _ := json.Marshal(p)

	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })

	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "BERTH_ENG_HELPER_ROOT="+env.root, "BERTH_ENG_HELPER_PROJECT="+string(pj),
		"BERTH_ENG_HELPER_POOL="+env.pool.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A helper that hangs is killed, so the test fails instead of
	// timing out (which would skip every cleanup).
	hang := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	pids := map[string]int{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "started" {
			pids[f[1]], _ = strconv.Atoi(f[2])
		}
		if sc.Text() == "ready" {
			break
		}
	}
	hang.Stop()
	if len(pids) != 2 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper started %v", pids)
	}
	// kill -9 of the daemon.
	cmd.Process.Kill()
	cmd.Wait()

	// The keeper's part: reap container inits and write exit records.
	lives, dies := env.project+"-lives-1", env.project+"-dies-1"
	keeper := func(pid int) {
		start, err := procStartTime(pid)
		if err != nil {
			t.Errorf("start time of %d: %v", pid, err)
			return
		}
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(pid, &ws, 0, nil)
			if err != unix.EINTR {
				break
			}
		}
		rec := exitRecord{Code: ws.ExitStatus(), Time: time.Now().UTC().Format(time.RFC3339Nano)}
		if ws.Signaled() {
			rec.Signal = int(ws.Signal())
			rec.Code = 128 + rec.Signal
		}
		b, _ := json.Marshal(rec)
		if err := writeFileAtomic(filepath.Join(env.root, "exits", fmt.Sprintf("%d-%d.json", pid, start)), b, true); err != nil {
			t.Error(err)
		}
	}
	for _, pid := range pids {
		if ppid := parentOf(pid); ppid != os.Getpid() {
			t.Fatalf("container init %d has parent %d, not the subreaper %d", pid, ppid, os.Getpid())
		}
	}
	kept := make(chan struct{})
	go func() { keeper(pids[lives]); close(kept) }()
	// One container dies while no daemon runs.
	syscall.Kill(pids[dies], syscall.SIGKILL)
	keeper(pids[dies])

	// The daemon comes back.
	var rerr error
	if env.rt, rerr = runtime.New(filepath.Join(env.root, "runtime")); rerr != nil {
		t.Fatal(rerr)
	}
	env.newNet()
	env.newEngine()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := env.eng.Adopt(ctx); err != nil {
		t.Fatal(err)
	}
	li, _ := env.eng.Instance(lives)
	if c := li.Snapshot(); c.State != StateRunning || c.Pid != pids[lives] {
		t.Fatalf("lives after adopt: %+v", c)
	}
	di, _ := env.eng.Instance(dies)
	c := waitState(t, di, "restarted after its exit code 137 was read from the exit record", func(c ContainerInfo) bool {
		return c.State == StateRunning && c.RestartCount == 1
	})
	if c.ExitCode != 0 || c.Pid == pids[dies] {
		t.Fatalf("dies: %+v", c)
	}
	env.mu.Lock()
	var sawCode bool
	for _, ev := range env.events {
		if ev.Container == dies && ev.Action == "die" && ev.ExitCode == 137 {
			sawCode = true
		}
	}
	env.mu.Unlock()
	if !sawCode {
		t.Error("no die event with exit code 137 for the container that died meanwhile")
	}
	// The adopted container's later exit comes through the keeper's record.
	if err := li.Kill(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-kept:
	case <-time.After(30 * time.Second):
		t.Fatal("the adopted container did not exit")
	}
	if err := li.WaitCondition(ctx, "exited"); err != nil {
		t.Fatal(err)
	}
	if c := li.Snapshot(); c.ExitCode != 137 || c.Error != "" {
		t.Fatalf("lives exit: %+v", c)
	}
}

func parentOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	n, _ := strconv.Atoi(f[1])
	return n
}

func netipParsePrefix(s string) (netip.Prefix, error) { return netip.ParsePrefix(s) }
