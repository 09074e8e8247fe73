package cgroups

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// These tests run as an ordinary user: the Manager is pointed at a fake
// tree in t.TempDir() (mountinfo with a prefix) whose leaf directory
// already holds the files the kernel would create, and the test checks
// what Set wrote and what Stats parsed. The real-kernel tests are in
// cgroups_linux_test.go.

func fakeTree(t *testing.T, mountinfo, path string, files map[string]string) (Manager, string) {
	t.Helper()
	prefix := t.TempDir()
	for name, content := range files {
		p := filepath.Join(prefix, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := newFromMountinfo(strings.NewReader(mountinfo), prefix, path)
	if err != nil {
		t.Fatal(err)
	}
	return m, prefix
}

func readFake(t *testing.T, prefix, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(prefix, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestFakeV2SetAndStats(t *testing.T) {
	leaf := "sys/fs/cgroup/berth/c1/"
	m, prefix := fakeTree(t, v2Mountinfo, "/berth/c1", map[string]string{
		leaf + "cpu.weight": "100", leaf + "cpu.max": "max 100000", leaf + "cpu.max.burst": "0",
		leaf + "cpuset.cpus": "", leaf + "cpuset.mems": "",
		leaf + "memory.max": "max", leaf + "memory.swap.max": "max", leaf + "memory.low": "0",
		leaf + "pids.max": "max", leaf + "io.max": "",
		leaf + "cpu.stat":       "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 2\nthrottled_usec 9\n",
		leaf + "memory.current": "4096\n", leaf + "memory.peak": "8192\n",
		leaf + "memory.stat":   "anon 100\nfile 2048\nkernel 3\n",
		leaf + "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
		leaf + "pids.current":  "3\n",
		leaf + "io.stat":       "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n253:1 rbytes=1 wbytes=2 rios=1 wios=1 dbytes=0 dios=0\n",
	})
	err := m.Set(&specs.LinuxResources{
		CPU:    &specs.LinuxCPU{Shares: u64(1024), Quota: i64(25000), Cpus: "0-1", Mems: "0", Burst: u64(1000)},
		Memory: &specs.LinuxMemory{Limit: i64(100 << 20), Swap: i64(300 << 20), Reservation: i64(50 << 20), DisableOOMKiller: boolp(true)},
		Pids:   &specs.LinuxPids{Limit: i64(64)},
		BlockIO: &specs.LinuxBlockIO{ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{
			{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1 << 20},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"cpu.weight": "39", "cpu.max": "25000 100000", "cpu.max.burst": "1000",
		"cpuset.cpus": "0-1", "cpuset.mems": "0",
		"memory.max": "104857600", "memory.swap.max": "209715200", "memory.low": "52428800",
		"pids.max": "64", "io.max": "8:0 rbps=1048576",
	} {
		if got := readFake(t, prefix, leaf+name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	// Only the period changes: the quota is kept.
	if err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Period: u64(50000)}}); err != nil {
		t.Fatal(err)
	}
	if got := readFake(t, prefix, leaf+"cpu.max"); got != "25000 50000" {
		t.Errorf("cpu.max after period change = %q", got)
	}
	// A swap limit below the memory limit, and swap without a memory
	// limit, are errors on v2.
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(100), Swap: i64(50)}}); err == nil {
		t.Error("swap < limit accepted")
	}
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: i64(50)}}); err == nil {
		t.Error("swap without limit accepted")
	}
	if err := m.Set(&specs.LinuxResources{Unified: map[string]string{"../x": "1"}}); err == nil {
		t.Error("unified key with a slash accepted")
	}

	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{
		CPUUsageNanos: 1500000, CPUUserNanos: 1000000, CPUSystemNanos: 500000, CPUThrottled: 2,
		MemoryUsage: 4096, MemoryLimit: 100 << 20, MemoryMaxUsage: 8192, MemoryCache: 2048,
		Pids: 3, PidsLimit: 64, IOReadBytes: 101, IOWriteBytes: 202, OOMKills: 1,
	}
	if *st != want {
		t.Errorf("Stats = %+v\nwant    %+v", *st, want)
	}
	if oom, err := m.OOMKilled(); err != nil || !oom {
		t.Errorf("OOMKilled = %v, %v", oom, err)
	}
	if p := m.Paths()[""]; p != filepath.Join(prefix, leaf) {
		t.Errorf("Paths = %v", m.Paths())
	}
}

