package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// shortLink is the name under l/ of a layer's short symlink.
func shortLink(diffHex string) string {
	if len(diffHex) > 16 {
		return diffHex[:16]
	}
	return diffHex
}

// unpackLayer makes layers/<diffID> from the stored blob, unless it exists.
// The tar is unpacked into tmp/, checked against diffID, synced and only
// then renamed into place, so a layer directory is always complete.
func (s *Store) unpackLayer(ctx context.Context, blob, diffID string) (retErr error) {
	diffHex, err := sha256Hex(diffID)
	if err != nil {
		return err
	}
	if s.hasLayer(diffID) {
		return nil
	}
	f, err := os.Open(s.blobPath(blob))
	if err != nil {
		return err
	}
	defer f.Close()
	tmp, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), "layer-")
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			makeWritable(tmp)
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	got, err := unpackTar(ctxReader{ctx, f}, tmp)
	if err != nil {
		return fmt.Errorf("unpack layer %s: %w", shortHex(diffID, 12), err)
	}
	if got != "sha256:"+diffHex {
		return fmt.Errorf("layer %s: uncompressed content is %s: %w", diffID, got, ErrDigest)
	}
	if err := publishDir(tmp, s.layerPath(diffID)); err != nil {
		return err
	}
	link := filepath.Join(s.root, "l", shortLink(diffHex))
	if err := os.Symlink("../layers/"+diffHex, link); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}

// testForceLegacyMount makes Prepare use mount(2) as on kernels before 6.8.
var testForceLegacyMount bool

// Prepare gives container id a copy-on-write root filesystem over img's
// layers and returns its path (containers/<id>/merged). The container's
// writes go to its own upper directory; layers are never written. Calling
// Prepare again for a prepared id mounts it again if needed and keeps the
// upper directory. cleanup unmounts and removes the container's directory,
// upper included; it is idempotent, as is Release(id). The rootfs holds the
// image's files only, as a build step needs.
func (s *Store) Prepare(id string, img *Image) (rootfs string, cleanup func() error, err error) {
	return s.prepare(id, img, false)
}

// PrepareContainer is Prepare for a service container, whose /etc/hosts,
// /etc/hostname and /etc/resolv.conf berth bind-mounts: above the image's
// layers sits the mount-point layer that provides those the image lacks
// (see mountPointLayer). Prepare again with the same method.
func (s *Store) PrepareContainer(id string, img *Image) (rootfs string, cleanup func() error, err error) {
	return s.prepare(id, img, true)
}

func (s *Store) prepare(id string, img *Image, mountPoints bool) (rootfs string, cleanup func() error, err error) {
	if id == "" || strings.ContainsAny(id, "/\x00") || id == "." || id == ".." || len(id) > 128 {
		return "", nil, fmt.Errorf("invalid container id %q", id)
	}
	if img == nil || len(img.Layers) == 0 {
		return "", nil, errors.New("prepare rootfs: image has no layers")
	}
	if len(img.Layers) > 500 {
		return "", nil, fmt.Errorf("image has %d layers; overlayfs stacks at most 500", len(img.Layers))
	}
	l, err := s.lock("store.lock", unix.LOCK_SH)
	if err != nil {
		return "", nil, err
	}
	defer l.release()
	// Topmost first, as overlayfs wants. A layer that appears twice is
	// stacked once, at its upper position: overlayfs refuses the same
	// directory twice, and the upper copy already re-applies everything
	// the lower one held.
	var lowers []string
	seen := map[string]bool{}
	var rec strings.Builder
	for i := len(img.Layers) - 1; i >= 0; i-- {
		ly := img.Layers[i]
		h, err := sha256Hex(ly.DiffID)
		if err != nil {
			return "", nil, err
		}
		if !s.hasLayer(ly.DiffID) {
			return "", nil, fmt.Errorf("layer %s of image %s is not in the store (pull it again)", shortHex(ly.DiffID, 12), img.ShortID())
		}
		if seen[h] {
			continue
		}
		seen[h] = true
		lowers = append(lowers, "layers/"+h)
		rec.WriteString(ly.DiffID)
		rec.WriteByte('\n')
	}
	cdir := filepath.Join(s.root, "containers", id)
	rootfs = filepath.Join(cdir, "merged")
	cleanup = func() error { return s.Release(id) }
	if mounted(rootfs) {
		return rootfs, cleanup, nil
	}
	if mountPoints {
		mp, err := s.mountPointLayer(lowers)
		if err != nil {
			return "", nil, fmt.Errorf("prepare rootfs of %s: %w", id, err)
		}
		if mp != "" {
			lowers = append([]string{mp}, lowers...)
		}
	}
	for _, d := range []string{cdir, filepath.Join(cdir, "upper"), filepath.Join(cdir, "work"), rootfs} {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return "", nil, err
		}
	}
	// Recorded before mounting, so Prune keeps these layers from now on.
	if err := os.WriteFile(filepath.Join(cdir, "lowers"), []byte(rec.String()), 0o600); err != nil {
		return "", nil, err
	}
	if err := s.mountOverlay(lowers, id); err != nil {
		return "", nil, fmt.Errorf("mount rootfs of %s: %w", id, err)
	}
	return rootfs, cleanup, nil
}

