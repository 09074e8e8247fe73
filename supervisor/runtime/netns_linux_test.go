package runtime

import (
	"errors"
	"os"
	"path/filepath"
	goruntime "runtime"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// makeNetns makes a network namespace pinned by a bind mount at a file
// (as netstack hands one over), with lo's MTU set to mtu so a container
// can tell it joined this one.
func makeNetns(t *testing.T, mtu uint32) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "netns")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		// The thread goes back to the host's namespace before it is
		// unlocked: a thread that ended locked in the new one could be
		// the main thread, which the Go runtime cannot end, and later
		// tests would find it there.
		goruntime.LockOSThread()
		home, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			goruntime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(home)
		err = setupNetns(path, mtu)
		if serr := unix.Setns(home, unix.CLONE_NEWNET); serr != nil {
			errc <- errors.Join(err, serr) // stays locked: the thread is retired
			return
		}
		goruntime.UnlockOSThread()
		errc <- err
	}()
	err := <-errc
	t.Cleanup(func() { unix.Unmount(path, unix.MNT_DETACH) })
	if err != nil {
		t.Fatalf("make netns: %v", err)
	}
	return path
}

// setupNetns moves the calling (locked) thread into a new network
// namespace, pins it at path and sets lo's MTU.
func setupNetns(path string, mtu uint32) error {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return err
	}
	if err := unix.Mount("/proc/thread-self/ns/net", path, "", unix.MS_BIND, ""); err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	ifr.SetUint32(mtu)
	return unix.IoctlIfreq(fd, unix.SIOCSIFMTU, ifr)
}

// A netns made elsewhere (netstack hands one over by path) is joined,
// not replaced.
func TestJoinNetworkNamespace(t *testing.T) {
	requirePrivileged(t)
	checkNoLeaks(t)
	nsPath := makeNetns(t, 1234)
	bundle := makeRootfs(t)
	spec := shSpec(`cat /sys/class/net/lo/mtu; grep -c lo: /proc/net/dev`)
	for i, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			spec.Linux.Namespaces[i].Path = nsPath
		}
	}
	wantLines(t, mustRun(t, spec, bundle), "1234", "1")
}
