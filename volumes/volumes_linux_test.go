package volumes

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/berth-dev/berth/spec"
)

func TestMountFlags(t *testing.T) {
	flags, data := MountFlags([]string{"nosuid", "nodev", "rw", "size=1048576", "mode=1777", "rprivate"})
	if data != "size=1048576,mode=1777" {
		t.Errorf("data %q", data)
	}
	const nosuid, nodev, rdonly = 0x2, 0x4, 0x1
	if flags&(nosuid|nodev) != nosuid|nodev || flags&rdonly != 0 {
		t.Errorf("flags %#x", flags)
	}
	if f, _ := MountFlags([]string{"rbind", "ro"}); f&rdonly == 0 {
		t.Errorf("ro not mapped: %#x", f)
	}
}

func TestCopyInCancelledLeavesVolumeEmpty(t *testing.T) {
	m := newManager(t)
	p := testProject(t)
	rootfs := t.TempDir()
	for i := range 50 {
		if err := os.MkdirAll(filepath.Join(rootfs, "data", "d"+strconv.Itoa(i)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Create("proj_data", CreateOptions{Labels: projectLabels("proj", "data", nil)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	copyHook = func(n int) {
		if n == 10 {
			cancel()
		}
	}
	t.Cleanup(func() { copyHook = nil })
	svc := &spec.Service{Name: "s", Mounts: []spec.Mount{{Type: spec.MountVolume, Source: "data", Target: "/data"}}}
	if _, _, err := m.Prepare(ctx, p, svc, "proj-s-1", rootfs); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled copy-in: %v", err)
	}
	v, err := m.Inspect("proj_data")
	if err != nil || v.CopyIn != copyNone || len(v.UsedBy) != 0 {
		t.Fatalf("after a cancelled copy-in: %+v, %v", v, err)
	}
	if empty, _ := dirEmpty(m.dataPath("proj_data")); !empty {
		t.Fatal("half a copy left in the volume")
	}
	// The next Prepare copies everything.
	copyHook = nil
	_, release, err := m.Prepare(context.Background(), p, svc, "proj-s-1", rootfs)
	if err != nil {
		t.Fatal(err)
	}
	release()
	if ents, _ := os.ReadDir(m.dataPath("proj_data")); len(ents) != 50 {
		t.Fatalf("copied %d of 50 entries", len(ents))
	}
}
