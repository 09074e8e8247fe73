package supervisor

import (
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// createNetNS makes a new network namespace and keeps it alive with a bind
// mount on path (what `ip netns add` does), so netstack can attach it before
// any process runs in it and containers can join it by path.
//
// unshare(CLONE_NEWNET) changes only the calling thread, so it runs on a
// locked thread in a goroutine of its own that returns without unlocking:
// the Go runtime then ends that thread instead of reusing it with the
// wrong namespace.
func createNetNS(path string) (retErr error) {
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
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- os.NewSyscallError("unshare", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
			errc <- &os.PathError{Op: "mount", Path: path, Err: err}
			return
		}
		errc <- nil
	}()
	return <-errc
}

// removeNetNS unmounts and removes a netns file; a missing file is fine.
func removeNetNS(path string) error {
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

// isNetNSMounted reports whether path is a live netns bind mount.
func isNetNSMounted(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// setNetSysctls writes net.* sysctls inside the network namespace at path.
// The runtime refuses net.* sysctls for a container that joins a namespace
// by path (it cannot tell ours from the host's), so the engine applies them
// to the netns file it made itself, before the container starts.
func setNetSysctls(path string, sysctls map[string]string) error {
	if len(sysctls) == 0 {
		return nil
	}
	errc := make(chan error, 1)
	go func() {
		// The thread joins another namespace and is never unlocked:
		// the Go runtime ends it when this goroutine returns.
		goruntime.LockOSThread()
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- &os.PathError{Op: "open", Path: path, Err: err}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- os.NewSyscallError("setns", err)
			return
		}
		for k, v := range sysctls {
			p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
			if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
				errc <- fmt.Errorf("sysctl %s: %w", k, err)
				return
			}
		}
		errc <- nil
	}()
	return <-errc
}
