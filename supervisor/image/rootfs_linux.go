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
	if err := syncFS(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.layerPath(diffID)); err != nil {
		if !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.ENOTEMPTY) {
			return err
		}
		// Another process finished the same layer first: use theirs.
		makeWritable(tmp)
		os.RemoveAll(tmp)
	}
	if err := syncDir(filepath.Join(s.root, "layers")); err != nil {
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
// upper included; it is idempotent, as is Release(id).
func (s *Store) Prepare(id string, img *Image) (rootfs string, cleanup func() error, err error) {
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
		lowers = append(lowers, h)
		rec.WriteString(ly.DiffID)
		rec.WriteByte('\n')
	}
	cdir := filepath.Join(s.root, "containers", id)
	rootfs = filepath.Join(cdir, "merged")
	cleanup = func() error { return s.Release(id) }
	if mounted(rootfs) {
		return rootfs, cleanup, nil
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
	for i, h := range lowers {
		if err := unix.FsconfigSetString(fsfd, "lowerdir+", "layers/"+h); err != nil {
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
	for i, h := range lowers {
		short[i] = "l/" + shortLink(h)
		// Made with the layer; remade here in case a crash came between.
		if err := unix.Symlinkat("../layers/"+h, unix.AT_FDCWD, short[i]); err != nil && err != unix.EEXIST {
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
