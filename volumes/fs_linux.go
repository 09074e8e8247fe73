package volumes

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// All syscalls of the package go through the small wrappers below: they
// retry on EINTR and return *os.PathError.

func closeFD(fd int) { unix.Close(fd) }

func retryEINTR(f func() error) error {
	for {
		if err := f(); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// renameNoReplace renames old to new, failing with EEXIST when new exists
// (renameat2 RENAME_NOREPLACE; a plain rename would replace an empty
// directory).
func renameNoReplace(oldpath, newpath string) error {
	err := retryEINTR(func() error {
		return unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	})
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return nil
}

func flockExclusive(p string) (func(), error) {
	fd, err := unix.Open(p, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	if err := retryEINTR(func() error { return unix.Flock(fd, unix.LOCK_EX) }); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "flock", Path: p, Err: err}
	}
	// Closing the descriptor drops the lock.
	return func() { unix.Close(fd) }, nil
}

// openat2 opens p below dirfd with the given resolve flags. The kernel
// (5.6+) does the path walk: with RESOLVE_IN_ROOT, ".." and absolute
// symlinks stop at dirfd as if it were "/", so nothing outside is reached;
// with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS any escape or symlink fails.
func openat2(dirfd int, p string, flags uint64, resolve uint64) (int, error) {
	how := &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: resolve}
	if flags&unix.O_CREAT != 0 {
		how.Mode = 0o644
	}
	var fd int
	err := retryEINTR(func() error {
		var err error
		for range 16 { // EAGAIN: a concurrent rename raced the walk
			fd, err = unix.Openat2(dirfd, p, how)
			if !errors.Is(err, unix.EAGAIN) {
				break
			}
		}
		return err
	})
	if err != nil {
		return -1, &os.PathError{Op: "openat2", Path: p, Err: err}
	}
	return fd, nil
}

const inRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// mkdirAllInRoot makes the directory p (a path in the container) inside
// the root directory rootfd, resolving every component inside the root.
// A dangling symlink on the way is followed the way the container would
// see it: its target is created, inside the root. It returns an O_PATH
// descriptor of the directory.
func mkdirAllInRoot(rootfd int, p string) (int, error) {
	for range 40 { // like the kernel's symlink limit (ELOOP)
		fd, next, err := mkdirAllInRootOnce(rootfd, path.Clean("/"+p))
		if err != nil || next == "" {
			return fd, err
		}
		p = next
	}
	return -1, fmt.Errorf("mount target %s in the container: %w", p, unix.ELOOP)
}

// mkdirAllInRootOnce walks p component by component. When it meets a
// dangling symlink it returns the path to retry with (the symlink's
// target, as seen in the container, plus the rest of p).
func mkdirAllInRootOnce(rootfd int, p string) (int, string, error) {
	cur, err := unix.Dup(rootfd)
	if err != nil {
		return -1, "", err
	}
	comps := strings.Split(strings.Trim(p, "/"), "/")
	prefix := ""
	for i, c := range comps {
		if c == "" {
			continue
		}
		prefix += "/" + c
		fd, err := openat2(rootfd, prefix, unix.O_PATH|unix.O_DIRECTORY, inRoot)
		if errors.Is(err, unix.ENOENT) {
			// cur is the real directory that prefix's parent resolved to.
			merr := unix.Mkdirat(cur, c, 0o755)
			if errors.Is(merr, unix.EEXIST) {
				buf := make([]byte, unix.PathMax)
				if n, lerr := unix.Readlinkat(cur, c, buf); lerr == nil {
					unix.Close(cur)
					link := string(buf[:n])
					if !path.IsAbs(link) {
						link = path.Join(path.Dir(prefix), link)
					}
					// path.Clean stops ".." at "/", as RESOLVE_IN_ROOT does.
					return -1, path.Clean("/" + link + "/" + strings.Join(comps[i+1:], "/")), nil
				}
			} else if merr != nil {
				unix.Close(cur)
				return -1, "", &os.PathError{Op: "mkdirat", Path: prefix, Err: merr}
			}
			fd, err = openat2(rootfd, prefix, unix.O_PATH|unix.O_DIRECTORY, inRoot)
		}
		unix.Close(cur)
		if err != nil {
			return -1, "", fmt.Errorf("mount target %s in the container: %w", prefix, err)
		}
		cur = fd
	}
	return cur, "", nil
}

