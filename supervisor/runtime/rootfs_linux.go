package runtime

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/supervisor/runtime/cgroups"
)

// setupRootfs runs in the init, in its new mount namespace, and leaves
// it chrooted (pivot_root) in the finished container root.
func setupRootfs(cfg *initConfig) error {
	spec := cfg.Spec
	rootfs := cfg.Rootfs
	// Nothing we mount may propagate back to the host.
	if err := mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return err
	}
	// pivot_root needs the new root to be a mount point.
	if err := mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	rootFd, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: rootfs, Err: err}
	}
	defer unix.Close(rootFd)
	for i := range spec.Mounts {
		m := &spec.Mounts[i]
		if err := mountOne(cfg, rootFd, m); err != nil {
			return fmt.Errorf("mount %s: %w", m.Destination, err)
		}
	}
	if freshDev(spec.Mounts) {
		if err := setupDev(cfg, rootFd); err != nil {
			return fmt.Errorf("/dev: %w", err)
		}
	}
	if spec.Linux != nil {
		for _, d := range spec.Linux.Devices {
			if err := createDevice(cfg, rootFd, d); err != nil {
				return fmt.Errorf("device %s: %w", d.Path, err)
			}
		}
	}
	if err := beforePivot(cfg); err != nil {
		return err
	}
	if err := pivotRoot(rootfs); err != nil {
		return err
	}
	// From here the init reaches its own fds through /proc/self/fd (the
	// exec fifo, the mounts on masked and read-only paths): an image's
	// own files there would take it elsewhere.
	var st unix.Statfs_t
	if err := unix.Statfs("/proc", &st); err != nil || st.Type != unix.PROC_SUPER_MAGIC {
		return errors.New("/proc is not procfs: the container needs a proc mount there")
	}
	if spec.Linux != nil {
		// sysctls before the read-only /proc/sys, in key order
		for _, k := range slices.Sorted(maps.Keys(spec.Linux.Sysctl)) {
			if err := writeFileNoCreate(sysctlPath(k), spec.Linux.Sysctl[k]); err != nil {
				return fmt.Errorf("sysctl %s: %w", k, err)
			}
		}
		for _, p := range spec.Linux.MaskedPaths {
			if err := maskPath(p); err != nil {
				return fmt.Errorf("masked path %s: %w", p, err)
			}
		}
		for _, p := range spec.Linux.ReadonlyPaths {
			if err := readonlyPath(p); err != nil {
				return fmt.Errorf("readonly path %s: %w", p, err)
			}
		}
		if prop := spec.Linux.RootfsPropagation; prop != "" {
			f, ok := propagationTable[prop]
			if !ok {
				return fmt.Errorf("%w: rootfsPropagation %q", ErrInvalidSpec, prop)
			}
			if err := mount("", "/", "", f, ""); err != nil {
				return err
			}
		}
	}
	if spec.Root.Readonly {
		flags := uintptr(unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY) | lockedMountFlags("/")
		if err := mount("", "/", "", flags, ""); err != nil {
			return err
		}
	}
	return nil
}

// mountKind is how setupRootfs makes a spec mount.
type mountKind int

const (
	mountFS      mountKind = iota // a filesystem mounted at its destination
	mountBind                     // bindMount
	mountCgroups                  // mountCgroup
)

// mountPlan is what setupRootfs does with one spec mount, decided in one
// place for the Go init (mountOne) and the C init's program (encodeCInit).
type mountPlan struct {
	kind mountKind
	dest string // the destination, cleaned
	opts mountOpts
	// proc and sysfs: an image whose /proc or /sys is a symlink could
	// redirect the kernel's files (or our writes to them) anywhere, so a
	// symlink at dest is refused and none is followed on the way there.
	noSymlinks bool
}

func planMount(m *specs.Mount) (mountPlan, error) {
	if !filepath.IsAbs(m.Destination) {
		return mountPlan{}, fmt.Errorf("%w: mount destination %q is not absolute", ErrInvalidSpec, m.Destination)
	}
	p := mountPlan{dest: filepath.Clean(m.Destination), opts: parseMountOptions(m.Options), noSymlinks: m.Type == "proc" || m.Type == "sysfs"}
	switch {
	case p.opts.bind || m.Type == "bind":
		p.kind = mountBind
	case m.Type == "cgroup" || m.Type == "cgroup2":
		p.kind = mountCgroups
	}
	return p, nil
}

