package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// ErrNeedRoot is returned when a layer holds something only root can make
// (device nodes, whiteouts, opaque directories) and berth is not root.
var ErrNeedRoot = errors.New("layer needs root to unpack")

// testHookUnpackEntry, when set (tests only), runs before each tar entry.
var testHookUnpackEntry func(name string)

// decompress sniffs gzip and zstd by their magic numbers; anything else is
// read as a plain tar.
func decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(4)
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

// unpackTar unpacks a layer tar (gzip, zstd or plain) into dir and returns
// the digest of the uncompressed stream (the diffID). dir must exist.
//
// Every path is resolved with openat2(RESOLVE_IN_ROOT) against dir, and the
// last component is created with *at calls that never follow it, so "..",
// absolute or relative symlinks (including ones planted by earlier entries)
// and hardlinks can only ever land inside dir.
func unpackTar(r io.Reader, dir string) (diffID string, err error) {
	zr, err := decompress(r)
	if err != nil {
		return "", err
	}
	defer zr.Close()
	dr := newDigestReader(zr)
	rootFd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", &os.PathError{Op: "open", Path: dir, Err: err}
	}
	u := &unpacker{root: rootFd, rootPath: dir, priv: os.Geteuid() == 0, cacheFd: -1, buf: make([]byte, 256<<10)}
	defer u.close()
	tr := tar.NewReader(dr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("read layer tar: %w", err)
		}
		if testHookUnpackEntry != nil {
			testHookUnpackEntry(hdr.Name)
		}
		if err := u.entry(hdr, tr); err != nil {
			return "", fmt.Errorf("layer entry %q: %w", hdr.Name, err)
		}
	}
	// The diffID covers the whole stream, trailing zero blocks included.
	if _, err := io.CopyBuffer(io.Discard, dr, u.buf); err != nil {
		return "", err
	}
	if err := u.finishDirs(); err != nil {
		return "", err
	}
	return dr.digest(), nil
}

type dirMeta struct {
	rel   string
	mode  uint32
	mtime unix.Timespec
	atime unix.Timespec
}

type unpacker struct {
	root     int // O_PATH fd of the layer directory
	rootPath string
	priv     bool // root: chown, mknod and trusted xattrs allowed
	// A one-entry cache of the last parent directory opened. It is dropped
	// whenever an entry touches that directory or one of its ancestors, so
	// a later symlink swap is always seen by a fresh openat2.
	cacheRel string
	cacheFd  int
	dirs     []dirMeta // modes and times applied last, children first
	buf      []byte
}

func (u *unpacker) close() {
	u.dropCache()
	unix.Close(u.root)
}

func (u *unpacker) dropCache() {
	if u.cacheFd >= 0 {
		unix.Close(u.cacheFd)
	}
	u.cacheFd, u.cacheRel = -1, ""
}

// resolveHow is how every path inside the layer is opened.
func resolveHow(flags int) *unix.OpenHow {
	return &unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	}
}