func TestFakeV1SetAndStats(t *testing.T) {
	cg := "sys/fs/cgroup/"
	files := map[string]string{}
	add := func(ctl, name, content string) { files[cg+ctl+"/berth/c1/"+name] = content }
	add("cpu,cpuacct", "cpu.shares", "1024")
	add("cpu,cpuacct", "cpu.cfs_quota_us", "-1")
	add("cpu,cpuacct", "cpu.cfs_period_us", "100000")
	add("cpu,cpuacct", "cpu.stat", "nr_periods 10\nnr_throttled 4\nthrottled_time 5\n")
	add("cpu,cpuacct", "cpuacct.usage", "123456789\n")
	add("cpu,cpuacct", "cpuacct.stat", "user 7\nsystem 3\n")
	add("cpuset", "cpuset.cpus", "")
	add("cpuset", "cpuset.mems", "")
	add("memory", "memory.limit_in_bytes", "9223372036854771712")
	add("memory", "memory.memsw.limit_in_bytes", "9223372036854771712")
	add("memory", "memory.soft_limit_in_bytes", "9223372036854771712")
	add("memory", "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
	add("memory", "memory.usage_in_bytes", "5000\n")
	add("memory", "memory.max_usage_in_bytes", "6000\n")
	add("memory", "memory.stat", "cache 100\nrss 4000\ntotal_cache 300\n")
	add("memory", "memory.swappiness", "60")
	add("pids", "pids.max", "max")
	add("pids", "pids.current", "2")
	add("devices", "devices.allow", "")
	add("devices", "devices.deny", "")
	add("blkio", "blkio.throttle.io_service_bytes_recursive", "8:0 Read 10\n8:0 Write 20\n8:0 Total 30\nTotal 30\n")
	add("blkio", "blkio.throttle.write_bps_device", "")
	mountinfo := hybridMountinfo + "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n" +
		"38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n"
	m, prefix := fakeTree(t, mountinfo, "/berth/c1", files)
	err := m.Set(&specs.LinuxResources{
		CPU:    &specs.LinuxCPU{Shares: u64(512), Quota: i64(20000), Period: u64(50000), Cpus: "1", Mems: "0"},
		Memory: &specs.LinuxMemory{Limit: i64(100 << 20), Swap: i64(200 << 20), Reservation: i64(10 << 20), Swappiness: u64(0)},
		Pids:   &specs.LinuxPids{Limit: i64(10)},
		BlockIO: &specs.LinuxBlockIO{ThrottleWriteBpsDevice: []specs.LinuxThrottleDevice{
			{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 4096},
		}},
		Devices: []specs.LinuxDeviceCgroup{
			devRule(false, "a", nil, nil, "rwm"),
			devRule(true, "c", i64(1), i64(3), "rwm"),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	read := func(ctl, name string) string { return readFake(t, prefix, cg+ctl+"/berth/c1/"+name) }
	for _, f := range []struct{ ctl, name, want string }{
		{"cpu,cpuacct", "cpu.shares", "512"},
		{"cpu,cpuacct", "cpu.cfs_quota_us", "20000"},
		{"cpu,cpuacct", "cpu.cfs_period_us", "50000"},
		{"cpuset", "cpuset.cpus", "1"},
		{"cpuset", "cpuset.mems", "0"},
		{"memory", "memory.limit_in_bytes", "104857600"},
		{"memory", "memory.memsw.limit_in_bytes", "209715200"},
		{"memory", "memory.soft_limit_in_bytes", "10485760"},
		{"memory", "memory.swappiness", "0"},
		{"pids", "pids.max", "10"},
		{"blkio", "blkio.throttle.write_bps_device", "8:0 4096"},
		// a fake file keeps the last write only
		{"devices", "devices.deny", "a *:* rwm"},
		{"devices", "devices.allow", "c 1:3 rwm"},
	} {
		if got := read(f.ctl, f.name); got != f.want {
			t.Errorf("%s/%s = %q, want %q", f.ctl, f.name, got, f.want)
		}
	}
	if err := m.Set(&specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}}); err == nil {
		t.Error("unified resources accepted on v1")
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{
		CPUUsageNanos: 123456789, CPUUserNanos: 70000000, CPUSystemNanos: 30000000, CPUThrottled: 4,
		MemoryUsage: 5000, MemoryLimit: 100 << 20, MemoryMaxUsage: 6000, MemoryCache: 300,
		Pids: 2, PidsLimit: 10, IOReadBytes: 10, IOWriteBytes: 20, OOMKills: 2,
	}
	if *st != want {
		t.Errorf("Stats = %+v\nwant    %+v", *st, want)
	}
	paths := m.Paths()
	if paths["cpu"] != paths["cpuacct"] || paths["cpu"] != filepath.Join(prefix, cg, "cpu,cpuacct/berth/c1") {
		t.Errorf("Paths = %v", paths)
	}
	if _, ok := paths["freezer"]; ok {
		t.Error("freezer path without a freezer mount")
	}
	if err := m.Freeze(); err == nil {
		t.Error("Freeze without a freezer mount: no error")
	}
}
