package specconv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// deviceNode describes the device node at host path src, to appear at dst.
func deviceNode(src, dst string) (specs.LinuxDevice, error) {
	var st unix.Stat_t
	if err := unix.Stat(src, &st); err != nil {
		return specs.LinuxDevice{}, &os.PathError{Op: "stat", Path: src, Err: err}
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, fmt.Errorf("%s is not a device node", src)
	}
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{
		Path:     dst,
		Type:     typ,
		Major:    int64(unix.Major(st.Rdev)),
		Minor:    int64(unix.Minor(st.Rdev)),
		FileMode: &mode,
		UID:      &uid,
		GID:      &gid,
	}, nil
}

// deviceNodes returns the node at src, or every node below src when it is
// a directory (like Docker's devices: /dev/snd).
func deviceNodes(src, dst string) ([]specs.LinuxDevice, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		d, err := deviceNode(src, dst)
		if err != nil {
			return nil, err
		}
		return []specs.LinuxDevice{d}, nil
	}
	var out []specs.LinuxDevice
	err = filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || e.Type()&(fs.ModeDevice|fs.ModeCharDevice) == 0 {
			return nil // unreadable entries and non-devices are skipped
		}
		rel, _ := filepath.Rel(src, p)
		if d, err := deviceNode(p, path.Join(dst, filepath.ToSlash(rel))); err == nil {
			out = append(out, d)
		}
		return nil
	})
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("%s holds no device nodes", src)
	}
	return out, err
}

// hostDevices lists the host's device nodes for a privileged container,
// leaving out what the container gets its own of (pts, shm, mqueue) and
// the host's console.
func hostDevices(root string) ([]specs.LinuxDevice, error) {
	var out []specs.LinuxDevice
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			return nil
		}
		if e.IsDir() {
			switch e.Name() {
			case "pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev":
				if p != root {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if e.Name() == "console" || e.Type()&(fs.ModeDevice|fs.ModeCharDevice) == 0 {
			return nil
		}
		d, err := deviceNode(p, p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err == nil {
			out = append(out, d)
		}
		return nil
	})
	return out, err
}