func openat2(dirfd int, p string, flags int) (int, error) {
	for {
		fd, err := unix.Openat2(dirfd, p, resolveHow(flags))
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

// openDir returns an O_PATH fd for directory rel (relative to the layer
// root, "" is the root), creating missing directories when create is set.
// The fd belongs to the cache: callers must not close it.
func (u *unpacker) openDir(rel string, create bool) (int, error) {
	if rel == "" {
		return u.root, nil
	}
	if u.cacheFd >= 0 && u.cacheRel == rel {
		return u.cacheFd, nil
	}
	fd, err := openat2(u.root, rel, unix.O_PATH|unix.O_DIRECTORY)
	if err == unix.ENOENT && create {
		fd, err = u.mkdirAll(rel)
	}
	if err != nil {
		return -1, &os.PathError{Op: "openat2", Path: rel, Err: err}
	}
	u.dropCache()
	u.cacheRel, u.cacheFd = rel, fd
	return fd, nil
}

// mkdirAll creates the missing directories of rel one component at a time,
// each resolved afresh inside the root.
func (u *unpacker) mkdirAll(rel string) (int, error) {
	parts := strings.Split(rel, "/")
	parent := u.root
	for i := range parts {
		prefix := strings.Join(parts[:i+1], "/")
		fd, err := openat2(u.root, prefix, unix.O_PATH|unix.O_DIRECTORY)
		if err == unix.ENOENT {
			if err = unix.Mkdirat(parent, parts[i], 0o755); err != nil && err != unix.EEXIST {
				closeIfNotRoot(u, parent)
				return -1, err
			}
			fd, err = openat2(u.root, prefix, unix.O_PATH|unix.O_DIRECTORY)
		}
		closeIfNotRoot(u, parent)
		if err != nil {
			return -1, err
		}
		parent = fd
	}
	return parent, nil
}

func closeIfNotRoot(u *unpacker, fd int) {
	if fd != u.root {
		unix.Close(fd)
	}
}

func splitRel(rel string) (dir, base string) {
	dir, base = path.Split(rel)
	return strings.TrimSuffix(dir, "/"), base
}

func (u *unpacker) entry(hdr *tar.Header, r io.Reader) error {
	if strings.IndexByte(hdr.Name, 0) >= 0 || strings.IndexByte(hdr.Linkname, 0) >= 0 {
		return errors.New("NUL byte in name")
	}
	rel := cleanRel(hdr.Name)
	// Any change at rel may replace a directory the cache points into.
	if u.cacheFd >= 0 && (rel == "" || u.cacheRel == rel || strings.HasPrefix(u.cacheRel, rel+"/")) {
		u.dropCache()
	}
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeDir:
		if rel == "" {
			return u.rootDir(hdr)
		}
	}
	if rel == "" {
		return fmt.Errorf("type %q entry for the layer root", hdr.Typeflag)
	}
	dir, base := splitRel(rel)
	if strings.HasPrefix(dir, whiteoutPrefix+whiteoutPrefix) || strings.Contains(dir, "/"+whiteoutPrefix+whiteoutPrefix) {
		return nil // inside AUFS metadata such as .wh..wh.plnk/
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		return u.whiteout(dir, base)
	}
	pfd, err := u.openDir(dir, true)
	if err != nil {
		return err
	}
	// Something already at this name in this layer: a directory stays a
	// directory (its metadata is updated), anything else is replaced.
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		if hdr.Typeflag == tar.TypeDir && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return u.dirMeta(pfd, base, rel, hdr)
		}
		if hdr.Typeflag == tar.TypeLink && cleanRel(hdr.Linkname) == rel {
			return nil // a hardlink to itself
		}
		if err := removeAllAt(pfd, base); err != nil {
			return err
		}
	}
	mode := uint32(hdr.Mode) & 0o7777
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
			return &os.PathError{Op: "mkdirat", Path: rel, Err: err}
		}
		return u.dirMeta(pfd, base, rel, hdr)
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		return u.file(pfd, base, rel, hdr, r, mode)
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return &os.PathError{Op: "symlinkat", Path: rel, Err: err}
		}
		return u.meta(pfd, base, hdr, false)
	case tar.TypeLink:
		tdir, tbase := splitRel(cleanRel(hdr.Linkname))
		if tbase == "" {
			return fmt.Errorf("hardlink to the layer root")
		}
		// The target's parent is opened separately (not from the cache,
		// which holds the new link's parent).
		tfd, err := openat2(u.root, orDot(tdir), unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return &os.PathError{Op: "openat2", Path: tdir, Err: err}
		}
		defer unix.Close(tfd)
		// No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink.
		if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
			return fmt.Errorf("hardlink to %q: %w", hdr.Linkname, err)
		}
		return nil
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		typ := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		if typ != unix.S_IFIFO && !u.priv {
			return fmt.Errorf("device node: %w", ErrNeedRoot)
		}
		dev := int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
		if err := unix.Mknodat(pfd, base, typ|mode, dev); err != nil {
			return &os.PathError{Op: "mknodat", Path: rel, Err: err}
		}
		return u.meta(pfd, base, hdr, true)
	}
	return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
}

