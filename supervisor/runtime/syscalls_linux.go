package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// All raw syscalls of the runtime go through these wrappers: they retry
// on EINTR and return *os.PathError / *os.SyscallError naming the call.

func retryEINTR(f func() error) error {
	for {
		err := f()
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

func mount(source, target, fstype string, flags uintptr, data string) error {
	err := retryEINTR(func() error { return unix.Mount(source, target, fstype, flags, data) })
	if err != nil {
		return &os.PathError{Op: fmt.Sprintf("mount %s (type %q, flags %#x, data %q) on", source, fstype, flags, data), Path: target, Err: err}
	}
	return nil
}

func unmount(target string, flags int) error {
	err := retryEINTR(func() error { return unix.Unmount(target, flags) })
	if err != nil {
		return &os.PathError{Op: "umount", Path: target, Err: err}
	}
	return nil
}

// fdPath is the magic link through which mount(2) reaches exactly the
// file an O_PATH fd refers to, with no second path lookup.
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// openInRoot opens path below the directory rootFd with every symlink
// resolved as if rootFd were "/" (openat2 RESOLVE_IN_ROOT): a symlink in
// the image can never lead to a host path. Magic links (/proc/self/fd/*)
// are refused.
func openInRoot(rootFd int, path string, flags int, resolve uint64) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | resolve}
	var fd int
	err := retryEINTR(func() error {
		var e error
		fd, e = unix.Openat2(rootFd, path, &how)
		if e == unix.EAGAIN {
			e = unix.EINTR // a rename raced the lookup: try again
		}
		return e
	})
	if err != nil {
		return -1, &os.PathError{Op: "openat2 (in root)", Path: path, Err: err}
	}
	return fd, nil
}

// OpenInRoot opens p (absolute or relative to "/") below the directory
// rootFd as a process chrooted there would reach it (openat2
// RESOLVE_IN_ROOT, no magic links), for code outside the runtime that
// writes into a container's filesystem.
func OpenInRoot(rootFd int, p string, flags int) (int, error) {
	return openInRoot(rootFd, filepath.Clean("/"+p), flags, 0)
}

// mkdirAllInRoot makes path (and its parents) below rootFd, resolving
// each existing component inside the root, and returns an O_PATH fd of
// the result. With file set, the last component is created as an empty
// regular file (a bind-mount target for a file). resolve adds RESOLVE_*
// flags (RESOLVE_NO_SYMLINKS for /proc and /sys).
func mkdirAllInRoot(rootFd int, path string, file bool, resolve uint64) (int, error) {
	// Resolve symlinks (dangling ones included: /a -> /not/yet/made) inside
	// the root first, so that what we create is where the kernel would
	// later look. openInRoot below re-checks every step with
	// RESOLVE_IN_ROOT, so a concurrent swap cannot escape either.
	clean, err := resolveInRoot(rootFd, path, resolve&unix.RESOLVE_NO_SYMLINKS != 0)
	if err != nil {
		return -1, err
	}
	if clean == "/" {
		return openInRoot(rootFd, "/", unix.O_PATH|unix.O_DIRECTORY, resolve)
	}
	parts := strings.Split(strings.TrimPrefix(clean, "/"), "/")
	parent, err := openInRoot(rootFd, "/", unix.O_PATH|unix.O_DIRECTORY, resolve)
	if err != nil {
		return -1, err
	}
	for i, name := range parts {
		last := i == len(parts)-1
		sub := "/" + strings.Join(parts[:i+1], "/")
		fd, err := openInRoot(rootFd, sub, unix.O_PATH, resolve)
		if errors.Is(err, unix.ENOENT) {
			if last && file {
				// O_EXCL|O_NOFOLLOW: never write through a symlink.
				f, cerr := unix.Openat(parent, name, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
				if cerr == nil {
					unix.Close(f)
				} else if !errors.Is(cerr, unix.EEXIST) {
					unix.Close(parent)
					return -1, &os.PathError{Op: "create", Path: sub, Err: cerr}
				}
			} else if merr := unix.Mkdirat(parent, name, 0o755); merr != nil && !errors.Is(merr, unix.EEXIST) {
				unix.Close(parent)
				return -1, &os.PathError{Op: "mkdir", Path: sub, Err: merr}
			}
			fd, err = openInRoot(rootFd, sub, unix.O_PATH, resolve)
		}
		unix.Close(parent)
		if err != nil {
			return -1, err
		}
		if last {
			return fd, nil
		}
		parent = fd
	}
	return -1, fmt.Errorf("unreachable")
}

func isDirFd(fd int) (bool, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, os.NewSyscallError("fstat", err)
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR, nil
}

// lockedMountFlags returns the flags of the mount holding path that a
// bind remount must keep (the kernel refuses to drop nosuid/nodev/noexec/
// atime flags of a mount locked by a user namespace).
func lockedMountFlags(path string) uintptr {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0
	}
	f := uintptr(st.Flags)
	return f & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME | unix.MS_RDONLY)
}

