package watch

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/supervisor/runtime"
)

// Every container path is resolved by openat2 against a directory fd of
// the container root with RESOLVE_IN_ROOT (runtime.OpenInRoot): ".." and
// absolute symlinks stop at that root, as they would inside the
// container, so nothing the image holds can lead a write onto the host.
// The last component of a path is never followed: files are renamed over
// it and deletes unlink it.

// Sync makes the container's target mirror hostRoot at the given paths
// (slash paths relative to hostRoot; "." is hostRoot itself): what exists
// on the host is written (files, symlinks) or made (directories), what
// does not is deleted in the container. Without full, a directory path
// is only made (the watcher reports what a new directory holds with it);
// with full, everything below it that m does not ignore is synced too,
// and files whose size and modification time already match are left
// alone.
func (t *Target) Sync(hostRoot, target string, paths []string, m *Matcher, full bool) (SyncResult, error) {
	s := &syncer{t: t, roots: map[string]int{}, full: full, m: m}
	defer s.close()
	var res SyncResult
	var errs []error
	for _, rel := range paths {
		r, err := s.syncPath(hostRoot, target, rel)
		res.add(r)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return res, errors.Join(errs...)
}

type syncer struct {
	t     *Target
	roots map[string]int // host root dir -> O_PATH fd
	full  bool           // recurse into directories, skip equal files
	m     *Matcher
}

func (s *syncer) close() {
	for _, fd := range s.roots {
		unix.Close(fd)
	}
}

func (s *syncer) rootFd(root string) (int, error) {
	if fd, ok := s.roots[root]; ok {
		return fd, nil
	}
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: root, Err: err}
	}
	s.roots[root] = fd
	return fd, nil
}

func (s *syncer) syncPath(hostRoot, target, rel string) (SyncResult, error) {
	rel = path.Clean(filepath.ToSlash(rel))
	if rel == ".." || strings.HasPrefix(rel, "../") || path.IsAbs(rel) {
		return SyncResult{}, fmt.Errorf("%s: path outside the watched root", rel)
	}
	host := filepath.Join(hostRoot, filepath.FromSlash(rel))
	cpath := path.Join("/", target, rel)
	root, inner, err := s.t.resolve(cpath)
	if err != nil {
		return SyncResult{}, fmt.Errorf("%s: %w", cpath, err)
	}
	rootfd, err := s.rootFd(root)
	if err != nil {
		return SyncResult{}, err
	}
	fi, err := os.Lstat(host)
	if errors.Is(err, fs.ErrNotExist) {
		n, err := s.remove(rootfd, inner)
		if err != nil {
			err = fmt.Errorf("delete %s: %w", cpath, err)
		}
		return SyncResult{Deleted: n}, err
	}
	if err != nil {
		return SyncResult{}, err
	}
	if fi.IsDir() {
		return s.syncDir(hostRoot, target, rel, fi)
	}
	var res SyncResult
	if inner == "/" {
		return res, fmt.Errorf("%s: cannot replace the container's root with a file", cpath)
	}
	pfd, made, err := s.mkdirAll(rootfd, path.Dir(inner), 0o755)
	res.Dirs += made
	if err != nil {
		return res, fmt.Errorf("%s: %w", path.Dir(cpath), err)
	}
	defer unix.Close(pfd)
	wrote, err := s.writeAt(pfd, path.Base(inner), host, fi)
	if err != nil {
		return res, fmt.Errorf("write %s: %w", cpath, err)
	}
	if wrote {
		res.Written++
	}
	return res, nil
}

// syncDir makes the directory and, in a full sync, syncs what is below
// it.
func (s *syncer) syncDir(hostRoot, target, rel string, fi fs.FileInfo) (SyncResult, error) {
	var res SyncResult
	cpath := path.Join("/", target, rel)
	root, inner, err := s.t.resolve(cpath)
	if err != nil {
		return res, err
	}
	rootfd, err := s.rootFd(root)
	if err != nil {
		return res, err
	}
	fd, made, err := s.mkdirAll(rootfd, inner, uint32(fi.Mode().Perm()))
	res.Dirs += made
	if err != nil {
		return res, fmt.Errorf("%s: %w", cpath, err)
	}
	unix.Close(fd)
	if !s.full {
		return res, nil
	}
	ents, err := os.ReadDir(filepath.Join(hostRoot, filepath.FromSlash(rel)))
	if err != nil {
		return res, err
	}
	var errs []error
	for _, e := range ents {
		crel := path.Join(rel, e.Name())
		if s.m != nil {
			if e.IsDir() && s.m.SkipDir(crel) {
				continue
			}
			if !e.IsDir() && s.m.Ignored(crel, false) {
				continue
			}
		}
		r, err := s.syncPath(hostRoot, target, crel)
		res.add(r)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return res, errors.Join(errs...)
}

// mkdirAll opens the directory inner below rootfd, making it and its
// missing parents (owned by the target's user), and returns an O_PATH fd
// of it and how many directories it made. A non-directory in the way is
// replaced.
func (s *syncer) mkdirAll(rootfd int, inner string, mode uint32) (int, int, error) {
	inner = path.Clean("/" + inner)
	fd, err := runtime.OpenInRoot(rootfd, inner, unix.O_PATH|unix.O_DIRECTORY)
	if err == nil {
		return fd, 0, nil
	}
	if inner == "/" {
		return -1, 0, err
	}
	pfd, made, err := s.mkdirAll(rootfd, path.Dir(inner), 0o755)
	if err != nil {
		return -1, made, err
	}
	defer unix.Close(pfd)
	name := path.Base(inner)
	err = unix.Mkdirat(pfd, name, mode)
	if err == unix.EEXIST {
		// Something that is not a directory (or a symlink that does
		// not lead to one): the host has a directory here, so replace it.
		if _, rerr := s.remove(pfd, name); rerr != nil {
			return -1, made, rerr
		}
		err = unix.Mkdirat(pfd, name, mode)
	}
	if err != nil {
		return -1, made, &os.PathError{Op: "mkdir", Path: inner, Err: err}
	}
	made++
	if err := unix.Fchownat(pfd, name, s.t.UID, s.t.GID, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return -1, made, &os.PathError{Op: "chown", Path: inner, Err: err}
	}
	// mkdir applies the umask; give the directory the host's mode.
	if err := unix.Fchmodat(pfd, name, mode, 0); err != nil {
		return -1, made, &os.PathError{Op: "chmod", Path: inner, Err: err}
	}
	fd, err = runtime.OpenInRoot(rootfd, inner, unix.O_PATH|unix.O_DIRECTORY)
	return fd, made, err
}

func tempName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return ".berth-sync-" + hex.EncodeToString(b[:])
}