func orDot(p string) string {
	if p == "" {
		return "."
	}
	return p
}

const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
	opaqueXattr    = "trusted.overlay.opaque"
)

// whiteout turns an OCI whiteout into overlayfs's form: ".wh.name" becomes a
// 0/0 character device "name", ".wh..wh..opq" sets trusted.overlay.opaque=y
// on its directory.
func (u *unpacker) whiteout(dir, base string) error {
	if !u.priv && (base == whiteoutOpaque || !strings.HasPrefix(base, whiteoutPrefix+whiteoutPrefix)) {
		return fmt.Errorf("whiteout: %w", ErrNeedRoot)
	}
	if base == whiteoutOpaque {
		if _, err := u.openDir(dir, true); err != nil {
			return err
		}
		fd, err := openat2(u.root, orDot(dir), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
		if err != nil {
			return &os.PathError{Op: "openat2", Path: dir, Err: err}
		}
		defer unix.Close(fd)
		return os.NewSyscallError("fsetxattr", unix.Fsetxattr(fd, opaqueXattr, []byte("y"), 0))
	}
	if strings.HasPrefix(base, whiteoutPrefix+whiteoutPrefix) {
		return nil // other AUFS metadata (.wh..wh.plnk, ...): not content
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." || strings.HasPrefix(name, whiteoutPrefix) {
		return fmt.Errorf("bad whiteout %q", base)
	}
	if u.cacheFd >= 0 && (u.cacheRel == path.Join(dir, name) || strings.HasPrefix(u.cacheRel, path.Join(dir, name)+"/")) {
		u.dropCache()
	}
	pfd, err := u.openDir(dir, true)
	if err != nil {
		return err
	}
	if err := removeAllAt(pfd, name); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return os.NewSyscallError("mknodat", unix.Mknodat(pfd, name, unix.S_IFCHR, 0))
}

// rootDir applies a "./" entry to the layer root.
func (u *unpacker) rootDir(hdr *tar.Header) error {
	return u.dirMeta(u.root, ".", "", hdr)
}

// dirMeta sets a directory's owner and xattrs now and queues its mode and
// times for the end (children would change its mtime, and a read-only mode
// would stop an unprivileged unpack from filling it).
func (u *unpacker) dirMeta(pfd int, base, rel string, hdr *tar.Header) error {
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "openat", Path: rel, Err: err}
	}
	defer unix.Close(fd)
	if u.priv {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return &os.PathError{Op: "fchown", Path: rel, Err: err}
		}
	}
	if err := u.xattrs(fd, hdr); err != nil {
		return err
	}
	u.dirs = append(u.dirs, dirMeta{rel: rel, mode: uint32(hdr.Mode) & 0o7777,
		mtime: timespecOr(hdr.ModTime, time.Time{}), atime: timespecOr(hdr.AccessTime, hdr.ModTime)})
	return nil
}

func (u *unpacker) file(pfd int, base, rel string, hdr *tar.Header, r io.Reader, mode uint32) error {
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "openat", Path: rel, Err: err}
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	if _, err := io.CopyBuffer(fileWriter{f}, r, u.buf); err != nil {
		return err
	}
	if u.priv {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return &os.PathError{Op: "fchown", Path: rel, Err: err}
		}
	}
	// After chown, which clears set-id bits.
	if err := unix.Fchmod(fd, mode); err != nil {
		return &os.PathError{Op: "fchmod", Path: rel, Err: err}
	}
	if err := u.xattrs(fd, hdr); err != nil {
		return err
	}
	ts := []unix.Timespec{timespecOr(hdr.AccessTime, hdr.ModTime), timespecOr(hdr.ModTime, time.Time{})}
	return os.NewSyscallError("utimensat", unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW))
}