// resolve is the RESOLVE_* flags for the walk to dest.
func (p mountPlan) resolve() uint64 {
	if p.noSymlinks {
		return unix.RESOLVE_NO_SYMLINKS
	}
	return 0
}

// freshDev reports whether the mounts give the container a /dev of its
// own, which setupDev fills.
func freshDev(mounts []specs.Mount) bool {
	for _, m := range mounts {
		if filepath.Clean(m.Destination) == "/dev" && m.Type != "bind" {
			return true
		}
	}
	return false
}

// sysctlPath is the /proc/sys file of a sysctl key.
func sysctlPath(key string) string { return "/proc/sys/" + strings.ReplaceAll(key, ".", "/") }

// unifiedCgroupOnly reports whether the host's cgroup hierarchies are
// cgroup2 alone, at /sys/fs/cgroup (mountCgroup then mounts cgroup2).
func unifiedCgroupOnly(hier []cgroups.Mount) bool {
	return len(hier) == 1 && hier[0].FSType == "cgroup2" && hier[0].Mountpoint == "/sys/fs/cgroup"
}

// mountOne performs one spec mount. The destination is created and
// resolved inside the root (symlinks in the image cannot point it at the
// host) and the mount goes through /proc/self/fd/N of an O_PATH fd, so
// nothing can swap the path between check and mount.
func mountOne(cfg *initConfig, rootFd int, m *specs.Mount) error {
	plan, err := planMount(m)
	if err != nil {
		return err
	}
	dest, opts := plan.dest, plan.opts
	if plan.noSymlinks {
		if err := refuseSymlink(rootFd, dest); err != nil {
			return err
		}
	}
	switch plan.kind {
	case mountBind:
		return bindMount(rootFd, m, dest, opts)
	case mountCgroups:
		return mountCgroup(cfg, rootFd, dest, opts)
	}
	fd, err := mkdirAllInRoot(rootFd, dest, false, plan.resolve())
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	flags := opts.flags
	err = mount(m.Source, fdPath(fd), m.Type, flags, opts.dataString())
	if err != nil && m.Type == "sysfs" && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EBUSY)) {
		// A sysfs mount needs a network namespace of our own (and owned by
		// our user namespace): fall back to the host's, read-only.
		err = mount("/sys", fdPath(fd), "", unix.MS_BIND|unix.MS_REC, "")
		if err == nil {
			err = remountBind(rootFd, dest, opts.flags|unix.MS_RDONLY)
		}
	}
	if err != nil {
		return err
	}
	for _, p := range opts.propagation {
		if err := remountPropagation(rootFd, dest, p); err != nil {
			return err
		}
	}
	return nil
}

func refuseSymlink(rootFd int, dest string) error {
	rel := strings.TrimPrefix(dest, "/")
	var st unix.Stat_t
	err := unix.Fstatat(rootFd, rel, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return fmt.Errorf("refusing to mount on %s: it is a symlink in the image", dest)
	}
	return nil
}

// bindMount binds a host source (opened once, O_PATH) onto dest inside
// the root, then applies read-only and the other flags with a remount.
func bindMount(rootFd int, m *specs.Mount, dest string, opts mountOpts) error {
	src, err := unix.Open(m.Source, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open bind source", Path: m.Source, Err: err}
	}
	defer unix.Close(src)
	dir, err := isDirFd(src)
	if err != nil {
		return err
	}
	fd, err := mkdirAllInRoot(rootFd, dest, !dir, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	isDir, err := isDirFd(fd)
	if err != nil {
		return err
	}
	if isDir != dir {
		return fmt.Errorf("bind source %s and destination differ in type (directory vs file)", m.Source)
	}
	flags := uintptr(unix.MS_BIND)
	if opts.flags&unix.MS_REC != 0 {
		flags |= unix.MS_REC
	}
	if err := mount(fdPath(src), fdPath(fd), "", flags, ""); err != nil {
		return err
	}
	if rest := opts.flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT); rest != 0 {
		if err := remountBind(rootFd, dest, rest); err != nil {
			return err
		}
	}
	for _, p := range opts.propagation {
		if err := remountPropagation(rootFd, dest, p); err != nil {
			return err
		}
	}
	return nil
}

