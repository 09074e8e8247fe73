package supervisor

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/supervisor/api"
)

// TestEnsureDaemonStartsKeeper builds the berth binary and lets two
// clients start the daemon at once: one keeper and one daemon result,
// both clients talk to it, and `berth daemon stop` ends both.
func TestEnsureDaemonStartsKeeper(t *testing.T) {
	requirePrivileged(t)
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to build berth: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "berth")
	build := exec.Command(gobin, "build", "-o", bin, "github.com/berth-dev/berth/cmd/berth")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	root := t.TempDir()
	t.Cleanup(func() {
		// Whatever happened, no keeper or daemon outlives the test.
		for _, f := range []string{"keeper.pid", "berth.pid"} {
			if b, err := os.ReadFile(filepath.Join(root, f)); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
					killAndReap(t, pid)
				}
			}
		}
	})

	var wg sync.WaitGroup
	clients := make([]*api.Client, 2)
	errs := make([]error, 2)
	for k := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			clients[k], errs[k] = api.EnsureDaemon(root, bin)
		}()
	}
	wg.Wait()
	var pids []int
	for k, c := range clients {
		if errs[k] != nil {
			b, _ := os.ReadFile(filepath.Join(root, "daemon.log"))
			t.Fatalf("EnsureDaemon %d: %v\n%s", k, errs[k], b)
		}
		info, err := c.Ping(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, info.Pid)
		c.Close()
	}
	if pids[0] != pids[1] {
		t.Errorf("two daemons answer: %v", pids)
	}
	kb, err := os.ReadFile(filepath.Join(root, "keeper.pid"))
	if err != nil {
		t.Fatal(err)
	}
	keeper, _ := strconv.Atoi(strings.TrimSpace(string(kb)))
	if pp := ppidOf(pids[0]); pp != keeper {
		t.Errorf("daemon parent %d, want the keeper %d", pp, keeper)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "berth.pid")); strings.TrimSpace(string(b)) != strconv.Itoa(pids[0]) {
		t.Errorf("berth.pid = %q, want %d", b, pids[0])
	}
	// A third client finds it running.
	if c, err := api.EnsureDaemon(root, bin); err != nil {
		t.Fatal(err)
	} else {
		c.Close()
	}

	if out, err := exec.Command(bin, "daemon", "stop", "--root", root).CombinedOutput(); err != nil {
		t.Fatalf("berth daemon stop: %v\n%s", err, out)
	}
	if _, err := api.Dial(root); !errors.Is(err, api.ErrNoDaemon) {
		t.Errorf("the daemon answers after berth daemon stop: %v", err)
	}
	waitFor(t, "the keeper to exit", func() bool { _, err := os.Stat("/proc/" + strconv.Itoa(keeper)); return err != nil })
	log, _ := os.ReadFile(filepath.Join(root, "daemon.log"))
	if !strings.Contains(string(log), "daemon stopped; containers keep running") {
		t.Errorf("daemon.log:\n%s", log)
	}
}
