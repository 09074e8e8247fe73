package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultMaskedPaths and DefaultReadonlyPaths are Docker's.
var (
	DefaultMaskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	DefaultReadonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// DefaultDeviceRules is the device cgroup allow-list a Docker container
// gets (Docker's rules plus runc's built-in ones): nothing but mknod of
// any node, and the standard character devices (null, zero, full, random,
// urandom, tty, console, ptmx, pts, net/tun).
func DefaultDeviceRules() []specs.LinuxDeviceCgroup {
	dev := func(typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
		r := specs.LinuxDeviceCgroup{Allow: true, Type: typ, Access: access}
		if major >= 0 {
			r.Major = &major
		}
		if minor >= 0 {
			r.Minor = &minor
		}
		return r
	}
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		dev("c", -1, -1, "m"), dev("b", -1, -1, "m"),
		dev("c", 1, 3, "rwm"), dev("c", 1, 5, "rwm"), dev("c", 1, 7, "rwm"),
		dev("c", 1, 8, "rwm"), dev("c", 1, 9, "rwm"), dev("c", 5, 0, "rwm"),
		dev("c", 5, 1, "rwm"), dev("c", 5, 2, "rwm"), dev("c", 136, -1, "rwm"),
		dev("c", 10, 200, "rwm"),
	}
}

// DefaultSpec returns a Docker-like spec for rootfs (relative to the
// bundle, or absolute) running args: new pid, mount, uts, ipc, net and
// cgroup namespaces, Docker's mounts, capabilities, masked and read-only
// paths, and a cgroup /berth/<id> set by Create when empty.
func DefaultSpec(rootfs string, args ...string) *specs.Spec {
	caps := append([]string(nil), DefaultCapabilities...)
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: rootfs},
		Process: &specs.Process{
			Args: args,
			Env:  []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cwd:  "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
		},
		Hostname: "berth",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.CgroupNamespace},
			},
			Resources:     &specs.LinuxResources{Devices: DefaultDeviceRules()},
			MaskedPaths:   append([]string(nil), DefaultMaskedPaths...),
			ReadonlyPaths: append([]string(nil), DefaultReadonlyPaths...),
		},
	}
}

// LoadSpec reads bundle/config.json.
func LoadSpec(bundle string) (*specs.Spec, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, err
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidSpec, filepath.Join(bundle, "config.json"), err)
	}
	return &s, nil
}

// namespacedSysctl reports whether a sysctl is per namespace (writing
// any other from a container would change the host).
func namespacedSysctl(key string, hasNS func(specs.LinuxNamespaceType) bool) bool {
	switch {
	case key == "kernel.msgmax" || key == "kernel.msgmnb" || key == "kernel.msgmni" ||
		key == "kernel.sem" || key == "kernel.shmall" || key == "kernel.shmmax" ||
		key == "kernel.shmmni" || key == "kernel.shm_rmid_forced" || strings.HasPrefix(key, "fs.mqueue."):
		return hasNS(specs.IPCNamespace)
	case strings.HasPrefix(key, "net."):
		return hasNS(specs.NetworkNamespace)
	case key == "kernel.hostname" || key == "kernel.domainname":
		return hasNS(specs.UTSNamespace)
	}
	return false
}

// validateSpec checks what Create relies on, with clear errors.
func validateSpec(s *specs.Spec) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidSpec}, a...)...)
	}
	if s == nil {
		return bad("no spec")
	}
	if !strings.HasPrefix(s.Version, "1.") {
		return bad("ociVersion %q: want 1.x", s.Version)
	}
	if s.Root == nil || s.Root.Path == "" {
		return bad("root.path is empty")
	}
	if s.Process == nil || len(s.Process.Args) == 0 {
		return bad("process.args is empty")
	}
	if s.Process.Cwd != "" && !filepath.IsAbs(s.Process.Cwd) {
		return bad("process.cwd %q is not absolute", s.Process.Cwd)
	}
	if s.Linux == nil {
		return bad("linux section missing")
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range s.Linux.Namespaces {
		switch ns.Type {
		case specs.PIDNamespace, specs.NetworkNamespace, specs.MountNamespace, specs.IPCNamespace,
			specs.UTSNamespace, specs.UserNamespace, specs.CgroupNamespace:
		default:
			return bad("namespace type %q not supported", ns.Type)
		}
		if seen[ns.Type] {
			return bad("namespace %q listed twice", ns.Type)
		}
		seen[ns.Type] = true
		if ns.Path != "" && (ns.Type == specs.MountNamespace || ns.Type == specs.UserNamespace) {
			return bad("joining an existing %s namespace is not supported", ns.Type)
		}
	}
	if !seen[specs.MountNamespace] {
		return bad("a mount namespace is required")
	}
	if (s.Hostname != "" || s.Domainname != "") && !seen[specs.UTSNamespace] {
		return bad("hostname/domainname need a uts namespace")
	}
	if seen[specs.UserNamespace] && (len(s.Linux.UIDMappings) == 0 || len(s.Linux.GIDMappings) == 0) {
		return bad("a user namespace needs uidMappings and gidMappings")
	}
	hasNS := func(t specs.LinuxNamespaceType) bool {
		for _, ns := range s.Linux.Namespaces {
			if ns.Type == t && ns.Path == "" {
				return true
			}
		}
		return false
	}
	for k := range s.Linux.Sysctl {
		if !namespacedSysctl(k, hasNS) {
			return bad("sysctl %q is not namespaced (or its namespace is shared with the host)", k)
		}
	}
	if s.Linux.Seccomp != nil && !seccompAvailable {
		return bad("seccomp requested but this build has no seccomp support yet")
	}
	for _, m := range s.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return bad("mount destination %q is not absolute", m.Destination)
		}
	}
	return nil
}