// fileWriter hides os.File's ReadFrom so CopyBuffer uses our buffer.
type fileWriter struct{ f *os.File }

func (w fileWriter) Write(p []byte) (int, error) { return w.f.Write(p) }

// meta sets owner, mode (not for symlinks) and times of a non-directory that
// is not a regular file, without following it.
func (u *unpacker) meta(pfd int, base string, hdr *tar.Header, chmod bool) error {
	if u.priv {
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return os.NewSyscallError("fchownat", err)
		}
	}
	if chmod {
		// Device nodes and fifos: fchmodat never follows these (they are
		// not symlinks; we just made them).
		if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode)&0o7777, 0); err != nil {
			return os.NewSyscallError("fchmodat", err)
		}
	}
	ts := []unix.Timespec{timespecOr(hdr.AccessTime, hdr.ModTime), timespecOr(hdr.ModTime, time.Time{})}
	return os.NewSyscallError("utimensat", unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW))
}

// xattrs copies the entry's SCHILY.xattr records. overlayfs's own
// trusted.overlay.* are never taken from a tar (a layer could otherwise
// forge redirects); unprivileged runs skip what they may not set.
func (u *unpacker) xattrs(fd int, hdr *tar.Header) error {
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok || strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		if err := unix.Fsetxattr(fd, name, []byte(v), 0); err != nil {
			if !u.priv && (err == unix.EPERM || err == unix.ENOTSUP) {
				continue
			}
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	return nil
}

// timespecOr converts t, or def when t is unset; unset both means the epoch.
func timespecOr(t, def time.Time) unix.Timespec {
	if t.IsZero() {
		t = def
	}
	if t.IsZero() {
		return unix.Timespec{}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

// finishDirs applies queued directory modes and times, deepest first.
func (u *unpacker) finishDirs() error {
	u.dropCache()
	for i := len(u.dirs) - 1; i >= 0; i-- {
		d := u.dirs[i]
		dir, base := splitRel(d.rel)
		var pfd int
		var err error
		if d.rel == "" {
			pfd, base = u.root, "."
		} else if pfd, err = openat2(u.root, orDot(dir), unix.O_PATH|unix.O_DIRECTORY); err != nil {
			continue // replaced or removed by a later entry
		}
		fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.Fchmod(fd, d.mode)
			if err == nil {
				err = unix.UtimesNanoAt(pfd, base, []unix.Timespec{d.atime, d.mtime}, unix.AT_SYMLINK_NOFOLLOW)
			}
			unix.Close(fd)
		}
		closeIfNotRoot(u, pfd)
		if err != nil && err != unix.ENOENT && err != unix.ENOTDIR && err != unix.ELOOP {
			return &os.PathError{Op: "set dir metadata", Path: d.rel, Err: err}
		}
	}
	return nil
}

// removeAllAt removes name (recursively for a directory) inside dirfd
// without following symlinks.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return err
	}
	if err != unix.EISDIR {
		return os.NewSyscallError("unlinkat", err)
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("openat", err)
	}
	f := os.NewFile(uintptr(fd), name)
	names, err := f.Readdirnames(-1)
	if err != nil {
		f.Close()
		return err
	}
	unix.Fchmod(fd, 0o700)
	for _, n := range names {
		if err := removeAllAt(fd, n); err != nil && err != unix.ENOENT {
			f.Close()
			return err
		}
	}
	f.Close()
	return os.NewSyscallError("unlinkat", unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR))
}

// syncFS flushes the filesystem holding dir (one syncfs call rather than an
// fsync per file) so a layer is on disk before it is renamed into place.
func syncFS(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return os.NewSyscallError("syncfs", unix.Syncfs(fd))
}
