package supervisor

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The keeper tests re-execute the test binary in one of these roles,
// picked by BERTH_KEEPER_TEST_ROLE (the os/exec tests' helper process
// pattern):
//
//	keeper:      RunKeeper with the fake daemon as its daemon
//	fakedaemon:  first run: start a grandchild, record its pid and start
//	             time, and die by SIGKILL (an orphan is left to the
//	             keeper); later runs: record that they run, then wait
//	             for SIGTERM and exit 0
//	grandchild:  sleep a little and exit 7
//
// keeperHelperProcess plays role (see TestMain); it does not return.
func keeperHelperProcess(role string) {
	root := os.Getenv("BERTH_KEEPER_TEST_ROOT")
	switch role {
	case "keeper":
		os.Setenv("BERTH_KEEPER_TEST_ROLE", "fakedaemon") // for the daemon it starts
		err := RunKeeper(KeeperConfig{
			Root:       root,
			Daemon:     []string{os.Args[0]},
			Log:        os.Stderr,
			MinBackoff: 10 * time.Millisecond,
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	case "fakedaemon":
		runs := filepath.Join(root, "daemon-runs")
		f, _ := os.OpenFile(runs, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		fmt.Fprintf(f, "%d\n", os.Getpid())
		f.Close()
		b, _ := os.ReadFile(runs)
		if strings.Count(string(b), "\n") == 1 {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), "BERTH_KEEPER_TEST_ROLE=grandchild")
			if err := cmd.Start(); err != nil {
				os.Exit(2)
			}
			start, err := procStartTime(cmd.Process.Pid)
			if err != nil {
				os.Exit(2)
			}
			os.WriteFile(filepath.Join(root, "grandchild"), []byte(fmt.Sprintf("%d-%d", cmd.Process.Pid, start)), 0o600)
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM)
		<-sigs
		os.Exit(0)
	case "grandchild":
		time.Sleep(300 * time.Millisecond)
		os.Exit(7)
	}
	fmt.Fprintf(os.Stderr, "unknown helper role %q\n", role)
	os.Exit(2)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestKeeperReapsOrphansAndRestartsDaemon(t *testing.T) {
	root := t.TempDir()
	keeper := exec.Command(os.Args[0])
	keeper.Env = append(os.Environ(), "BERTH_KEEPER_TEST_ROOT="+root, "BERTH_KEEPER_TEST_ROLE=keeper")
	keeper.Stderr = os.Stderr
	if err := keeper.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- keeper.Wait() }()
	t.Cleanup(func() {
		keeper.Process.Kill()
		<-done
		killRecorded(root)
	})

	// The grandchild was orphaned when the first daemon died; the keeper
	// reaps it and writes its exit record.
	var id string
	waitFor(t, "the grandchild record", func() bool {
		b, err := os.ReadFile(filepath.Join(root, "grandchild"))
		id = string(b)
		return err == nil && id != ""
	})
	recPath := filepath.Join(root, "exits", id+".json")
	waitFor(t, "the exit record "+recPath, func() bool { _, err := os.Stat(recPath); return err == nil })
	b, err := os.ReadFile(recPath)
	if err != nil {
		t.Fatal(err)
	}
	var rec ExitRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatalf("exit record %q: %v", b, err)
	}
	if rec.Code != 7 || rec.Signal != 0 {
		t.Errorf("exit record %+v, want code 7", rec)
	}
	if _, err := time.Parse(time.RFC3339Nano, rec.Time); err != nil {
		t.Errorf("exit record time %q: %v", rec.Time, err)
	}

	// The daemon died by SIGKILL: the keeper starts it again.
	waitFor(t, "the daemon's second run", func() bool {
		b, _ := os.ReadFile(filepath.Join(root, "daemon-runs"))
		return strings.Count(string(b), "\n") >= 2
	})
	pidb, err := os.ReadFile(filepath.Join(root, "keeper.pid"))
	if err != nil || strings.TrimSpace(string(pidb)) != strconv.Itoa(keeper.Process.Pid) {
		t.Errorf("keeper.pid = %q (%v), want %d", pidb, err, keeper.Process.Pid)
	}

	// SIGTERM to the keeper stops the daemon, then the keeper.
	keeper.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Errorf("keeper exit: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("keeper did not exit on SIGTERM")
	}
	b, _ = os.ReadFile(filepath.Join(root, "daemon-runs"))
	lines := strings.Fields(string(b))
	last, _ := strconv.Atoi(lines[len(lines)-1])
	if syscall.Kill(last, 0) == nil {
		t.Errorf("daemon pid %d still runs after the keeper stopped", last)
	}
	if _, err := os.Stat(filepath.Join(root, "keeper.pid")); !os.IsNotExist(err) {
		t.Errorf("keeper.pid left behind: %v", err)
	}
}

func TestKeeperSecondInstanceRefused(t *testing.T) {
	root := t.TempDir()
	l, err := lockFile(filepath.Join(root, "keeper.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = RunKeeper(KeeperConfig{Root: root, Daemon: []string{"/bin/false"}})
	if err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("second keeper: %v", err)
	}
}

// killRecorded kills the fake daemons a failed test may leave.
func killRecorded(root string) {
	b, _ := os.ReadFile(filepath.Join(root, "daemon-runs"))
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
