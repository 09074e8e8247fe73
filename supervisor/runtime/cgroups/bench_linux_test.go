package cgroups

import (
	"fmt"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// typicalResources is what a compose service with cpus, mem_limit,
// pids_limit and Docker's default device list asks for.
func typicalResources() *specs.LinuxResources {
	c := func(maj, min int64) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: majmin(maj), Minor: majmin(min), Access: "rwm"}
	}
	return &specs.LinuxResources{
		CPU:    &specs.LinuxCPU{Shares: u64(1024), Quota: i64(50000), Period: u64(100000)},
		Memory: &specs.LinuxMemory{Limit: i64(256 << 20), Swap: i64(512 << 20)},
		Pids:   &specs.LinuxPids{Limit: i64(512)},
		Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			c(1, 3), c(1, 5), c(1, 7), c(1, 8), c(1, 9), c(5, 0), c(5, 1), c(5, 2), c(136, -1),
		},
	}
}

// BenchmarkCreateDestroy measures the cgroup part of a container's
// create+delete: New, Create with typical resources, Destroy.
func BenchmarkCreateDestroy(b *testing.B) {
	requirePrivileged(b)
	top, _ := testPath(b)
	b.Cleanup(func() { assertGone(b, top) })
	r := typicalResources()
	i := 0
	for b.Loop() {
		m, err := New(fmt.Sprintf("%s/c%d", top, i))
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Create(r); err != nil {
			b.Fatal(err)
		}
		if err := m.Destroy(); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkStats measures one `berth stats` sample of a container.
func BenchmarkStats(b *testing.B) {
	requirePrivileged(b)
	top, path := testPath(b, "c")
	m, err := New(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Destroy(); assertGone(b, top) })
	if err := m.Create(typicalResources()); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := m.Stats(); err != nil {
			b.Fatal(err)
		}
	}
}
