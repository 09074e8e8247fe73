package volumes

import "testing"

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
