package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v2Controllers are the controllers berth enables for its cgroups on the
// unified hierarchy, when the kernel offers them.
var v2Controllers = []string{"cpu", "cpuset", "io", "memory", "pids"}

// v2Manager drives a container's cgroup on a pure cgroup v2 host.
type v2Manager struct {
	path string
	base string // the cgroup2 mountpoint (root of the visible hierarchy)
	dir  string // the container's directory

	mu      sync.Mutex
	created map[string]bool // guarded by mu; directories Create made
}

func newV2(l *layout, path string) (*v2Manager, error) {
	dir, err := l.Unified.dir(path)
	if err != nil {
		return nil, err
	}
	base, _ := l.Unified.dir(l.Unified.Root)
	return &v2Manager{path: path, base: base, dir: dir, created: map[string]bool{}}, nil
}

func (m *v2Manager) Paths() map[string]string { return map[string]string{"": m.dir} }

// Create makes the directories and enables the controllers along the
// way. Controllers are switched on in cgroup.subtree_control only of the
// hierarchy root and of directories berth created: a pre-existing
// intermediate cgroup belongs to someone else (systemd, another tool)
// and is never changed; if it lacks a controller, Set fails naming it.
func (m *v2Manager) Create(r *specs.LinuxResources) (retErr error) {
	if err := validateDevices(deviceRules(r)); err != nil {
		return err
	}
	rel, err := filepath.Rel(m.base, m.dir)
	if err != nil {
		return err
	}
	var madeNow []string
	defer func() {
		if retErr != nil {
			m.rollback(madeNow)
		}
	}()
	err = withTreeLock(m.base, func() error {
		// Controllers must be enabled in a parent before its child can
		// be made with them, so enable as we go down: first the root.
		if err := enableControllers(m.base); err != nil {
			return err
		}
		created, err := mkdirChain(m.base, rel, func(dir string) error {
			if dir == m.dir {
				return nil
			}
			return enableControllers(dir)
		})
		m.mu.Lock()
		for _, c := range created {
			m.created[c] = true
		}
		madeNow = append(madeNow, created...)
		m.mu.Unlock()
		return err
	})
	if err != nil {
		return err
	}
	// Parents berth made earlier (for another container) were set up
	// under the same lock and already have their controllers.
	return m.Set(r)
}

// enableControllers writes "+c" to dir/cgroup.subtree_control for each
// controller berth uses that dir offers and has not enabled yet.
func enableControllers(dir string) error {
	avail, err := readFile(dir, "cgroup.controllers")
	if err != nil {
		return err
	}
	on, err := readFile(dir, "cgroup.subtree_control")
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, c := range strings.Fields(on) {
		have[c] = true
	}
	offered := map[string]bool{}
	for _, c := range strings.Fields(avail) {
		offered[c] = true
	}
	for _, c := range v2Controllers {
		if !offered[c] || have[c] {
			continue
		}
		if err := writeFile(dir, "cgroup.subtree_control", "+"+c); err != nil {
			return err
		}
	}
	return nil
}

func deviceRules(r *specs.LinuxResources) []specs.LinuxDeviceCgroup {
	if r == nil {
		return nil
	}
	return r.Devices
}

func (m *v2Manager) Apply(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("cgroup: bad pid %d", pid)
	}
	return writeFile(m.dir, "cgroup.procs", strconv.Itoa(pid))
}

