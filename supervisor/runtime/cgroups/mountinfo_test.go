package cgroups

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const hybridMountinfo = `22 27 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

const v2Mountinfo = `25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 25 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:8 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`

func TestParseMountinfo(t *testing.T) {
	l, err := parseMountinfo(strings.NewReader(hybridMountinfo), "")
	if err != nil {
		t.Fatal(err)
	}
	if l.Version != V1 {
		t.Errorf("hybrid: version %d, want V1", l.Version)
	}
	for c, want := range map[string]string{
		"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
		"cpuset": "/sys/fs/cgroup/cpuset", "memory": "/sys/fs/cgroup/memory", "devices": "/sys/fs/cgroup/devices",
	} {
		if got := l.V1[c].Mountpoint; got != want {
			t.Errorf("hybrid: %s at %q, want %q", c, got, want)
		}
	}
	if _, ok := l.V1["name=systemd"]; ok {
		t.Error("named hierarchy taken for a controller")
	}
	if _, ok := l.V1["pids"]; ok {
		t.Error("pids found but not mounted")
	}
	if l.Unified == nil || l.Unified.Mountpoint != "/sys/fs/cgroup/unified" {
		t.Errorf("hybrid: unified = %+v", l.Unified)
	}
	// Every hierarchy under /sys/fs/cgroup, with what mounts it again.
	wantMounts := []Mount{
		{"/sys/fs/cgroup/cpu,cpuacct", "cgroup", "cpu,cpuacct"}, {"/sys/fs/cgroup/cpuset", "cgroup", "cpuset"},
		{"/sys/fs/cgroup/memory", "cgroup", "memory"}, {"/sys/fs/cgroup/devices", "cgroup", "devices"},
		{"/sys/fs/cgroup/systemd", "cgroup", "xattr,name=systemd"}, {"/sys/fs/cgroup/unified", "cgroup2", ""},
	}
	if !reflect.DeepEqual(l.Mounts, wantMounts) {
		t.Errorf("hybrid mounts:\n%+v\nwant\n%+v", l.Mounts, wantMounts)
	}

	l, err = parseMountinfo(strings.NewReader(v2Mountinfo), "/fake")
	if err != nil {
		t.Fatal(err)
	}
	if l.Version != V2 || l.Unified.Mountpoint != "/fake/sys/fs/cgroup" || len(l.V1) != 0 {
		t.Errorf("v2: %+v", l)
	}
	if want := []Mount{{"/fake/sys/fs/cgroup", "cgroup2", ""}}; !reflect.DeepEqual(l.Mounts, want) {
		t.Errorf("v2 mounts %+v, want %+v", l.Mounts, want)
	}

	if _, err := parseMountinfo(strings.NewReader("22 27 0:20 / /sys rw - sysfs sysfs rw\ngarbage\n"), ""); !errors.Is(err, ErrNoCgroups) {
		t.Errorf("no cgroups: err = %v", err)
	}
}

func TestHierarchyDir(t *testing.T) {
	h := hierarchy{Mountpoint: "/sys/fs/cgroup", Root: "/"}
	if d, err := h.dir("/berth/x"); err != nil || d != "/sys/fs/cgroup/berth/x" {
		t.Errorf("root /: %q, %v", d, err)
	}
	// A hierarchy mounted from inside (container, bind mount): only
	// paths below its root are reachable.
	h = hierarchy{Mountpoint: "/sys/fs/cgroup", Root: "/kubepods/pod1"}
	if d, err := h.dir("/kubepods/pod1/berth/x"); err != nil || d != "/sys/fs/cgroup/berth/x" {
		t.Errorf("nested: %q, %v", d, err)
	}
	if _, err := h.dir("/other/x"); err == nil {
		t.Error("path outside the mounted root accepted")
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`: "/a b", `/plain`: "/plain", `/tab\011x`: "/tab\tx", `/short\04`: `/short\04`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSharesToWeight(t *testing.T) {
	// Values as runc and crun compute them.
	for shares, want := range map[uint64]uint64{0: 0, 1: 1, 2: 1, 512: 20, 1024: 39, 262144: 10000, 1 << 20: 10000} {
		if got := sharesToWeight(shares); got != want {
			t.Errorf("sharesToWeight(%d) = %d, want %d", shares, got, want)
		}
	}
}

func TestDeviceRuleString(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		allow bool
		typ   string
		maj   *int64
		min   *int64
		acc   string
		want  string
	}{
		{false, "a", nil, nil, "rwm", "a *:* rwm"},
		{true, "c", n(1), n(3), "rwm", "c 1:3 rwm"},
		{true, "b", n(8), nil, "r", "b 8:* r"},
		{true, "", nil, nil, "", "a *:* rwm"},
		{true, "c", n(-1), n(-1), "m", "c *:* m"},
	} {
		got := deviceRuleString(devRule(tc.allow, tc.typ, tc.maj, tc.min, tc.acc))
		if got != tc.want {
			t.Errorf("%+v: %q, want %q", tc, got, tc.want)
		}
	}
}

func TestIgnored(t *testing.T) {
	yes := true
	r := &specs.LinuxResources{Memory: &specs.LinuxMemory{DisableOOMKiller: &yes}}
	if got := Ignored(V1, r); len(got) != 0 {
		t.Errorf("v1 ignores %v", got)
	}
	if got := Ignored(V2, r); len(got) != 1 || got[0] != "memory.disableOOMKiller" {
		t.Errorf("v2 ignores %v, want memory.disableOOMKiller", got)
	}
	if got := Ignored(V2, nil); got != nil {
		t.Errorf("nil resources: %v", got)
	}
}
