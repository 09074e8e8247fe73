package cgroups

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sync"
)

// Detect reports the host's cgroup layout from /proc/self/mountinfo.
func Detect() (Version, error) {
	l, err := readLayout("")
	if err != nil {
		return 0, err
	}
	return l.Version, nil
}

// New returns the Manager for the cgroup at path, an OCI
// linux.cgroupsPath such as "/berth/ID" (absolute below each
// hierarchy's root), for the host's cgroup layout (v1, hybrid or unified
// v2), detected from /proc/self/mountinfo. It touches nothing; Create
// does.
func New(path string) (Manager, error) {
	return newWithPrefix("", path)
}

// newWithPrefix is New with every mountpoint prefixed by prefix.
func newWithPrefix(prefix, path string) (Manager, error) {
	if prefix == "" {
		clean, err := validatePath(path)
		if err != nil {
			return nil, err
		}
		l, err := hostLayout()
		if err != nil {
			return nil, err
		}
		return newFromLayout(l, clean)
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	defer f.Close()
	return newFromMountinfo(f, prefix, path)
}

// The host's layout, read once per process: mountinfo grows with every
// mount on the host (a container's rootfs is one), and a daemon creating
// many containers would read it for each. The hierarchies do not change
// under a running berth; Forget drops the cache in case they did.
var cached struct {
	mu sync.Mutex
	l  *layout
}

func hostLayout() (*layout, error) {
	cached.mu.Lock()
	defer cached.mu.Unlock()
	if cached.l != nil {
		return cached.l, nil
	}
	l, err := readLayout("")
	if err != nil {
		return nil, err
	}
	cached.l = l
	return l, nil
}

// HostMounts lists the cgroup filesystems mounted at or below
// /sys/fs/cgroup (an empty list on a host without them), from the same
// cached read of mountinfo as New. The list is shared: do not change it.
func HostMounts() ([]Mount, error) {
	l, err := hostLayout()
	if errors.Is(err, ErrNoCgroups) {
		return []Mount{}, nil
	}
	if err != nil {
		return nil, err
	}
	if l.Mounts == nil {
		return []Mount{}, nil
	}
	return l.Mounts, nil
}

// Forget drops the cached host layout: the next New or HostMounts reads
// mountinfo again. Callers use it after a cgroup operation failed.
func Forget() {
	cached.mu.Lock()
	cached.l = nil
	cached.mu.Unlock()
}

// newFromMountinfo builds the Manager from a mountinfo text; tests use
// it with a prefix to run the file-writing code on a fake tree.
func newFromMountinfo(mountinfo io.Reader, prefix, path string) (Manager, error) {
	clean, err := validatePath(path)
	if err != nil {
		return nil, err
	}
	l, err := parseMountinfo(mountinfo, prefix)
	if err != nil {
		return nil, err
	}
	return newFromLayout(l, clean)
}

func newFromLayout(l *layout, clean string) (Manager, error) {
	if l.Version == V2 {
		return newV2(l, clean)
	}
	return newV1(l, clean)
}

func readLayout(prefix string) (*layout, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	defer f.Close()
	return parseMountinfo(f, prefix)
}

// A thread can join the cgroups of a v1 Manager by itself, moving only
// itself, by writing "0" to the tasks file of each hierarchy (JoinThread,
// for the Paths of a Manager that ThreadJoinable accepts). The kernel then
// takes no threadgroup lock. Moving another process (Apply, a pid written
// to cgroup.procs) write-locks cgroup_threadgroup_rwsem while holding
// cgroup_mutex, and once that lock has been idle for a moment the write
// waits for an RCU grace period (5-16 ms on this project's CI machine):
// every other cgroup operation on the host (mkdir, other joins, mounting
// cgroupfs) waits with it. A container init that joins by itself, from the
// thread that will exec the service's command, ends up exactly where Apply
// would put it.

// ThreadJoinable reports whether paths (a Manager's Paths) are v1
// hierarchies that JoinThread can join; v2 has no per-thread join outside
// threaded cgroups.
func ThreadJoinable(paths map[string]string) bool {
	_, v2 := paths[""]
	return len(paths) > 0 && !v2
}

// JoinThread moves the calling thread into the cgroups at paths (see
// ThreadJoinable), in the order of JoinDirs.
func JoinThread(paths map[string]string) error {
	for _, dir := range JoinDirs(paths) {
		if err := writeFile(dir, "tasks", "0"); err != nil {
			return err
		}
	}
	return nil
}

// JoinDirs are the directories JoinThread writes to: each of paths once
// (co-mounted controllers share one), in order.
func JoinDirs(paths map[string]string) []string {
	dirs := slices.Sorted(maps.Values(paths))
	return slices.Compact(dirs)
}
