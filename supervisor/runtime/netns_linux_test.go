package runtime

import (
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
		goruntime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		if err := unix.Mount("/proc/thread-self/ns/net", path, "", unix.MS_BIND, ""); err != nil {
			errc <- err
			return
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq("lo")
		if err != nil {
			errc <- err
			return
		}
		ifr.SetUint32(mtu)
		errc <- unix.IoctlIfreq(fd, unix.SIOCSIFMTU, ifr)
	}()
	err := <-errc
	t.Cleanup(func() { unix.Unmount(path, unix.MNT_DETACH) })
	if err != nil {
		t.Fatalf("make netns: %v", err)
	}
	return path
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
