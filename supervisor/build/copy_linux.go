package build

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/supervisor/image"
	"github.com/berth-dev/berth/supervisor/runtime"
)

// parseChown resolves a --chown value against the rootfs's /etc/passwd and
// /etc/group (runtime.UserInRoot). A user alone gets its primary group;
// a number alone is both uid and gid, as in Docker.
func parseChown(rootfs, spec string) (*owner, error) {
	if spec == "" {
		return nil, nil
	}
	if n, err := strconv.Atoi(spec); err == nil && n >= 0 {
		return &owner{uid: n, gid: n}, nil
	}
	uid, gid, err := runtime.UserInRoot(rootfs, spec)
	if err != nil {
		return nil, fmt.Errorf("--chown %s: %w", spec, err)
	}
	return &owner{uid: uid, gid: gid}, nil
}

// copyInto copies the matched paths of src to dest (absolute in the image)
// inside rootfs, with COPY's rules: a directory's contents go into dest; a
// file goes to dest, or into it when dest ends in "/", exists as a
// directory, or there are several sources.
func copyInto(rootfs string, src *source, matches []string, dest string, destDir bool, o copyOpts) error {
	target, err := runtime.ResolveInRoot(rootfs, dest)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(target); err == nil && fi.IsDir() {
		destDir = true
	}
	for _, m := range matches {
		real, err := src.follow(m)
		if err != nil {
			return err
		}
		fi, err := os.Lstat(filepath.Join(src.dir, real))
		if err != nil {
			return err
		}
		to := dest
		if !fi.IsDir() && destDir {
			to = path.Join(dest, path.Base(m))
		}
		parent := to
		if !fi.IsDir() {
			parent = path.Dir(to)
		}
		if err := mkdirAllIn(rootfs, parent, o.own); err != nil {
			return err
		}
		ents, err := src.walk(real)
		if err != nil {
			return err
		}
		for _, e := range ents {
			rel := strings.TrimPrefix(strings.TrimPrefix(e.rel, real), "/")
			if real == "." {
				rel = e.rel
				if e.rel == "." {
					rel = ""
				}
			}
			if err := copyEntry(rootfs, filepath.Join(src.dir, e.rel), e.info, path.Join(to, rel), src.keepOwner, o); err != nil {
				return fmt.Errorf("copy %s: %w", e.rel, err)
			}
		}
	}
	return nil
}

// mkdirAllIn creates dir and its missing parents inside rootfs (0755,
// owned by own or root).
func mkdirAllIn(rootfs, dir string, own *owner) error {
	p, err := runtime.ResolveInRoot(rootfs, dir)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(p); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s exists and is not a directory", dir)
		}
		return nil
	}
	if dir == "/" || dir == "." {
		return nil
	}
	if err := mkdirAllIn(rootfs, path.Dir(dir), own); err != nil {
		return err
	}
	if p, err = runtime.ResolveInRoot(rootfs, dir); err != nil {
		return err
	}
	if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if own != nil {
		return os.Lchown(p, own.uid, own.gid)
	}
	return nil
}

// copyEntry copies one file, directory, symlink or device to dest.
func copyEntry(rootfs, from string, fi fs.FileInfo, dest string, keepOwner bool, o copyOpts) error {
	// The parent may be missing when .dockerignore left out a directory
	// but not some of its contents.
	if err := mkdirAllIn(rootfs, path.Dir(dest), o.own); err != nil {
		return err
	}
	parent, err := runtime.ResolveInRoot(rootfs, path.Dir(dest))
	if err != nil {
		return err
	}
	to := filepath.Join(parent, path.Base(dest))
	if dest == "/" || path.Base(dest) == "/" {
		to = rootfs
	}
	uid, gid := 0, 0
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && keepOwner {
		uid, gid = int(st.Uid), int(st.Gid)
	}
	if o.own != nil {
		uid, gid = o.own.uid, o.own.gid
	}
	perm := fi.Mode().Perm() | fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
	if o.mode != nil {
		perm = *o.mode
	}
	existing, lerr := os.Lstat(to)
	if lerr == nil && !(fi.IsDir() && existing.IsDir()) {
		if err := os.RemoveAll(to); err != nil {
			return err
		}
	}
	switch {
	case fi.IsDir():
		if lerr != nil || !existing.IsDir() {
			if err := os.Mkdir(to, 0o755); err != nil {
				return err
			}
		}
	case fi.Mode()&fs.ModeSymlink != 0:
		t, err := os.Readlink(from)
		if err != nil {
			return err
		}
		if err := os.Symlink(t, to); err != nil {
			return err
		}
		return os.Lchown(to, uid, gid)
	case fi.Mode().IsRegular():
		if err := copyFile(from, to); err != nil {
			return err
		}
	default:
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: unsupported file type", from)
		}
		if err := unix.Mknod(to, st.Mode, int(st.Rdev)); err != nil {
			return os.NewSyscallError("mknod", err)
		}
	}
	if err := os.Lchown(to, uid, gid); err != nil {
		return err
	}
	// chmod after chown: chown clears setuid/setgid bits.
	if err := os.Chmod(to, toUnixMode(perm)); err != nil {
		return err
	}
	return os.Chtimes(to, fi.ModTime(), fi.ModTime())
}

// toUnixMode keeps the permission and special bits of a FileMode in
// os.Chmod's form.
func toUnixMode(m fs.FileMode) fs.FileMode {
	return m & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// isArchive reports whether a file starts like a tar, gzip or zstd stream
// (what ADD unpacks).
func isArchive(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return true
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return true
	case n >= 262 && string(head[257:262]) == "ustar":
		return true
	}
	return false
}

// unpackInto extracts a local archive into dir (absolute in the image).
func unpackInto(rootfs, archive, dir string, own *owner) error {
	if err := mkdirAllIn(rootfs, dir, own); err != nil {
		return err
	}
	target, err := runtime.ResolveInRoot(rootfs, dir)
	if err != nil {
		return err
	}
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := image.UnpackArchive(f, target); err != nil {
		return fmt.Errorf("unpack %s: %w", filepath.Base(archive), err)
	}
	return nil
}
