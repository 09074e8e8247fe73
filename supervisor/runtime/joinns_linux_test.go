package runtime

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Joining a network namespace by path (how netstack hands one over) leaves
// none of the caller's threads in it: a thread parked in a container's
// namespace would keep the namespace, and its veths, alive after the
// container is gone.
func TestJoinNetnsLeavesCallerThreadsHome(t *testing.T) {
	requirePrivileged(t)
	checkNoLeaks(t)
	home, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	holder := exec.Command("/bin/busybox", "sleep", "600")
	holder.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	nsPath := filepath.Join("/proc", strconv.Itoa(holder.Process.Pid), "ns/net")
	theirs, err := os.Readlink(nsPath)
	if err != nil || theirs == home {
		t.Fatalf("holder netns %q (%v), host %q", theirs, err, home)
	}

	bundle := makeRootfs(t)
	r := newTestRuntime(t)
	// Run several containers so that the joining goroutine lands on
	// various threads, the main one included.
	for i := 0; i < 8; i++ {
		spec := shSpec(`readlink /proc/self/ns/net`)
		for j, ns := range spec.Linux.Namespaces {
			if ns.Type == specs.NetworkNamespace {
				spec.Linux.Namespaces[j].Path = nsPath
			}
		}
		res := runContainer(t, r, bundle, spec)
		if res.exit.Code != 0 || strings.TrimSpace(res.out) != theirs {
			t.Fatalf("container netns %q (exit %d), want %q", res.out, res.exit.Code, theirs)
		}
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		ns, err := os.Readlink(filepath.Join("/proc/self/task", task.Name(), "ns/net"))
		if err == nil && ns != home {
			t.Errorf("thread %s of the caller is left in netns %s (home %s)", task.Name(), ns, home)
		}
	}
}