// mountPointFiles are the files of /etc that every container gets as bind
// mounts (its hosts, hostname and resolv.conf), in the bit order of a
// mount-point layer's name.
var mountPointFiles = [...]string{"hosts", "hostname", "resolv.conf"}

// mountPointLayer returns the store-relative path of a lower layer that
// holds, as empty files, those of mountPointFiles that the image (lowers,
// topmost first) lacks in /etc, with an /etc of the image's own mode and
// owner; "" when the image has them all, or when its /etc is not a
// directory. The bind mounts then find their mount points in place: without
// it, overlayfs copied /etc up and created the files in every container's
// upper directory, at each create. Docker's per-container init layer does the
// same job; this one is made once, in init/, and shared by every container
// of every image with the same /etc and the same files missing.
func (s *Store) mountPointLayer(lowers []string) (string, error) {
	var etc *unix.Stat_t
	var seen, present [len(mountPointFiles)]bool
	for _, l := range lowers {
		dir := filepath.Join(s.root, l, "etc")
		var st unix.Stat_t
		if err := unix.Lstat(dir, &st); err == unix.ENOENT {
			continue
		} else if err != nil {
			return "", &os.PathError{Op: "lstat", Path: dir, Err: err}
		}
		if etc == nil {
			etc = &st
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			break // a whiteout, file or symlink hides every layer below
		}
		for i, name := range mountPointFiles {
			if seen[i] {
				continue
			}
			var f unix.Stat_t
			err := unix.Lstat(filepath.Join(dir, name), &f)
			if err == unix.ENOENT {
				continue
			}
			if err != nil {
				return "", &os.PathError{Op: "lstat", Path: filepath.Join(dir, name), Err: err}
			}
			seen[i], present[i] = true, !isWhiteout(&f)
		}
		if v, err := getxattr(dir, opaqueXattr); err == nil && v == "y" {
			break
		}
	}
	mode, uid, gid := uint32(0o755), uint32(0), uint32(0)
	if etc != nil {
		if etc.Mode&unix.S_IFMT != unix.S_IFDIR {
			return "", nil
		}
		mode, uid, gid = etc.Mode&0o7777, etc.Uid, etc.Gid
	}
	var missing []string
	mask := 0
	for i, name := range mountPointFiles {
		if !present[i] {
			missing = append(missing, name)
			mask |= 1 << i
		}
	}
	if mask == 0 {
		return "", nil
	}
	rel := fmt.Sprintf("init/%04o-%d-%d-%d", mode, uid, gid, mask)
	if _, err := os.Lstat(filepath.Join(s.root, rel)); err == nil {
		return rel, nil
	}
	return rel, s.makeMountPointLayer(rel, mode, int(uid), int(gid), missing)
}