// writeAt puts the host file (regular or symlink) at name in the
// directory pfd, atomically: a temp file in the same directory renamed
// over name. It reports whether it wrote (not with compare and an equal
// file, nor for special files, which are skipped).
func (s *syncer) writeAt(pfd int, name, host string, fi fs.FileInfo) (bool, error) {
	if s.full && fi.Mode().IsRegular() {
		var st unix.Stat_t
		if unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil &&
			st.Mode&unix.S_IFMT == unix.S_IFREG && st.Size == fi.Size() &&
			st.Mtim.Nano() == fi.ModTime().UnixNano() {
			return false, nil
		}
	}
	tmp := tempName()
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		link, err := os.Readlink(host)
		if err != nil {
			return false, err
		}
		if err := unix.Symlinkat(link, pfd, tmp); err != nil {
			return false, err
		}
		if err := unix.Fchownat(pfd, tmp, s.t.UID, s.t.GID, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			_ = unix.Unlinkat(pfd, tmp, 0)
			return false, err
		}
	case fi.Mode().IsRegular():
		if err := s.writeTemp(pfd, tmp, host, fi); err != nil {
			_ = unix.Unlinkat(pfd, tmp, 0)
			return false, err
		}
	default:
		return false, nil // fifos, sockets, devices: not synced
	}
	err := unix.Renameat(pfd, tmp, pfd, name)
	if err == unix.EISDIR || err == unix.ENOTEMPTY || err == unix.EEXIST {
		// A directory in the container where the host has a file.
		if _, rerr := s.remove(pfd, name); rerr == nil {
			err = unix.Renameat(pfd, tmp, pfd, name)
		}
	}
	if err != nil {
		_ = unix.Unlinkat(pfd, tmp, 0)
		return false, err
	}
	return true, nil
}

func (s *syncer) writeTemp(pfd int, tmp, host string, fi fs.FileInfo) error {
	src, err := os.OpenFile(host, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer src.Close()
	perm := uint32(fi.Mode().Perm())
	fd, err := unix.Openat(pfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if err != nil {
		return err
	}
	dst := os.NewFile(uintptr(fd), tmp)
	defer dst.Close()
	if _, err := io.Copy(dst, src); err != nil {
		return err
	}
	if err := dst.Chown(s.t.UID, s.t.GID); err != nil {
		return err
	}
	// After chown (which clears set-id bits), and past the umask.
	if err := unix.Fchmod(fd, perm|uint32(setIDBits(fi.Mode()))); err != nil {
		return err
	}
	mt := unix.NsecToTimespec(fi.ModTime().UnixNano())
	return unix.UtimesNanoAt(pfd, tmp, []unix.Timespec{mt, mt}, unix.AT_SYMLINK_NOFOLLOW)
}

func setIDBits(m fs.FileMode) uint32 {
	var b uint32
	if m&fs.ModeSetuid != 0 {
		b |= unix.S_ISUID
	}
	if m&fs.ModeSetgid != 0 {
		b |= unix.S_ISGID
	}
	if m&fs.ModeSticky != 0 {
		b |= unix.S_ISVTX
	}
	return b
}

// remove deletes inner (resolved in rootfd; its last component not
// followed) and everything below it, and reports 1 if something was
// there.
func (s *syncer) remove(rootfd int, inner string) (int, error) {
	inner = path.Clean("/" + inner)
	if inner == "/" {
		return 0, errors.New("refusing to delete the container root")
	}
	pfd, err := runtime.OpenInRoot(rootfd, path.Dir(inner), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return 0, nil // the parent is gone already
		}
		return 0, err
	}
	defer unix.Close(pfd)
	err = removeAt(pfd, path.Base(inner))
	if errors.Is(err, unix.ENOENT) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return 1, nil
}

// removeAt unlinks name in dirfd; a directory is emptied first (its
// entries opened with O_NOFOLLOW, so nothing outside is touched).
func removeAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err != unix.EISDIR && err != unix.EPERM {
		if err != nil {
			return &os.PathError{Op: "unlink", Path: name, Err: err}
		}
		return nil
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: name, Err: err}
	}
	d := os.NewFile(uintptr(fd), name)
	defer d.Close()
	// Read every name before deleting any: getdents offsets are not
	// stable while the directory changes.
	names, err := d.Readdirnames(-1)
	if err != nil {
		return &os.PathError{Op: "readdir", Path: name, Err: err}
	}
	var errs []error
	for _, n := range names {
		if err := removeAt(fd, n); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil {
		return &os.PathError{Op: "rmdir", Path: name, Err: err}
	}
	return nil
}