// OpenDir opens the cgroup's directory for CLONE_INTO_CGROUP (see
// CloneTarget).
func (m *v2Manager) OpenDir() (*os.File, error) {
	return os.OpenFile(m.dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
}

// write writes a controller file and turns a missing file into an error
// that says which controller is missing where.
func (m *v2Manager) write(name, val string) error {
	err := writeFile(m.dir, name, val)
	if err != nil && errors.Is(err, os.ErrNotExist) && exists(m.dir) {
		ctrl, _, _ := strings.Cut(name, ".")
		return fmt.Errorf("cgroup: %s: controller %q is not enabled for %s (check cgroup.subtree_control of its parents): %w", name, ctrl, m.dir, err)
	}
	return err
}

func (m *v2Manager) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := validateDevices(r.Devices); err != nil {
		return err
	}
	if c := r.CPU; c != nil {
		if err := m.setCPU(c); err != nil {
			return err
		}
	}
	if mem := r.Memory; mem != nil {
		if err := m.setMemory(mem); err != nil {
			return err
		}
	}
	if r.Pids != nil && r.Pids.Limit != nil {
		v := "max"
		if *r.Pids.Limit > 0 {
			v = strconv.FormatInt(*r.Pids.Limit, 10)
		}
		if err := m.write("pids.max", v); err != nil {
			return err
		}
	}
	if b := r.BlockIO; b != nil {
		if err := m.setIO(b); err != nil {
			return err
		}
	}
	if len(r.Devices) > 0 {
		if err := setDeviceFilter(m.dir, r.Devices); err != nil {
			return err
		}
	}
	for k, v := range r.Unified {
		if k == "" || strings.ContainsAny(k, "/") || strings.HasPrefix(k, ".") {
			return fmt.Errorf("cgroup: linux.resources.unified: bad file name %q", k)
		}
		if err := m.write(k, v); err != nil {
			return err
		}
	}
	return nil
}

func (m *v2Manager) setCPU(c *specs.LinuxCPU) error {
	if c.Shares != nil && *c.Shares != 0 {
		if err := m.write("cpu.weight", strconv.FormatUint(sharesToWeight(*c.Shares), 10)); err != nil {
			return err
		}
	}
	if c.Quota != nil && *c.Quota != 0 || c.Period != nil && *c.Period != 0 {
		// cpu.max is "QUOTA PERIOD"; keep the half that is not changed.
		cur, err := readFile(m.dir, "cpu.max")
		if err != nil {
			return err
		}
		quota, period, _ := strings.Cut(cur, " ")
		if c.Quota != nil && *c.Quota != 0 {
			quota = "max"
			if *c.Quota > 0 {
				quota = strconv.FormatInt(*c.Quota, 10)
			}
		}
		if c.Period != nil && *c.Period != 0 {
			period = strconv.FormatUint(*c.Period, 10)
		}
		if err := m.write("cpu.max", quota+" "+period); err != nil {
			return err
		}
	}
	if c.Burst != nil {
		if err := m.write("cpu.max.burst", strconv.FormatUint(*c.Burst, 10)); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		if err := m.write("cpu.idle", strconv.FormatInt(*c.Idle, 10)); err != nil {
			return err
		}
	}
	if c.Cpus != "" {
		if err := m.write("cpuset.cpus", c.Cpus); err != nil {
			return err
		}
	}
	if c.Mems != "" {
		if err := m.write("cpuset.mems", c.Mems); err != nil {
			return err
		}
	}
	return nil
}

// swapToV2 turns the OCI (v1) memory+swap total into v2's swap-only
// memory.swap.max value; ok is false when nothing is to be written.
func swapToV2(limit, swap int64) (v string, ok bool, err error) {
	switch {
	case swap == 0:
		return "", false, nil
	case swap == -1:
		return "max", true, nil
	case swap < 0:
		return "", false, fmt.Errorf("cgroup: bad memory+swap limit %d", swap)
	case limit <= 0:
		return "", false, errors.New("cgroup: a memory+swap limit needs a memory limit on cgroup v2")
	case swap < limit:
		return "", false, fmt.Errorf("cgroup: memory+swap limit %d is below the memory limit %d", swap, limit)
	}
	return strconv.FormatInt(swap-limit, 10), true, nil
}