// remountBind changes the flags of the mount now at dest. It reopens dest
// so the fd names the new mount, not the directory under it.
func remountBind(rootFd int, dest string, flags uintptr) error {
	fd, err := openInRoot(rootFd, dest, unix.O_PATH, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	p := fdPath(fd)
	err = mount("", p, "", unix.MS_BIND|unix.MS_REMOUNT|flags, "")
	if err != nil && errors.Is(err, unix.EPERM) {
		err = mount("", p, "", unix.MS_BIND|unix.MS_REMOUNT|flags|lockedMountFlags(p), "")
	}
	return err
}

func remountPropagation(rootFd int, dest string, flag uintptr) error {
	fd, err := openInRoot(rootFd, dest, unix.O_PATH, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return mount("", fdPath(fd), "", flag, "")
}

// mountCgroup mounts the container's view of the cgroup hierarchies at
// dest: cgroup2 on a unified host; on v1/hybrid hosts a tmpfs holding one
// mount per host v1 hierarchy (and the unified one if present). With a
// cgroup namespace each shows the container's cgroup as its root.
func mountCgroup(cfg *initConfig, rootFd int, dest string, opts mountOpts) error {
	fd, err := mkdirAllInRoot(rootFd, dest, false, unix.RESOLVE_NO_SYMLINKS)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	hier := cfg.CgroupMounts
	if hier == nil {
		var err error
		if hier, err = cgroups.HostMounts(); err != nil {
			return err
		}
	}
	flags := opts.flags | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if unifiedCgroupOnly(hier) {
		err := mount("cgroup", fdPath(fd), "cgroup2", flags, "")
		if err != nil && cfg.NewUserNS && cfg.CgroupPaths[""] != "" {
			err = mount(cfg.CgroupPaths[""], fdPath(fd), "", unix.MS_BIND|unix.MS_REC, "")
			if err == nil && opts.readonly {
				err = remountBind(rootFd, dest, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC)
			}
		}
		return err
	}
	if err := mount("tmpfs", fdPath(fd), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755"); err != nil {
		return err
	}
	// The tmpfs is new and only ours: its directories are made straight
	// in it, with no walk through the root for each.
	tfd, err := openInRoot(rootFd, dest, unix.O_PATH|unix.O_DIRECTORY, unix.RESOLVE_NO_SYMLINKS)
	if err != nil {
		return err
	}
	defer unix.Close(tfd)
	for _, h := range hier {
		name := filepath.Base(h.Mountpoint)
		if err := unix.Mkdirat(tfd, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return &os.PathError{Op: "mkdir", Path: filepath.Join(dest, name), Err: err}
		}
		sfd, err := unix.Openat(tfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "open", Path: filepath.Join(dest, name), Err: err}
		}
		if cfg.NewUserNS {
			// cgroupfs cannot be mounted from a user namespace: bind the
			// container's own directory of this hierarchy instead.
			err = nil
			for _, p := range cfg.CgroupPaths {
				if strings.HasPrefix(p, h.Mountpoint+"/") {
					err = mount(p, fdPath(sfd), "", unix.MS_BIND|unix.MS_REC, "")
					break
				}
			}
		} else {
			err = mount("cgroup", fdPath(sfd), h.FSType, flags, h.Options)
		}
		unix.Close(sfd)
		if err != nil {
			return err
		}
	}
	if opts.readonly {
		return remountBind(rootFd, dest, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC)
	}
	return nil
}

var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

// setupDev fills a fresh /dev: standard devices, the /proc/self/fd
// links, and /dev/ptmx pointing at the container's own devpts.
func setupDev(cfg *initConfig, rootFd int) error {
	for _, d := range defaultDevices {
		mode := os.FileMode(0o666)
		d.FileMode = &mode
		if err := createDevice(cfg, rootFd, d); err != nil {
			return err
		}
	}
	devFd, err := openInRoot(rootFd, "/dev", unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(devFd)
	links := [][2]string{
		{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
		{"pts/ptmx", "ptmx"},
	}
	for _, l := range links {
		if l[1] == "ptmx" {
			// a devpts mount made /dev/pts/ptmx; replace any ptmx node.
			_ = unix.Unlinkat(devFd, "ptmx", 0)
		}
		if err := unix.Symlinkat(l[0], devFd, l[1]); err != nil && !errors.Is(err, unix.EEXIST) {
			return &os.PathError{Op: "symlink", Path: "/dev/" + l[1], Err: err}
		}
	}
	return nil
}

// deviceTypes are the file types of the runtime spec's device types.
var deviceTypes = map[string]uint32{"c": unix.S_IFCHR, "u": unix.S_IFCHR, "b": unix.S_IFBLK, "p": unix.S_IFIFO}

// createDevice makes a device node inside the root: mknod, or in a user
// namespace (where mknod is not allowed) a bind mount of the host's node.
func createDevice(cfg *initConfig, rootFd int, d specs.LinuxDevice) error {
	dest := filepath.Clean("/" + d.Path)
	parent, err := mkdirAllInRoot(rootFd, filepath.Dir(dest), false, 0)
	if err != nil {
		return err
	}
	defer unix.Close(parent)
	name := filepath.Base(dest)
	if cfg.NewUserNS {
		fd, err := mkdirAllInRoot(rootFd, dest, true, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return mount(d.Path, fdPath(fd), "", unix.MS_BIND, "")
	}
	typ, ok := deviceTypes[d.Type]
	if !ok {
		return fmt.Errorf("%w: device type %q", ErrInvalidSpec, d.Type)
	}
	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(d.FileMode.Perm())
	}
	_ = unix.Unlinkat(parent, name, 0)
	if err := unix.Mknodat(parent, name, typ|perm, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))); err != nil {
		return &os.PathError{Op: "mknod", Path: dest, Err: err}
	}
	uid, gid := -1, -1
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if uid >= 0 || gid >= 0 {
		if err := unix.Fchownat(parent, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "chown", Path: dest, Err: err}
		}
	}
	return nil
}

