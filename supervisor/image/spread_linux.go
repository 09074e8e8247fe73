package image

import (
	"os"

	"golang.org/x/sys/unix"
)

// fsTopdirFl is FS_TOPDIR_FL of linux/fs.h (x/sys/unix lacks it).
const fsTopdirFl = 0x00020000

// SpreadSubdirs marks dir as the top of directory hierarchies
// (FS_TOPDIR_FL, chattr +T), so that ext4 places each new subdirectory
// (one per container) in a block group of its own rather than beside
// its parent. Without it, the files of every container land in one
// group, and an ext4 without a journal skips every inode deleted in the
// last half minute when it allocates one: creating a container after
// many were removed got slower with each (on this project's CI machine,
// 40% of the CPU of `up` of 50 services). Filesystems without the flag
// ignore it; failures are ignored too.
func SpreadSubdirs(dir string) {
	f, err := os.Open(dir)
	if err != nil {
		return
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil || flags&fsTopdirFl != 0 {
		return
	}
	_ = unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags|fsTopdirFl))
}