func (m *v2Manager) setMemory(mem *specs.LinuxMemory) error {
	var limit, swap int64
	if mem.Limit != nil {
		limit = *mem.Limit
	}
	if mem.Swap != nil {
		swap = *mem.Swap
	}
	swapVal, writeSwap, err := swapToV2(limit, swap)
	if err != nil {
		return err
	}
	if writeSwap && !exists(filepath.Join(m.dir, "memory.swap.max")) {
		// Without swap accounting no swap can be limited; a swap limit
		// of zero or "max" asks for nothing the kernel could do anyway.
		if swapVal != "0" && swapVal != "max" {
			return errors.New("cgroup: swap limit set but the kernel has no swap accounting (memory.swap.max missing)")
		}
		writeSwap = false
	}
	// Swap first: lowering memory.max below usage triggers reclaim,
	// which should already see the final swap allowance.
	if writeSwap {
		if err := m.write("memory.swap.max", swapVal); err != nil {
			return err
		}
	}
	if limit != 0 {
		v := "max"
		if limit > 0 {
			v = strconv.FormatInt(limit, 10)
		}
		if err := m.write("memory.max", v); err != nil {
			return err
		}
	}
	if mem.Reservation != nil && *mem.Reservation != 0 {
		v := "max"
		if *mem.Reservation > 0 {
			v = strconv.FormatInt(*mem.Reservation, 10)
		}
		if err := m.write("memory.low", v); err != nil {
			return err
		}
	}
	// memory.oom_control (oom_kill_disable) and memory.swappiness have no
	// v2 counterpart: the v2 OOM killer cannot be switched off per cgroup.
	// Both are ignored here, as runc does.
	return nil
}

func (m *v2Manager) setIO(b *specs.LinuxBlockIO) error {
	type lim struct {
		key  string
		devs []specs.LinuxThrottleDevice
	}
	for _, l := range []lim{
		{"rbps", b.ThrottleReadBpsDevice}, {"wbps", b.ThrottleWriteBpsDevice},
		{"riops", b.ThrottleReadIOPSDevice}, {"wiops", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range l.devs {
			if err := m.write("io.max", fmt.Sprintf("%d:%d %s=%d", d.Major, d.Minor, l.key, d.Rate)); err != nil {
				return err
			}
		}
	}
	if b.Weight != nil && *b.Weight != 0 {
		// blkio weight 10..1000 maps onto io.weight 1..10000 as in runc.
		w := 1 + (uint64(*b.Weight)-10)*9999/990
		name := "io.bfq.weight"
		if !exists(filepath.Join(m.dir, name)) {
			name = "io.weight"
		}
		if err := m.write(name, strconv.FormatUint(w, 10)); err != nil {
			return err
		}
	}
	return nil
}

func (m *v2Manager) Stats() (*Stats, error) {
	s := &Stats{}
	kv, err := readKeyed(m.dir, "cpu.stat")
	if err != nil {
		return nil, err
	}
	s.CPUUsageNanos = kv["usage_usec"] * 1000
	s.CPUUserNanos = kv["user_usec"] * 1000
	s.CPUSystemNanos = kv["system_usec"] * 1000
	s.CPUThrottled = kv["nr_throttled"]
	if exists(filepath.Join(m.dir, "memory.current")) {
		if s.MemoryUsage, err = readUint(m.dir, "memory.current"); err != nil {
			return nil, err
		}
		limit, err := readUint(m.dir, "memory.max")
		if err != nil {
			return nil, err
		}
		s.MemoryLimit = capToHostMemory(limit)
		if exists(filepath.Join(m.dir, "memory.peak")) { // Linux 5.19+
			if s.MemoryMaxUsage, err = readUint(m.dir, "memory.peak"); err != nil {
				return nil, err
			}
		}
		ms, err := readKeyed(m.dir, "memory.stat")
		if err != nil {
			return nil, err
		}
		s.MemoryCache = ms["file"]
		ev, err := readKeyed(m.dir, "memory.events")
		if err != nil {
			return nil, err
		}
		s.OOMKills = ev["oom_kill"]
	}
	if exists(filepath.Join(m.dir, "pids.current")) {
		if s.Pids, err = readUint(m.dir, "pids.current"); err != nil {
			return nil, err
		}
		if lim, err := readUint(m.dir, "pids.max"); err != nil {
			return nil, err
		} else if lim != maxUint {
			s.PidsLimit = lim
		}
	}
	if exists(filepath.Join(m.dir, "io.stat")) {
		st, err := readFile(m.dir, "io.stat")
		if err != nil {
			return nil, err
		}
		// "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" per device.
		for _, line := range strings.Split(st, "\n") {
			fields := strings.Fields(line)
			if len(fields) < 2 {
				continue
			}
			for _, f := range fields[1:] {
				k, v, ok := strings.Cut(f, "=")
				if !ok {
					continue
				}
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					continue
				}
				switch k {
				case "rbytes":
					s.IOReadBytes += n
				case "wbytes":
					s.IOWriteBytes += n
				}
			}
		}
	}
	return s, nil
}

