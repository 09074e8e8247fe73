package image

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPullDiskFull: a pull into a store that runs out of space fails with
// ENOSPC, leaves nothing trusted behind, and once there is room the same
// store pulls the image completely.
func TestPullDiskFull(t *testing.T) {
	requirePrivileged(t)
	// 1m runs out while downloading blobs, 2m while unpacking layers.
	for _, size := range []string{"1m", "2m"} {
		t.Run(size, func(t *testing.T) { testPullDiskFull(t, size) })
	}
}

func testPullDiskFull(t *testing.T, size string) {
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size="+size); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	reg := newTestRegistry(t, nil)
	img := randomImage(t, 400<<10, 3) // 1.2 MiB of incompressible layers
	reg.push(t, reg.ref("big:1"), img)
	s, err := Open(filepath.Join(mnt, "images"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Pull(context.Background(), reg.ref("big:1"), PullOptions{Keychain: anon})
	if !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("pull into a full disk: %v, want ENOSPC", err)
	}
	t.Logf("pull into %s: %v", size, err)
	if _, err := s.Get(reg.ref("big:1")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("image recorded after a failed pull: %v", err)
	}
	mustCheck(t, s)
	if left := s.tmpEntries(); len(left) != 0 {
		t.Fatalf("failed pull left %v in tmp/", left)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", unix.MS_REMOUNT, "size=16m"); err != nil {
		t.Fatal(err)
	}
	pull(t, s, reg.ref("big:1"), PullOptions{})
	mustCheck(t, s)
	assertLayersUnpacked(t, s, img)
	if _, err := os.Stat(filepath.Join(mnt, "images", "index.json")); err != nil {
		t.Fatal(err)
	}
}