// makeMountPointLayer makes init/<...> in tmp/ and publishes it, so that
// a mount-point layer is always complete. The store lock is held shared:
// a concurrent maker may win the rename.
func (s *Store) makeMountPointLayer(rel string, mode uint32, uid, gid int, files []string) (retErr error) {
	if err := os.MkdirAll(filepath.Join(s.root, "init"), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), "init-")
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			os.RemoveAll(tmp)
		}
	}()
	etc := filepath.Join(tmp, "etc")
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(etc, 0o700); err != nil {
		return err
	}
	for _, name := range files {
		f, err := os.OpenFile(filepath.Join(etc, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return err
		}
		err = f.Chmod(0o644) // whatever the umask
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	// Owner before mode: chown clears the set-id bits.
	if err := os.Lchown(etc, uid, gid); err != nil {
		return err
	}
	if err := unix.Chmod(etc, mode); err != nil {
		return &os.PathError{Op: "chmod", Path: etc, Err: err}
	}
	return publishDir(tmp, filepath.Join(s.root, rel))
}

// publishDir makes the complete directory tmp (under tmp/) durable and
// renames it to final, then syncs final's parent, so that final either
// does not exist or is complete. When another process published the same
// final first, tmp is removed and theirs is used.
func publishDir(tmp, final string) error {
	if err := syncFS(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		if !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.ENOTEMPTY) {
			return err
		}
		makeWritable(tmp)
		os.RemoveAll(tmp)
	}
	return syncDir(filepath.Dir(final))
}

// isWhiteout reports whether st is overlayfs's whiteout, a 0/0 character
// device.
func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// getxattr reads a small extended attribute of path (not following a
// symlink).
func getxattr(path, name string) (string, error) {
	buf := make([]byte, 16)
	n, err := unix.Lgetxattr(path, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// mountOverlay mounts overlayfs at containers/<id>/merged. It runs on a
// locked OS thread that unshares its filesystem attributes (CLONE_FS) and
// chdirs to the store root, so every path handed to the kernel is short and
// relative; the thread is thrown away afterwards.
//
// Kernels >= 6.8 accept "lowerdir+" through fsconfig(2), one layer per call,
// so there is no limit on the total length. Older kernels get one mount(2)
// with l/<16 hex> symlinks, whose options must fit in a page: about 230
// layers.
func (s *Store) mountOverlay(lowers []string, id string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread's cwd differs from the process's,
		// so it must exit with this goroutine.
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- os.NewSyscallError("unshare(CLONE_FS)", err)
			return
		}
		if err := unix.Chdir(s.root); err != nil {
			errc <- &os.PathError{Op: "chdir", Path: s.root, Err: err}
			return
		}
		upper, work, target := "containers/"+id+"/upper", "containers/"+id+"/work", "containers/"+id+"/merged"
		if !testForceLegacyMount {
			err := mountNewAPI(lowers, upper, work, target)
			if !errors.Is(err, errNoLowerdirPlus) {
				errc <- err
				return
			}
		}
		errc <- mountLegacy(lowers, upper, work, target)
	}()
	return <-errc
}

var errNoLowerdirPlus = errors.New("kernel lacks overlayfs lowerdir+")