func (m *v2Manager) OOMKilled() (bool, error) {
	kv, err := readKeyed(m.dir, "memory.events")
	if err != nil {
		return false, err
	}
	return kv["oom_kill"] > 0, nil
}

func (m *v2Manager) Procs() ([]int, error) {
	pids, err := readPids(m.dir)
	if err != nil {
		return nil, err
	}
	return sortedUnique(pids), nil
}

func (m *v2Manager) Freeze() error { return m.setFrozen(true) }
func (m *v2Manager) Thaw() error   { return m.setFrozen(false) }

// Frozen reports whether the cgroup is frozen (cgroup.events frozen 1).
func (m *v2Manager) Frozen() (bool, error) {
	ev, err := readKeyed(m.dir, "cgroup.events")
	if err != nil {
		return false, err
	}
	return ev["frozen"] == 1, nil
}

func (m *v2Manager) setFrozen(frozen bool) error {
	val := "0"
	if frozen {
		val = "1"
	}
	if err := writeFile(m.dir, "cgroup.freeze", val); err != nil {
		return err
	}
	// Freezing is asynchronous; cgroup.events reports when it is done.
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := m.Frozen()
		if err != nil {
			return err
		}
		if got == frozen {
			return nil
		}
		if time.Now().After(deadline) {
			if frozen {
				_ = writeFile(m.dir, "cgroup.freeze", "0")
			}
			return fmt.Errorf("cgroup: %s did not reach frozen=%s", m.dir, val)
		}
		time.Sleep(time.Millisecond)
	}
}

func (m *v2Manager) Destroy() error {
	var err error
	if exists(m.dir) {
		if exists(filepath.Join(m.dir, "cgroup.kill")) {
			// cgroup.kill (Linux 5.14+) SIGKILLs the whole subtree at once,
			// racing no fork.
			err = writeFile(m.dir, "cgroup.kill", "1")
			if err == nil {
				err = killAll(m.populatedProcs, nil, nil)
			}
		} else {
			err = killAll(m.populatedProcs, m.Freeze, m.Thaw)
		}
	}
	if err != nil {
		return err
	}
	if !exists(m.dir) && !exists(filepath.Dir(m.dir)) {
		return nil // nothing left, not even a parent: already destroyed
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return withTreeLock(m.base, func() error {
		if err := removeTree(m.dir); err != nil {
			return err
		}
		err := removeParents(m.base, m.dir, m.created)
		m.created = map[string]bool{}
		return err
	})
}

// populatedProcs lists the processes of the container's whole subtree
// (the container may have made child cgroups).
func (m *v2Manager) populatedProcs() ([]int, error) { return subtreeProcs(m.dir) }

func (m *v2Manager) rollback(made []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_ = withTreeLock(m.base, func() error { rollbackDirs(made); return nil })
	for _, d := range made {
		delete(m.created, d)
	}
}
