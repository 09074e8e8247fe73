package watch

import (
	"bytes"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// ResolveUser resolves user (as in a service's user: or the image's
// User) to a uid and gid with the passwd and group files of the container
// root at rootfs (read inside it: symlinks stay in the root).
func ResolveUser(rootfs, user string) (uid, gid int, err error) {
	if user == "" {
		return 0, 0, nil
	}
	rootfd, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0, &os.PathError{Op: "open", Path: rootfs, Err: err}
	}
	defer unix.Close(rootfd)
	read := func(p string) io.Reader {
		fd, err := openInRoot(rootfd, p, unix.O_RDONLY|unix.O_NOFOLLOW)
		if err != nil {
			return nil
		}
		f := os.NewFile(uintptr(fd), p)
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, 16<<20))
		if err != nil {
			return nil
		}
		return bytes.NewReader(b)
	}
	return lookupUser(user, read("/etc/passwd"), read("/etc/group"))
}
