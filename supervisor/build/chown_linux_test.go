package build

import (
	"os"
	"path/filepath"
	"testing"
)

// --chown resolves names in the image's passwd and group files; a user
// alone gets its primary group, and a number alone is uid and gid.
func TestParseChown(t *testing.T) {
	rootfs := t.TempDir()
	if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(rootfs, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(rootfs, "etc/group"), []byte("root:x:0:\nstaff:x:50:\n"), 0o644)
	for _, tc := range []struct {
		spec     string
		uid, gid int
	}{{"app", 1000, 1001}, {"app:staff", 1000, 50}, {"10", 10, 10}, {"10:staff", 10, 50}, {"app:7", 1000, 7}} {
		o, err := parseChown(rootfs, tc.spec)
		if err != nil || o.uid != tc.uid || o.gid != tc.gid {
			t.Errorf("parseChown(%q) = %+v, %v; want %d:%d", tc.spec, o, err, tc.uid, tc.gid)
		}
	}
	for _, bad := range []string{"ghost", "app:nogroup"} {
		if o, err := parseChown(rootfs, bad); err == nil {
			t.Errorf("parseChown(%q) = %+v, want an error", bad, o)
		}
	}
	if o, err := parseChown(rootfs, ""); o != nil || err != nil {
		t.Errorf("parseChown(\"\") = %+v, %v", o, err)
	}
}
