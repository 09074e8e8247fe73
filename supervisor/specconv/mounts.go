package specconv

import (
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultShmSize is Docker's default /dev/shm size (64 MiB).
const DefaultShmSize = 64 << 20

// defaultMounts are Docker's default mounts.
func (c *conv) defaultMounts() []specs.Mount {
	shm := c.svc.ShmSize
	if shm <= 0 {
		shm = DefaultShmSize
	}
	sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
	cgOpts := []string{"ro", "nosuid", "noexec", "nodev"}
	if c.svc.Privileged {
		sysOpts = []string{"nosuid", "noexec", "nodev", "rw"}
	}
	if c.svc.Privileged || c.sec.writableCgroups != nil && *c.sec.writableCgroups {
		cgOpts = []string{"rw", "nosuid", "noexec", "nodev"}
	}
	ms := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: cgOpts},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
	}
	if c.hostIPC {
		// Docker shares the host's /dev/shm with ipc: host.
		ms = append(ms, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "nosuid", "noexec", "nodev"}})
	} else {
		ms = append(ms, specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm",
			Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + strconv.FormatInt(shm, 10)}})
	}
	return ms
}

func (c *conv) mounts() error {
	var user []specs.Mount
	dests := map[string]bool{}
	add := func(field string, m specs.Mount) error {
		m.Destination = path.Clean(m.Destination)
		if dests[m.Destination] {
			return c.errf(field, "two mounts at %s", m.Destination)
		}
		dests[m.Destination] = true
		user = append(user, m)
		return nil
	}
	for _, m := range c.opts.Mounts {
		if !path.IsAbs(m.Destination) {
			return c.errf("volumes", "mount target %q is not an absolute path", m.Destination)
		}
		if err := add("volumes", m); err != nil {
			return err
		}
	}
	// Defaults at a user mount's destination give way to it; a user /dev
	// replaces every default below /dev too (Docker's rule).
	var out []specs.Mount
	for _, m := range c.defaultMounts() {
		if dests[m.Destination] || dests["/dev"] && strings.HasPrefix(m.Destination, "/dev/") {
			continue
		}
		out = append(out, m)
	}
	// Parents before children.
	sort.SliceStable(user, func(i, j int) bool {
		return depth(user[i].Destination) < depth(user[j].Destination)
	})
	c.s.Mounts = append(out, user...)
	return nil
}

func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}