func mountNewAPI(lowers []string, upper, work, target string) error {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		if err == unix.ENOSYS {
			return errNoLowerdirPlus
		}
		return os.NewSyscallError("fsopen", err)
	}
	defer unix.Close(fsfd)
	// Before 6.5 overlayfs had no fs_context of its own: the kernel gives
	// it a legacy one, which accepts any key and appends "key=value" to a
	// one-page option string, so "lowerdir+" would only fail at create
	// (or with "Cumulative options too large"). A native context refuses
	// a key it does not know: that tells the two apart.
	if unix.FsconfigSetString(fsfd, "berth-probe", "1") == nil {
		return errNoLowerdirPlus
	}
	drainFsLog(fsfd) // the probe's "unknown parameter" message
	for i, l := range lowers {
		if err := unix.FsconfigSetString(fsfd, "lowerdir+", l); err != nil {
			if i == 0 && err == unix.EINVAL {
				return errNoLowerdirPlus
			}
			return fsError(fsfd, "lowerdir+", err)
		}
	}
	for _, kv := range [][2]string{{"upperdir", upper}, {"workdir", work}} {
		if err := unix.FsconfigSetString(fsfd, kv[0], kv[1]); err != nil {
			return fsError(fsfd, kv[0], err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fsError(fsfd, "create", err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return fsError(fsfd, "fsmount", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return os.NewSyscallError("move_mount", err)
	}
	return nil
}

// drainFsLog discards the messages queued on an fs context fd.
func drainFsLog(fsfd int) {
	buf := make([]byte, 512)
	for {
		if n, err := unix.Read(fsfd, buf); err != nil || n <= 0 {
			return
		}
	}
}

// fsError adds the kernel's own message, read from the fs context fd.
func fsError(fsfd int, step string, err error) error {
	buf := make([]byte, 512)
	var msgs []string
	for {
		n, rerr := unix.Read(fsfd, buf)
		if rerr != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	if len(msgs) > 0 {
		return fmt.Errorf("fsconfig %s: %w (%s)", step, err, strings.Join(msgs, "; "))
	}
	return fmt.Errorf("fsconfig %s: %w", step, err)
}

func mountLegacy(lowers []string, upper, work, target string) error {
	short := make([]string, len(lowers))
	for i, l := range lowers {
		h, ok := strings.CutPrefix(l, "layers/")
		if !ok {
			short[i] = l // the mount-point layer's name is short already
			continue
		}
		short[i] = "l/" + shortLink(h)
		// Made with the layer; remade here in case a crash came between.
		if err := unix.Symlinkat("../"+l, unix.AT_FDCWD, short[i]); err != nil && err != unix.EEXIST {
			return os.NewSyscallError("symlinkat", err)
		}
	}
	opts := "lowerdir=" + strings.Join(short, ":") + ",upperdir=" + upper + ",workdir=" + work
	if len(opts) >= os.Getpagesize() {
		return fmt.Errorf("overlay options are %d bytes, over the %d-byte page limit of this kernel (too many layers)", len(opts), os.Getpagesize())
	}
	return os.NewSyscallError("mount", unix.Mount("overlay", target, "overlay", 0, opts))
}

// mounted reports whether p is a mount point (its mount ID differs from its
// parent's), via statx.
func mounted(p string) bool {
	var a, b unix.Statx_t
	if unix.Statx(unix.AT_FDCWD, p, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &a) != nil {
		return false
	}
	if unix.Statx(unix.AT_FDCWD, filepath.Dir(p), unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &b) != nil {
		return false
	}
	return a.Mnt_id != b.Mnt_id
}

// Unmount unmounts a container's rootfs and keeps its upper directory, so a
// later Prepare with the same id sees the container's earlier writes.
func (s *Store) Unmount(id string) error {
	if id == "" || strings.ContainsAny(id, "/\x00") || id == "." || id == ".." {
		return fmt.Errorf("invalid container id %q", id)
	}
	merged := filepath.Join(s.root, "containers", id, "merged")
	for i := 0; i < 16 && mounted(merged); i++ { // stacked mounts come off one by one
		if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			return &os.PathError{Op: "umount", Path: merged, Err: err}
		}
	}
	return nil
}

// Release unmounts a container's rootfs and removes its directory, upper
// included. Releasing an unknown id is not an error.
func (s *Store) Release(id string) error {
	if err := s.Unmount(id); err != nil {
		return err
	}
	cdir := filepath.Join(s.root, "containers", id)
	makeWritable(cdir)
	if err := os.RemoveAll(cdir); err != nil {
		return fmt.Errorf("remove container rootfs %s: %w", id, err)
	}
	return nil
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
