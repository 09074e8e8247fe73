package runtime

import (
	"os"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/supervisor/runtime/cgroups"
)

// fullInitConfig sets every field the init wire encoding carries.
func fullInitConfig() *initConfig {
	oom, timeout1, timeout2 := -500, 3, 0
	mode := os.FileMode(0o620)
	uid, gid := uint32(5), uint32(6)
	return &initConfig{
		Mode: "create", ID: "web-1", Rootfs: "/var/lib/berth/c/merged",
		NewUserNS: true, NewNetNS: true, NewCgroupNS: true, NumExtra: 2,
		CgroupPaths: map[string]string{"": "/sys/fs/cgroup/berth/x", "memory": "/sys/fs/cgroup/memory/berth/x"},
		JoinCgroups: true,
		CgroupMounts: []cgroups.Mount{
			{Mountpoint: "/sys/fs/cgroup/cpu", FSType: "cgroup", Options: "cpu"},
			{Mountpoint: "/sys/fs/cgroup/unified", FSType: "cgroup2"},
		},
		Reaper: true, RuntimeHooks: true,
		Seccomp: &seccompProgram{Prog: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Flags: 4},
		LastCap: 40,
		Process: &specs.Process{
			Terminal: true, ConsoleSize: &specs.Box{Height: 24, Width: 80},
			User: specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{4, 27}, Username: "app"},
			Args: []string{"sh", "-c", "echo ünïcode\x00bytes"}, Env: []string{"PATH=/bin", "EMPTY="}, Cwd: "/srv",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: []string{"CAP_CHOWN", "CAP_KILL"}, Effective: []string{"CAP_KILL"},
				Inheritable: []string{"CAP_SETUID"}, Permitted: []string{"CAP_KILL", "CAP_NET_RAW"}, Ambient: []string{"CAP_NET_BIND_SERVICE"},
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1 << 20, Soft: 1024}, {Type: "RLIMIT_CORE", Hard: ^uint64(0)}},
			NoNewPrivileges: true, OOMScoreAdj: &oom,
		},
		Spec: &specs.Spec{
			Hostname: "web", Domainname: "example.test", Root: &specs.Root{Readonly: true},
			Mounts: []specs.Mount{
				{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec"}},
				{Destination: "/data", Type: "bind", Source: "/srv/data", Options: []string{"rbind", "ro"}},
			},
			Hooks: &specs.Hooks{
				CreateContainer: []specs.Hook{{Path: "/bin/hook", Args: []string{"hook", "a"}, Env: []string{"X=1"}, Timeout: &timeout1}},
				StartContainer:  []specs.Hook{{Path: "/bin/start"}, {Path: "/bin/start2", Timeout: &timeout2}},
			},
			Annotations: map[string]string{"berth.init": "true", "b": ""},
			Linux: &specs.Linux{
				Devices: []specs.LinuxDevice{
					{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: &mode, UID: &uid, GID: &gid},
					{Path: "/dev/loop0", Type: "b", Major: 7, Minor: -1},
				},
				Sysctl:            map[string]string{"net.ipv4.ip_forward": "1"},
				MaskedPaths:       []string{"/proc/kcore"},
				ReadonlyPaths:     []string{"/proc/sys"},
				RootfsPropagation: "rslave",
			},
		},
	}
}

// Every field the init applies arrives as sent. (A field the init starts
// to read must be added to the encoding, and here.)
func TestInitWireRoundTrip(t *testing.T) {
	for name, c := range map[string]*initConfig{
		"full":    fullInitConfig(),
		"minimal": {Mode: "exec", ID: "x", Process: &specs.Process{Args: []string{"true"}}},
		"empty":   {},
		"no cgroup mounts (read mountinfo) and none": func() *initConfig {
			c := fullInitConfig()
			c.CgroupMounts = []cgroups.Mount{}
			return c
		}(),
	} {
		got, err := decodeInitConfig(encodeInitConfig(c))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("%s: decoded\n%+v\nwant\n%+v", name, got, c)
		}
	}
	// The two ways of having no cgroup mounts stay apart.
	if got, _ := decodeInitConfig(encodeInitConfig(&initConfig{})); got.CgroupMounts != nil {
		t.Error("nil cgroup mounts decoded as an empty list")
	}
}

// Every truncation, a bad magic and trailing bytes are errors, not panics.
func TestInitWireBadInput(t *testing.T) {
	b := encodeInitConfig(fullInitConfig())
	for i := range len(b) {
		if _, err := decodeInitConfig(b[:i]); err == nil {
			t.Fatalf("decoded %d of %d bytes without error", i, len(b))
		}
	}
	if _, err := decodeInitConfig(append(append([]byte(nil), b...), 0)); err == nil || !strings.Contains(err.Error(), "left over") {
		t.Fatalf("trailing byte: %v", err)
	}
	bad := append([]byte("berth-init/0\n"), b[len(initWireMagic):]...)
	if _, err := decodeInitConfig(bad); err == nil || !strings.Contains(err.Error(), "magic") {
		t.Fatalf("bad magic: %v", err)
	}
	// A count larger than what follows does not allocate for it.
	huge := append([]byte(initWireMagic), 0xff, 0xff, 0xff, 0xff, 0x0f)
	if _, err := decodeInitConfig(huge); err == nil {
		t.Fatal("a huge length decoded")
	}
}