// makeMountpoints creates each target inside rootfs (a directory or an
// empty file) with every path component resolved inside rootfs, so that an
// image whose path is a symlink to "/" or "../.." gets its mountpoint made
// inside its own root, never on the host. A target below another mount
// (inside a volume) is made in the rootfs only: the runtime makes it
// again inside the mounted volume as it mounts, like runc.
func makeMountpoints(rootfs string, mps []mountpoint) error {
	rootfd, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: rootfs, Err: err}
	}
	defer unix.Close(rootfd)
	for _, mp := range mps {
		if err := makeMountpoint(rootfd, mp.target, mp.dir); err != nil {
			return err
		}
	}
	return nil
}

func makeMountpoint(rootfd int, target string, dir bool) error {
	if dir {
		fd, err := mkdirAllInRoot(rootfd, target)
		if err != nil {
			return err
		}
		return unix.Close(fd)
	}
	pfd, err := mkdirAllInRoot(rootfd, path.Dir(target))
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	base := path.Base(target)
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	switch {
	case err == nil:
		return unix.Close(fd)
	case errors.Is(err, unix.EEXIST):
		// Something is there already (a file, a directory, a symlink
		// the runtime resolves inside the root): leave it.
		return nil
	default:
		return &os.PathError{Op: "create", Path: target, Err: err}
	}
}

// resolveSubpath returns data/sub after checking, with the kernel's
// RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS walk, that no component of sub is a
// symlink or leaves data; missing directories are created.
func resolveSubpath(data, sub string) (string, error) {
	dfd, err := unix.Open(data, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", &os.PathError{Op: "open", Path: data, Err: err}
	}
	defer unix.Close(dfd)
	const beneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV
	prefix := ""
	for _, c := range strings.Split(sub, "/") {
		if prefix != "" {
			prefix += "/"
		}
		prefix += c
		fd, err := openat2(dfd, prefix, unix.O_PATH, beneath)
		if errors.Is(err, unix.ENOENT) {
			pfd := dfd
			if d := path.Dir(prefix); d != "." {
				if pfd, err = openat2(dfd, d, unix.O_PATH|unix.O_DIRECTORY, beneath); err != nil {
					return "", fmt.Errorf("%w: subpath %q: %v", ErrInvalid, sub, err)
				}
			}
			err = unix.Mkdirat(pfd, c, 0o755)
			if pfd != dfd {
				unix.Close(pfd)
			}
			if err != nil && !errors.Is(err, unix.EEXIST) {
				return "", &os.PathError{Op: "mkdirat", Path: prefix, Err: err}
			}
			fd, err = openat2(dfd, prefix, unix.O_PATH, beneath)
		}
		if err != nil {
			if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV) {
				return "", fmt.Errorf("%w: subpath %q: %s is a symlink or leaves the volume", ErrInvalid, sub, prefix)
			}
			return "", fmt.Errorf("subpath %q: %w", sub, err)
		}
		unix.Close(fd)
	}
	return filepath.Join(data, sub), nil
}

// mountFlagTable maps mount(8) option names to flags; clear means the
// option turns the flag off.
var mountFlagTable = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
	"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
	"dirsync": {false, unix.MS_DIRSYNC},
	"noatime": {false, unix.MS_NOATIME}, "atime": {true, unix.MS_NOATIME},
	"nodiratime": {false, unix.MS_NODIRATIME}, "diratime": {true, unix.MS_NODIRATIME},
	"relatime": {false, unix.MS_RELATIME}, "norelatime": {true, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME}, "nostrictatime": {true, unix.MS_STRICTATIME},
	"bind": {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
}

// MountFlags splits mount options into mount(2) flags and the filesystem
// data string (options the kernel's filesystem parses, like size=). The
// propagation options are ignored here.
func MountFlags(opts []string) (flags uintptr, data string) {
	var rest []string
	for _, o := range opts {
		if f, ok := mountFlagTable[o]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		switch o {
		case "private", "rprivate", "shared", "rshared", "slave", "rslave":
			continue
		}
		rest = append(rest, o)
	}
	return flags, strings.Join(rest, ",")
}

func mountSyscall(src, target, fstype string, flags uintptr, data string) error {
	if err := retryEINTR(func() error { return unix.Mount(src, target, fstype, flags, data) }); err != nil {
		return &os.PathError{Op: "mount " + src, Path: target, Err: err}
	}
	return nil
}

