package specconv

import (
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// Docker's limits.
const (
	minMemory     = 6 * 1024 * 1024 // Docker: "Minimum memory limit allowed is 6MB"
	defaultPeriod = 100000          // CFS period for cpus:, in µs
)

var numCPU = runtime.NumCPU

var rlimitNames = map[string]string{
	"as": "RLIMIT_AS", "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA",
	"fsize": "RLIMIT_FSIZE", "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK",
	"msgqueue": "RLIMIT_MSGQUEUE", "nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE",
	"nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO",
	"rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK",
}

func (c *conv) rlimits() error {
	for _, u := range c.svc.Ulimits {
		typ, ok := rlimitNames[strings.ToLower(u.Name)]
		if !ok {
			return c.errf("ulimits", "unknown limit %q", u.Name)
		}
		conv := func(v int64) (uint64, error) {
			switch {
			case v == -1:
				return ^uint64(0), nil // RLIM_INFINITY
			case v < 0:
				return 0, fmt.Errorf("%s: invalid value %d", u.Name, v)
			}
			return uint64(v), nil
		}
		soft, err := conv(u.Soft)
		if err != nil {
			return c.errf("ulimits", "%v", err)
		}
		hard, err := conv(u.Hard)
		if err != nil {
			return c.errf("ulimits", "%v", err)
		}
		if soft > hard {
			return c.errf("ulimits", "%s: soft limit %d is above hard limit %d", u.Name, u.Soft, u.Hard)
		}
		c.s.Process.Rlimits = append(c.s.Process.Rlimits, specs.POSIXRlimit{Type: typ, Soft: soft, Hard: hard})
	}
	return nil
}

// ipcSysctls are the kernel.* sysctls that belong to the IPC namespace.
var ipcSysctls = []string{
	"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
	"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
}

func (c *conv) sysctls() error {
	keys := make([]string, 0, len(c.svc.Sysctls))
	for k := range c.svc.Sysctls {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := map[string]string{}
	for _, k := range keys {
		v := c.svc.Sysctls[k]
		switch {
		case slices.Contains(ipcSysctls, k) || strings.HasPrefix(k, "fs.mqueue."):
			if c.hostIPC {
				return c.errf("sysctls", "%s is not allowed with ipc: host (it would change the host)", k)
			}
		case strings.HasPrefix(k, "net."):
			if c.hostNet {
				return c.errf("sysctls", "%s is not allowed with the host network (it would change the host)", k)
			}
			if c.sharedNet {
				return c.errf("sysctls", "%s is not allowed with network_mode %s (set it on the container that owns the network namespace)", k, c.svc.NetworkMode)
			}
		case k == "kernel.domainname" || k == "kernel.hostname":
			return c.errf("sysctls", "%s: use the domainname/hostname keys instead", k)
		default:
			return c.errf("sysctls", "%s is not namespaced: only net.*, fs.mqueue.* and kernel IPC sysctls (%s) can be set in a container", k, strings.Join(ipcSysctls, ", "))
		}
		if strings.ContainsAny(k, "/ ") || strings.Contains(k, "..") {
			return c.errf("sysctls", "invalid name %q", k)
		}
		out[k] = v
	}
	// Docker lets unprivileged processes in a container with its own
	// network namespace bind low ports and ping (not when it joins one
	// another container owns).
	if !c.hostNet && !c.sharedNet {
		if _, ok := out["net.ipv4.ip_unprivileged_port_start"]; !ok {
			out["net.ipv4.ip_unprivileged_port_start"] = "0"
		}
		if _, ok := out["net.ipv4.ping_group_range"]; !ok {
			out["net.ipv4.ping_group_range"] = "0 2147483647"
		}
	}
	if len(out) > 0 {
		c.s.Linux.Sysctl = out
	}
	return nil
}

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }

func (c *conv) resources() error {
	r := c.svc.Resources
	res := c.s.Linux.Resources

	// CPU.
	var cpu specs.LinuxCPU
	setCPU := false
	if r.NanoCPUs != 0 {
		if r.CPUQuota != 0 || r.CPUPeriod != 0 {
			return c.errf("cpus", "cannot be combined with cpu_quota/cpu_period")
		}
		if r.NanoCPUs < 0 {
			return c.errf("cpus", "%v is negative", float64(r.NanoCPUs)/1e9)
		}
		if n := numCPU(); r.NanoCPUs > int64(n)*1e9 {
			return c.errf("cpus", "%.2f is more than the %d CPUs available", float64(r.NanoCPUs)/1e9, n)
		}
		quota := r.NanoCPUs * defaultPeriod / 1e9
		if quota < 1000 {
			return c.errf("cpus", "%.3f is below the minimum of 0.01", float64(r.NanoCPUs)/1e9)
		}
		cpu.Period, cpu.Quota = u64(defaultPeriod), i64(quota)
		setCPU = true
	}
	if r.CPUPeriod != 0 {
		if r.CPUPeriod < 1000 || r.CPUPeriod > 1000000 {
			return c.errf("cpu_period", "%d µs is outside 1000-1000000", r.CPUPeriod)
		}
		cpu.Period = u64(uint64(r.CPUPeriod))
		setCPU = true
	}
	if r.CPUQuota != 0 {
		if r.CPUQuota > 0 && r.CPUQuota < 1000 {
			return c.errf("cpu_quota", "%d µs is below the minimum of 1000", r.CPUQuota)
		}
		cpu.Quota = i64(r.CPUQuota)
		setCPU = true
	}
	if r.CPUShares != 0 {
		if r.CPUShares < 0 {
			return c.errf("cpu_shares", "%d is negative", r.CPUShares)
		}
		cpu.Shares = u64(uint64(r.CPUShares))
		setCPU = true
	}
	if r.CpusetCPUs != "" {
		if err := validCPUList(r.CpusetCPUs); err != nil {
			return c.errf("cpuset", "%v", err)
		}
		cpu.Cpus = r.CpusetCPUs
		setCPU = true
	}
	if setCPU {
		res.CPU = &cpu
	}

	// Memory, with Docker's rules.
	var mem specs.LinuxMemory
	setMem := false
	if r.MemoryLimit < 0 {
		return c.errf("mem_limit", "%d is negative", r.MemoryLimit)
	}
	if r.MemoryLimit > 0 {
		if r.MemoryLimit < minMemory {
			return c.errf("mem_limit", "%d bytes is below the minimum of 6MB", r.MemoryLimit)
		}
		mem.Limit = i64(r.MemoryLimit)
		setMem = true
	}
	switch {
	case r.MemorySwap == -1:
		if r.MemoryLimit > 0 {
			mem.Swap = i64(-1)
		}
	case r.MemorySwap < -1:
		return c.errf("memswap_limit", "%d is invalid (want -1 for unlimited, or a size)", r.MemorySwap)
	case r.MemorySwap > 0:
		if r.MemoryLimit == 0 {
			return c.errf("memswap_limit", "needs mem_limit too")
		}
		if r.MemorySwap < r.MemoryLimit {
			return c.errf("memswap_limit", "%d is below mem_limit %d (memswap_limit is memory plus swap)", r.MemorySwap, r.MemoryLimit)
		}
		mem.Swap = i64(r.MemorySwap)
	case r.MemoryLimit > 0:
		// Docker: swap defaults to as much again as the memory limit.
		mem.Swap = i64(2 * r.MemoryLimit)
	}
	if r.MemoryReservation < 0 {
		return c.errf("mem_reservation", "%d is negative", r.MemoryReservation)
	}
	if r.MemoryReservation > 0 {
		if r.MemoryLimit > 0 && r.MemoryReservation > r.MemoryLimit {
			return c.errf("mem_reservation", "%d is above mem_limit %d", r.MemoryReservation, r.MemoryLimit)
		}
		if r.MemoryReservation < minMemory {
			return c.errf("mem_reservation", "%d bytes is below the minimum of 6MB", r.MemoryReservation)
		}
		mem.Reservation = i64(r.MemoryReservation)
		setMem = true
	}
	if s := r.MemSwappiness; s != nil && *s != -1 {
		if *s < 0 || *s > 100 {
			return c.errf("mem_swappiness", "%d is outside 0-100", *s)
		}
		mem.Swappiness = u64(uint64(*s))
		setMem = true
	}
	if r.OomKillDisable {
		t := true
		mem.DisableOOMKiller = &t
		setMem = true
		if r.MemoryLimit == 0 {
			c.warnf("oom_kill_disable without mem_limit: an out-of-memory container can exhaust the host")
		}
	}
	if setMem {
		res.Memory = &mem
	}

	// Pids.
	switch {
	case r.PidsLimit > 0:
		res.Pids = &specs.LinuxPids{Limit: i64(r.PidsLimit)}
	case r.PidsLimit == -1:
		res.Pids = &specs.LinuxPids{Limit: i64(-1)}
	case r.PidsLimit < -1:
		return c.errf("pids_limit", "%d is invalid (want -1 for unlimited, or a positive number)", r.PidsLimit)
	}

	if r.OomScoreAdj < -1000 || r.OomScoreAdj > 1000 {
		return c.errf("oom_score_adj", "%d is outside -1000..1000", r.OomScoreAdj)
	}
	adj := r.OomScoreAdj
	c.s.Process.OOMScoreAdj = &adj
	return nil
}

// validCPUList checks a cpuset list like "0-3,5,7-8".
func validCPUList(s string) error {
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return fmt.Errorf("invalid CPU list %q", s)
		}
		if isRange {
			b, err := strconv.ParseUint(hi, 10, 16)
			if err != nil || b < a {
				return fmt.Errorf("invalid CPU list %q", s)
			}
		}
	}
	return nil
}
