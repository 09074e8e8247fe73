package supervisor

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// DaemonGone is true only once the processes named by the keeper and
// daemon pid files have exited; a zombie (reaped late by its parent)
// counts as exited, since it holds no lock.
func TestDaemonGone(t *testing.T) {
	root := t.TempDir()
	if !DaemonGone(root) {
		t.Fatal("no pid files: want gone")
	}
	write := func(name string, pid int) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, name), []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	live := exec.Command("sleep", "60")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Process.Kill(); live.Wait() })
	write("keeper.pid", live.Process.Pid)
	if DaemonGone(root) {
		t.Fatal("keeper.pid names a live process: want not gone")
	}
	// The daemon's pid file names the test process too: still running.
	write("keeper.pid", 0)
	write("berth.pid", os.Getpid())
	if DaemonGone(root) {
		t.Fatal("berth.pid names a live process: want not gone")
	}
	// A zombie: exited, not yet waited for.
	z := exec.Command("true")
	if err := z.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { z.Wait() })
	write("berth.pid", z.Process.Pid)
	deadline := time.Now().Add(5 * time.Second)
	for !DaemonGone(root) {
		if time.Now().After(deadline) {
			t.Fatal("berth.pid names a zombie: want gone")
		}
		time.Sleep(5 * time.Millisecond)
	}
	z.Wait()
	if !DaemonGone(root) {
		t.Fatal("berth.pid names a reaped process: want gone")
	}
}

// procParent names the parent of a process only while the pid is still
// the process that started at the given time.
func TestProcParent(t *testing.T) {
	start, err := procStartTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if pp, err := procParent(os.Getpid(), start); err != nil || pp != os.Getppid() {
		t.Errorf("procParent(self) = %d, %v; want %d", pp, err, os.Getppid())
	}
	if _, err := procParent(os.Getpid(), start+1); err == nil {
		t.Error("procParent with another start time: want an error")
	}
	c := exec.Command("sleep", "60")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { c.Process.Kill(); c.Wait() }()
	cs, err := procStartTime(c.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if pp, err := procParent(c.Process.Pid, cs); err != nil || pp != os.Getpid() {
		t.Errorf("procParent(child) = %d, %v; want %d", pp, err, os.Getpid())
	}
}