// writeFileNoCreate writes data to the existing file path (the errors
// are os's: "open PATH: ...", "write PATH: ...", "close PATH: ...").
func writeFileNoCreate(path, data string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ResolveInRoot returns the host path of p (absolute or relative to "/")
// inside the directory root as a process chrooted there would see it:
// symlinks are followed, but absolute targets and ".." never leave root.
// Components that do not exist are appended as they are.
func ResolveInRoot(root, p string) (string, error) {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(fd)
	r, err := resolveInRoot(fd, p, false)
	if err != nil {
		return "", err
	}
	return filepath.Join(root, r), nil
}

// resolveInRoot returns path with every symlink resolved as if rootFd
// were "/" (absolute links restart at the root, ".." stops at it). The
// remaining components need not exist. With noSymlinks, any symlink is
// an error (for /proc and /sys).
func resolveInRoot(rootFd int, path string, noSymlinks bool) (string, error) {
	rest := strings.Split(filepath.Clean("/"+path), "/")
	cur := "/"
	links := 0
	for len(rest) > 0 {
		comp := rest[0]
		rest = rest[1:]
		switch comp {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, comp)
		var st unix.Stat_t
		err := unix.Fstatat(rootFd, strings.TrimPrefix(next, "/"), &st, unix.AT_SYMLINK_NOFOLLOW)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return filepath.Join(append([]string{next}, rest...)...), nil
		}
		if err != nil {
			return "", &os.PathError{Op: "lstat (in root)", Path: next, Err: err}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			cur = next
			continue
		}
		if noSymlinks {
			return "", fmt.Errorf("refusing %s: %s is a symlink in the image", path, next)
		}
		if links++; links > 255 {
			return "", &os.PathError{Op: "resolve (in root)", Path: path, Err: unix.ELOOP}
		}
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(rootFd, strings.TrimPrefix(next, "/"), buf)
		if err != nil {
			return "", &os.PathError{Op: "readlink (in root)", Path: next, Err: err}
		}
		target := string(buf[:n])
		if strings.HasPrefix(target, "/") {
			cur = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return cur, nil
}

// UserInRoot resolves a Docker-style user ("name", "uid", "name:group",
// "uid:gid"; "" is root) to a uid and gid with the passwd and group files
// of the container root at rootfs, read inside it (symlinks stay in the
// root), as the container's process would be: the group given, else the
// user's from passwd, else 0.
func UserInRoot(rootfs, user string) (uid, gid int, err error) {
	if user == "" {
		return 0, 0, nil
	}
	rootFd, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0, &os.PathError{Op: "open", Path: rootfs, Err: err}
	}
	defer unix.Close(rootFd)
	read := func(p string) io.Reader {
		fd, err := openInRoot(rootFd, p, unix.O_RDONLY|unix.O_NOFOLLOW, 0)
		if err != nil {
			return nil // no such file: no names
		}
		f := os.NewFile(uintptr(fd), p)
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, 16<<20))
		if err != nil {
			return nil
		}
		return bytes.NewReader(b)
	}
	u, err := resolveUser(user, read("etc/passwd"), read("etc/group"))
	return int(u.UID), int(u.GID), err
}
