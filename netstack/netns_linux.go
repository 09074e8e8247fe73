package netstack

import (
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// CreateNetNS makes a new network namespace and keeps it alive with a bind
// mount on path (what `ip netns add` does), so that Attach can wire it
// before any process runs in it and containers can join it by path. path
// must not exist; its directory must.
//
// unshare(CLONE_NEWNET) changes only the calling thread, so it runs on a
// locked thread in a goroutine of its own (see inOtherNetNS).
func CreateNetNS(path string) (retErr error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	f.Close()
	defer func() {
		if retErr != nil {
			os.Remove(path)
		}
	}()
	return inOtherNetNS(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return os.NewSyscallError("unshare", err)
		}
		// berth networks are IPv4 only: as Docker does for an IPv4-only
		// network, the interfaces made in the namespace from now on (the
		// container's eth0) have IPv6 off, so they get no link-local
		// address and send no duplicate address detection, router
		// solicitation or multicast listener report, which the bridge
		// would flood to every other container. lo, made with the
		// namespace, keeps ::1. A service's own net.ipv6 sysctls are
		// applied later and win. (No /proc/sys/net/ipv6: IPv6 is off.)
		if err := writeSysctl(ipv6DefaultDisable, "1"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
			return &os.PathError{Op: "mount", Path: path, Err: err}
		}
		return nil
	})
}

// ipv6DefaultDisable is the sysctl (under /proc/sys) that turns IPv6 off
// for the network interfaces made in a namespace afterwards.
const ipv6DefaultDisable = "net/ipv6/conf/default/disable_ipv6"

// inOtherNetNS runs fn, which may move its thread into another network
// namespace, on a locked thread of a goroutine of its own, and moves the
// thread back to its original namespace afterwards. Only when that fails
// does the thread stay locked, so the Go runtime retires it rather than
// reusing it in the wrong namespace. (Never leaving it to that: the main
// thread cannot exit, and a wedged main thread in a container's
// namespace would make /proc/PID/ns/net of the daemon name that
// namespace.)
func inOtherNetNS(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		orig, err := unix.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			goruntime.UnlockOSThread()
			errc <- os.NewSyscallError("open netns", err)
			return
		}
		defer unix.Close(orig)
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Stay locked: the thread is retired with the goroutine.
			errc <- errors.Join(ferr, os.NewSyscallError("setns back", err))
			return
		}
		goruntime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// RemoveNetNS unmounts and removes a netns file made by CreateNetNS; a
// missing file is fine. The namespace itself goes away with its last
// process.
func RemoveNetNS(path string) error {
	for {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if err == nil {
			continue // stacked mounts: unmount until none is left
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break
		}
		return &os.PathError{Op: "unmount", Path: path, Err: err}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// IsNetNSMounted reports whether path is a live netns bind mount.
func IsNetNSMounted(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// enterNetNS moves the calling thread into the network namespace bound
// at path (inside an inOtherNetNS function).
func enterNetNS(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return os.NewSyscallError("setns", err)
	}
	return nil
}

// SetNetNSSysctls writes net.* sysctls ("net.ipv4.ip_forward") inside the
// network namespace at path. The runtime refuses net.* sysctls for a
// container that joins a namespace by path (it cannot tell ours from the
// host's), so the supervisor applies them to the netns file it made
// itself, before the container starts.
func SetNetNSSysctls(path string, sysctls map[string]string) error {
	if len(sysctls) == 0 {
		return nil
	}
	return inOtherNetNS(func() error {
		if err := enterNetNS(path); err != nil {
			return err
		}
		for k, v := range sysctls {
			p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
			if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
				return fmt.Errorf("sysctl %s: %w", k, err)
			}
		}
		return nil
	})
}