// mountVolume mounts a driver volume's device on its _data directory.
func mountVolume(data string, d driverOpts) error {
	flags, fsdata := MountFlags(d.Opts)
	if !d.isBind() {
		return mountSyscall(d.Device, data, d.Type, flags, fsdata)
	}
	st, err := os.Stat(d.Device)
	if err != nil {
		return fmt.Errorf("%w: driver_opts device: %v", ErrInvalid, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%w: driver_opts device %s is not a directory", ErrInvalid, d.Device)
	}
	bindFlags := flags & (unix.MS_BIND | unix.MS_REC)
	if err := mountSyscall(d.Device, data, "", bindFlags, ""); err != nil {
		return err
	}
	// A bind mount ignores the other flags; a remount applies them.
	if rest := flags &^ (unix.MS_BIND | unix.MS_REC); rest != 0 {
		if err := mountSyscall("", data, "", unix.MS_BIND|unix.MS_REMOUNT|rest, ""); err != nil {
			_ = unmountAll(data)
			return err
		}
	}
	return nil
}

func unmountVolume(data string) error { return unmountAll(data) }

// unmountAll unmounts everything stacked on p; a busy mount is detached
// (MNT_DETACH) so that it goes once its last user is gone.
func unmountAll(p string) error {
	for range 16 {
		mounted, err := isMountpoint(p)
		if err != nil || !mounted {
			return err
		}
		err = retryEINTR(func() error { return unix.Unmount(p, unix.UMOUNT_NOFOLLOW) })
		if errors.Is(err, unix.EBUSY) {
			err = retryEINTR(func() error { return unix.Unmount(p, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW) })
		}
		if err != nil && !errors.Is(err, unix.EINVAL) {
			return &os.PathError{Op: "umount", Path: p, Err: err}
		}
	}
	return fmt.Errorf("umount %s: still mounted", p)
}

// isMountpoint reports whether p is a mount point in this process's mount
// namespace, from /proc/self/mountinfo.
func isMountpoint(p string) (bool, error) {
	real, err := filepath.EvalSymlinks(p)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := bytes.SplitN(sc.Bytes(), []byte(" "), 6)
		if len(fields) < 5 {
			continue
		}
		if unescapeMountinfo(string(fields[4])) == real {
			return true, nil
		}
	}
	return false, sc.Err()
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for space...).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// dirEmpty reports whether directory p has no entries.
func dirEmpty(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}

// wipeDir removes everything inside p (not p). os.RemoveAll does not
// follow symlinks.
func wipeDir(p string) error {
	ents, err := os.ReadDir(p)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(p, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// copyHook, when set (by tests), is called after each copied entry.
var copyHook func(n int)

// openCopySource opens the directory target of the container rootfs,
// resolved inside rootfs, for copyIn. ok is false when the image has no
// directory there. The caller closes fd.
func openCopySource(rootfs, target string) (fd int, ok bool, err error) {
	rootfd, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, false, &os.PathError{Op: "open", Path: rootfs, Err: err}
	}
	defer unix.Close(rootfd)
	src, err := openat2(rootfd, target, unix.O_RDONLY|unix.O_DIRECTORY, inRoot)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return -1, false, nil
	}
	if err != nil {
		return -1, false, err
	}
	return src, true, nil
}

// copyIn copies the directory open as src into the empty directory dst:
// regular files, directories, symlinks, device nodes and fifos, with
// owner, mode (set-id bits too), extended attributes (not those of
// symlinks), timestamps and hardlinks. The source is walked with *at
// syscalls that never follow a symlink. Nothing is fsynced here; the
// caller does one syncfs.
func copyIn(ctx context.Context, src int, dst string) error {
	dfd, err := unix.Open(dst, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dst, Err: err}
	}
	defer unix.Close(dfd)
	c := &copier{ctx: ctx, dstRoot: dfd, links: map[[2]uint64]string{}}
	if err := c.dir(src, dfd, ""); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return err
	}
	// The volume's root takes the image directory's owner and mode, as in
	// Docker (a database image's data dir keeps its owner).
	return c.attrs(src, dfd, &st)
}

// syncFS flushes the filesystem holding p (syncfs(2)): one call makes
// every copied file and directory durable.
func syncFS(p string) error {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return &os.PathError{Op: "syncfs", Path: p, Err: err}
	}
	return nil
}

type copier struct {
	ctx     context.Context
	dstRoot int
	links   map[[2]uint64]string // (dev, ino) of a multiply-linked file -> its path below dstRoot
	n       int
}

func readdirnames(fd int) ([]string, error) {
	d, err := unix.Dup(fd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(d), "dir")
	defer f.Close()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return f.Readdirnames(-1)
}

func (c *copier) dir(src, dst int, rel string) error {
	names, err := readdirnames(src)
	if err != nil {
		return fmt.Errorf("copy-in %s: %w", rel, err)
	}
	for _, name := range names {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		if err := c.entry(src, dst, rel, name); err != nil {
			return err
		}
		c.n++
		if copyHook != nil {
			copyHook(c.n)
		}
	}
	return nil
}