// pivotRoot makes rootfs our root and detaches the old one, without
// needing a directory for it (pivot_root(".", ".") stacks the old root
// on top of the new one; we then unmount it lazily).
func pivotRoot(rootfs string) error {
	oldRoot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: "/", Err: err}
	}
	defer unix.Close(oldRoot)
	newRoot, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: rootfs, Err: err}
	}
	defer unix.Close(newRoot)
	if err := unix.Fchdir(newRoot); err != nil {
		return os.NewSyscallError("fchdir", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return &os.PathError{Op: "pivot_root", Path: rootfs, Err: err}
	}
	if err := unix.Fchdir(oldRoot); err != nil {
		return os.NewSyscallError("fchdir", err)
	}
	// Make the old root a slave so the unmount does not propagate to the
	// host's mounts.
	if err := mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return err
	}
	if err := unmount(".", unix.MNT_DETACH); err != nil {
		return err
	}
	if err := unix.Chdir("/"); err != nil {
		return os.NewSyscallError("chdir", err)
	}
	return nil
}

// maskPath hides a path: a read-only empty tmpfs over a directory,
// /dev/null over a file.
func maskPath(p string) error {
	fd, err := openInRoot(unix.AT_FDCWD, p, unix.O_PATH, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	dir, err := isDirFd(fd)
	if err != nil {
		return err
	}
	if dir {
		return mount("tmpfs", fdPath(fd), "tmpfs", unix.MS_RDONLY, "size=0k")
	}
	return mount("/dev/null", fdPath(fd), "", unix.MS_BIND, "")
}

// readonlyPath bind-mounts a path onto itself and remounts it read-only.
func readonlyPath(p string) error {
	fd, err := openInRoot(unix.AT_FDCWD, p, unix.O_PATH, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	err = mount(fdPath(fd), fdPath(fd), "", unix.MS_BIND|unix.MS_REC, "")
	unix.Close(fd)
	if err != nil {
		return err
	}
	return remountBind(unix.AT_FDCWD, p, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC)
}
