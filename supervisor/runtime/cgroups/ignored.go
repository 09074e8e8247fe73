package cgroups

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Ignored lists the fields of r (as linux.resources JSON paths) that a
// Manager for cgroup version v accepts but does not act on, so that the
// caller can warn once per service instead of dropping them silently:
// oom_kill_disable and swappiness have no cgroup v2 counterpart (runc
// ignores them too), kernel memory limits are gone from recent kernels,
// and berth does not manage hugetlb, rdma or net_cls/net_prio.
func Ignored(v Version, r *specs.LinuxResources) []string {
	if r == nil {
		return nil
	}
	var out []string
	add := func(cond bool, field string) {
		if cond {
			out = append(out, field)
		}
	}
	if m := r.Memory; m != nil {
		add(v == V2 && m.DisableOOMKiller != nil && *m.DisableOOMKiller, "memory.disableOOMKiller")
		add(v == V2 && m.Swappiness != nil, "memory.swappiness")
		add(m.Kernel != nil, "memory.kernel")
		add(m.KernelTCP != nil, "memory.kernelTCP")
		add(m.UseHierarchy != nil, "memory.useHierarchy")
		add(m.CheckBeforeUpdate != nil && *m.CheckBeforeUpdate, "memory.checkBeforeUpdate")
	}
	if c := r.CPU; c != nil {
		add(v == V2 && (c.RealtimePeriod != nil || c.RealtimeRuntime != nil), "cpu.realtimeRuntime/realtimePeriod")
		add(v == V1 && c.Burst != nil, "cpu.burst")
		add(v == V1 && c.Idle != nil, "cpu.idle")
	}
	if b := r.BlockIO; b != nil {
		add(b.LeafWeight != nil, "blockIO.leafWeight")
		add(len(b.WeightDevice) > 0, "blockIO.weightDevice")
	}
	add(len(r.HugepageLimits) > 0, "hugepageLimits")
	add(len(r.Rdma) > 0, "rdma")
	add(r.Network != nil, "network")
	return out
}

// IsFrozen reports whether m's cgroup is frozen (paused), for the
// runtime's state ("paused"). Both drivers provide it; another Manager
// implementation reports false.
func IsFrozen(m Manager) (bool, error) {
	f, ok := m.(interface{ Frozen() (bool, error) })
	if !ok {
		return false, nil
	}
	return f.Frozen()
}