func (c *copier) entry(src, dst int, rel, name string) error {
	p := path.Join(rel, name)
	var st unix.Stat_t
	if err := unix.Fstatat(src, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "copy-in: lstat", Path: p, Err: err}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdirat(dst, name, 0o700); err != nil {
			return &os.PathError{Op: "copy-in: mkdir", Path: p, Err: err}
		}
		s, err := unix.Openat(src, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "copy-in: open", Path: p, Err: err}
		}
		defer unix.Close(s)
		d, err := unix.Openat(dst, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "copy-in: open", Path: p, Err: err}
		}
		defer unix.Close(d)
		if err := c.dir(s, d, p); err != nil {
			return err
		}
		return c.attrs(s, d, &st) // after the children, so mtime stays
	case unix.S_IFREG:
		key := [2]uint64{uint64(st.Dev), st.Ino}
		if st.Nlink > 1 {
			if first, ok := c.links[key]; ok {
				if err := unix.Linkat(c.dstRoot, first, dst, name, 0); err != nil {
					return &os.PathError{Op: "copy-in: link", Path: p, Err: err}
				}
				return nil
			}
			c.links[key] = p
		}
		return c.file(src, dst, name, p, &st)
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(src, name, buf)
		if err != nil {
			return &os.PathError{Op: "copy-in: readlink", Path: p, Err: err}
		}
		if err := unix.Symlinkat(string(buf[:n]), dst, name); err != nil {
			return &os.PathError{Op: "copy-in: symlink", Path: p, Err: err}
		}
		if err := unix.Fchownat(dst, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "copy-in: lchown", Path: p, Err: err}
		}
		return setTimes(dst, name, &st)
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		if err := unix.Mknodat(dst, name, st.Mode, int(st.Rdev)); err != nil {
			return &os.PathError{Op: "copy-in: mknod", Path: p, Err: err}
		}
		if err := unix.Fchownat(dst, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "copy-in: chown", Path: p, Err: err}
		}
		if err := unix.Fchmodat(dst, name, st.Mode&0o7777, 0); err != nil {
			return &os.PathError{Op: "copy-in: chmod", Path: p, Err: err}
		}
		return setTimes(dst, name, &st)
	default: // sockets are not copied, as in Docker
		return nil
	}
}

func (c *copier) file(src, dst int, name, p string, st *unix.Stat_t) error {
	s, err := unix.Openat(src, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "copy-in: open", Path: p, Err: err}
	}
	sf := os.NewFile(uintptr(s), p)
	defer sf.Close()
	d, err := unix.Openat(dst, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "copy-in: create", Path: p, Err: err}
	}
	df := os.NewFile(uintptr(d), p)
	defer df.Close()
	if _, err := io.Copy(df, sf); err != nil { // copy_file_range where it can
		return fmt.Errorf("copy-in %s: %w", p, err)
	}
	if err := c.attrs(s, d, st); err != nil {
		return err
	}
	return setTimes(dst, name, st)
}

// attrs gives dst src's owner, mode and extended attributes. chown comes
// first because it clears set-id bits and file capabilities.
func (c *copier) attrs(src, dst int, st *unix.Stat_t) error {
	if err := unix.Fchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("copy-in: chown: %w", err)
	}
	if err := unix.Fchmod(dst, st.Mode&0o7777); err != nil {
		return fmt.Errorf("copy-in: chmod: %w", err)
	}
	if err := copyXattrs(src, dst); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		ts := []unix.Timespec{st.Atim, st.Mtim}
		return unix.UtimesNano("/proc/self/fd/"+strconv.Itoa(dst), ts)
	}
	return nil
}

func setTimes(dirfd int, name string, st *unix.Stat_t) error {
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(dirfd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "copy-in: utimes", Path: name, Err: err}
	}
	return nil
}

func copyXattrs(src, dst int) error {
	sz, err := unix.Flistxattr(src, nil)
	if err != nil || sz == 0 {
		if errors.Is(err, unix.ENOTSUP) {
			return nil
		}
		return err
	}
	buf := make([]byte, sz)
	sz, err = unix.Flistxattr(src, buf)
	if err != nil {
		return err
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		vsz, err := unix.Fgetxattr(src, name, nil)
		if err != nil {
			return fmt.Errorf("copy-in: getxattr %s: %w", name, err)
		}
		val := make([]byte, vsz)
		if vsz, err = unix.Fgetxattr(src, name, val); err != nil {
			return fmt.Errorf("copy-in: getxattr %s: %w", name, err)
		}
		if err := unix.Fsetxattr(dst, name, val[:vsz], 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
			return fmt.Errorf("copy-in: setxattr %s: %w", name, err)
		}
	}
	return nil
}
