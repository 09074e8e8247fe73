package image

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// On ext4 (the CI machine's root filesystem) the per-container parent
// directories of a store carry FS_TOPDIR_FL, so that ext4 spreads the
// containers over block groups; the store opens alike elsewhere.
func TestStoreSpreadsContainerDirs(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(root, &fs); err != nil {
		t.Fatal(err)
	}
	if fs.Type != unix.EXT4_SUPER_MAGIC {
		t.Skipf("%s is not on ext4 (magic %#x): nothing to check", root, fs.Type)
	}
	for _, d := range []string{"containers"} {
		f, err := os.Open(filepath.Join(root, d))
		if err != nil {
			t.Fatal(err)
		}
		flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if flags&fsTopdirFl == 0 {
			t.Errorf("%s: flags %#x lack FS_TOPDIR_FL", d, flags)
		}
	}
	// Idempotent: a second Open keeps it.
	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
}
