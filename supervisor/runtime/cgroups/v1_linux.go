package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// v1Controllers are the v1 controllers berth puts a container in. Named
// hierarchies (name=systemd) and controllers berth does not configure
// (net_cls, perf_event, hugetlb, ...) are left alone.
var v1Controllers = []string{"blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids"}

// v1Manager drives a container's cgroup on a v1 (or hybrid) host: one
// directory per mounted hierarchy; controllers mounted together share it.
type v1Manager struct {
	path string
	// dirs maps each available controller to the container's directory;
	// bases maps it to the directory of its hierarchy root as mounted.
	dirs  map[string]string
	bases map[string]string

	mu      sync.Mutex      // guards created
	created map[string]bool // directories this Manager's Create made
}

func newV1(l *layout, path string) (*v1Manager, error) {
	m := &v1Manager{path: path, dirs: map[string]string{}, bases: map[string]string{}, created: map[string]bool{}}
	for _, c := range v1Controllers {
		h, ok := l.V1[c]
		if !ok {
			continue
		}
		dir, err := h.dir(path)
		if err != nil {
			return nil, err
		}
		base, _ := h.dir(h.Root)
		m.dirs[c] = dir
		m.bases[c] = base
	}
	if len(m.dirs) == 0 {
		return nil, fmt.Errorf("cgroup v1: none of the controllers %v is mounted", v1Controllers)
	}
	return m, nil
}

// uniqueDirs returns each hierarchy directory once (cpu and cpuacct are
// often one mount), with its base, sorted.
func (m *v1Manager) uniqueDirs() (dirs []string, base map[string]string) {
	base = map[string]string{}
	for c, d := range m.dirs {
		if _, ok := base[d]; !ok {
			dirs = append(dirs, d)
			base[d] = m.bases[c]
		}
	}
	sort.Strings(dirs)
	return dirs, base
}

func (m *v1Manager) Paths() map[string]string {
	out := make(map[string]string, len(m.dirs))
	for c, d := range m.dirs {
		out[c] = d
	}
	return out
}

func (m *v1Manager) Create(r *specs.LinuxResources) (retErr error) {
	if err := checkV1Resources(r); err != nil {
		return err
	}
	dirs, bases := m.uniqueDirs()
	var madeNow []string
	defer func() {
		if retErr != nil {
			m.rollback(madeNow)
		}
	}()
	for _, d := range dirs {
		rel, err := filepath.Rel(bases[d], d)
		if err != nil {
			return err
		}
		var visit func(string) error
		if d == m.dirs["cpuset"] {
			// A new cpuset cgroup starts with empty cpus and mems and
			// refuses tasks until they are filled: copy the parent's.
			visit = copyCpuset
		}
		err = withTreeLock(bases[d], func() error {
			created, err := mkdirChain(bases[d], rel, visit)
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
	}
	return m.Set(r)
}

// copyCpuset fills a cpuset cgroup berth just made with its parent's cpus
// and mems, and sets its cgroup.clone_children, so that the kernel fills
// the cgroups made below it (which inherit the flag) by itself: each
// container's cpuset then costs two reads instead of six file operations.
func copyCpuset(dir string) error {
	parent := filepath.Dir(dir)
	filled := true
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		cur, err := readFile(dir, f)
		if err != nil {
			return err
		}
		if cur != "" {
			continue
		}
		filled = false
		v, err := readFile(parent, f)
		if err != nil {
			return err
		}
		if err := writeFile(dir, f, v); err != nil {
			return err
		}
	}
	if filled {
		return nil // the kernel copied them: the flag is set already
	}
	return writeFile(dir, "cgroup.clone_children", "1")
}

func (m *v1Manager) Apply(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("cgroup: bad pid %d", pid)
	}
	dirs, _ := m.uniqueDirs()
	for _, d := range dirs {
		if err := writeFile(d, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

// checkV1Resources rejects what v1 cannot express before anything is
// made.
func checkV1Resources(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if len(r.Unified) > 0 {
		return errors.New("cgroup: linux.resources.unified needs cgroup v2, this host uses v1")
	}
	return validateDevices(r.Devices)
}

func (m *v1Manager) need(c string) (string, error) {
	d, ok := m.dirs[c]
	if !ok {
		return "", fmt.Errorf("cgroup v1: controller %q is not mounted", c)
	}
	return d, nil
}

func (m *v1Manager) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := checkV1Resources(r); err != nil {
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
		d, err := m.need("pids")
		if err != nil {
			return err
		}
		v := "max"
		if *r.Pids.Limit > 0 {
			v = strconv.FormatInt(*r.Pids.Limit, 10)
		}
		if err := writeFile(d, "pids.max", v); err != nil {
			return err
		}
	}
	if b := r.BlockIO; b != nil {
		if err := m.setBlockIO(b); err != nil {
			return err
		}
	}
	if len(r.Devices) > 0 {
		d, err := m.need("devices")
		if err != nil {
			return err
		}
		// One rule per write(2), as the kernel parses them, but one open
		// per run of rules for the same file: a container's default
		// rules are a deny-all and a dozen allows.
		w := &ruleWriter{dir: d}
		for _, rule := range r.Devices {
			file := "devices.deny"
			if rule.Allow {
				file = "devices.allow"
			}
			if err := w.write(file, deviceRuleString(rule)); err != nil {
				w.close()
				return err
			}
		}
		if err := w.close(); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1Manager) setCPU(c *specs.LinuxCPU) error {
	if c.Shares != nil && *c.Shares != 0 || c.Period != nil && *c.Period != 0 || c.Quota != nil && *c.Quota != 0 ||
		c.RealtimePeriod != nil || c.RealtimeRuntime != nil {
		d, err := m.need("cpu")
		if err != nil {
			return err
		}
		if c.Shares != nil && *c.Shares != 0 {
			if err := writeFile(d, "cpu.shares", strconv.FormatUint(*c.Shares, 10)); err != nil {
				return err
			}
		}
		if c.Period != nil && *c.Period != 0 {
			if err := writeFile(d, "cpu.cfs_period_us", strconv.FormatUint(*c.Period, 10)); err != nil {
				return err
			}
		}
		if c.Quota != nil && *c.Quota != 0 {
			q := *c.Quota
			if q < 0 {
				q = -1
			}
			if err := writeFile(d, "cpu.cfs_quota_us", strconv.FormatInt(q, 10)); err != nil {
				return err
			}
		}
		if c.RealtimePeriod != nil {
			if err := writeFile(d, "cpu.rt_period_us", strconv.FormatUint(*c.RealtimePeriod, 10)); err != nil {
				return err
			}
		}
		if c.RealtimeRuntime != nil {
			if err := writeFile(d, "cpu.rt_runtime_us", strconv.FormatInt(*c.RealtimeRuntime, 10)); err != nil {
				return err
			}
		}
	}
	if c.Cpus != "" || c.Mems != "" {
		d, err := m.need("cpuset")
		if err != nil {
			return err
		}
		if c.Cpus != "" {
			if err := writeFile(d, "cpuset.cpus", c.Cpus); err != nil {
				return err
			}
		}
		if c.Mems != "" {
			if err := writeFile(d, "cpuset.mems", c.Mems); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v1Manager) setMemory(mem *specs.LinuxMemory) error {
	d, err := m.need("memory")
	if err != nil {
		return err
	}
	limit := int64(0)
	if mem.Limit != nil {
		limit = *mem.Limit
	}
	swap := int64(0)
	if mem.Swap != nil {
		swap = *mem.Swap
	}
	if swap > 0 && limit > 0 && swap < limit {
		return fmt.Errorf("cgroup: memory+swap limit %d is below the memory limit %d", swap, limit)
	}
	hasMemsw := exists(filepath.Join(d, "memory.memsw.limit_in_bytes"))
	if swap != 0 && !hasMemsw && swap != limit && swap != -1 {
		return errors.New("cgroup: swap limit set but the kernel has no swap accounting (memory.memsw.limit_in_bytes missing)")
	}
	// memory.limit_in_bytes may never exceed memory.memsw.limit_in_bytes:
	// when raising both, memsw goes first; when lowering, the limit.
	writeLimit := func() error {
		if limit == 0 {
			return nil
		}
		return writeFile(d, "memory.limit_in_bytes", strconv.FormatInt(limit, 10))
	}
	writeSwap := func() error {
		if swap == 0 || !hasMemsw {
			return nil
		}
		return writeFile(d, "memory.memsw.limit_in_bytes", strconv.FormatInt(swap, 10))
	}
	if err := writeLimit(); err != nil {
		if swap == 0 || !errors.Is(err, unix.EINVAL) {
			return err
		}
		if err := writeSwap(); err != nil {
			return err
		}
		if err := writeLimit(); err != nil {
			return err
		}
	} else if err := writeSwap(); err != nil {
		return err
	}
	if mem.Reservation != nil && *mem.Reservation != 0 {
		if err := writeFile(d, "memory.soft_limit_in_bytes", strconv.FormatInt(*mem.Reservation, 10)); err != nil {
			return err
		}
	}
	if mem.Swappiness != nil && *mem.Swappiness <= 100 {
		if err := writeFile(d, "memory.swappiness", strconv.FormatUint(*mem.Swappiness, 10)); err != nil {
			return err
		}
	}
	if mem.DisableOOMKiller != nil && *mem.DisableOOMKiller {
		if err := writeFile(d, "memory.oom_control", "1"); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1Manager) setBlockIO(b *specs.LinuxBlockIO) error {
	files := []struct {
		name string
		devs []specs.LinuxThrottleDevice
	}{
		{"blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
		{"blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
		{"blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
		{"blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
	}
	for _, f := range files {
		if len(f.devs) == 0 {
			continue
		}
		d, err := m.need("blkio")
		if err != nil {
			return err
		}
		for _, dev := range f.devs {
			if err := writeFile(d, f.name, fmt.Sprintf("%d:%d %d", dev.Major, dev.Minor, dev.Rate)); err != nil {
				return err
			}
		}
	}
	if b.Weight != nil && *b.Weight != 0 {
		d, err := m.need("blkio")
		if err != nil {
			return err
		}
		name := "blkio.weight"
		if !exists(filepath.Join(d, name)) {
			name = "blkio.bfq.weight"
		}
		if err := writeFile(d, name, strconv.FormatUint(uint64(*b.Weight), 10)); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1Manager) Stats() (*Stats, error) {
	s := &Stats{}
	if d, ok := m.dirs["cpuacct"]; ok {
		v, err := readUint(d, "cpuacct.usage")
		if err != nil {
			return nil, err
		}
		s.CPUUsageNanos = v
		kv, err := readKeyed(d, "cpuacct.stat")
		if err != nil {
			return nil, err
		}
		// cpuacct.stat counts USER_HZ ticks, 100 per second on Linux.
		s.CPUUserNanos = kv["user"] * (1e9 / 100)
		s.CPUSystemNanos = kv["system"] * (1e9 / 100)
	}
	if d, ok := m.dirs["cpu"]; ok {
		kv, err := readKeyed(d, "cpu.stat")
		if err != nil {
			return nil, err
		}
		s.CPUThrottled = kv["nr_throttled"]
	}
	if d, ok := m.dirs["memory"]; ok {
		var err error
		if s.MemoryUsage, err = readUint(d, "memory.usage_in_bytes"); err != nil {
			return nil, err
		}
		if s.MemoryMaxUsage, err = readUint(d, "memory.max_usage_in_bytes"); err != nil {
			return nil, err
		}
		limit, err := readUint(d, "memory.limit_in_bytes")
		if err != nil {
			return nil, err
		}
		s.MemoryLimit = capToHostMemory(limit)
		kv, err := readKeyed(d, "memory.stat")
		if err != nil {
			return nil, err
		}
		s.MemoryCache = kv["total_cache"]
		if _, ok := kv["total_cache"]; !ok {
			s.MemoryCache = kv["cache"]
		}
		oc, err := readKeyed(d, "memory.oom_control")
		if err != nil {
			return nil, err
		}
		s.OOMKills = oc["oom_kill"]
	}
	if d, ok := m.dirs["pids"]; ok {
		var err error
		if s.Pids, err = readUint(d, "pids.current"); err != nil {
			return nil, err
		}
		if lim, err := readUint(d, "pids.max"); err != nil {
			return nil, err
		} else if lim != maxUint {
			s.PidsLimit = lim
		}
	}
	if d, ok := m.dirs["blkio"]; ok {
		r, w, err := readBlkio(d)
		if err != nil {
			return nil, err
		}
		s.IOReadBytes, s.IOWriteBytes = r, w
	}
	return s, nil
}

// readBlkio sums Read and Write over devices. The throttle file counts
// all I/O whatever the scheduler; the recursive CFQ/BFQ file is the
// fallback.
func readBlkio(dir string) (read, write uint64, err error) {
	for _, name := range []string{"blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_service_bytes", "blkio.io_service_bytes_recursive"} {
		s, rerr := readFile(dir, name)
		if rerr != nil {
			if errors.Is(rerr, os.ErrNotExist) {
				continue
			}
			return 0, 0, rerr
		}
		for _, line := range strings.Split(s, "\n") {
			f := strings.Fields(line)
			if len(f) != 3 {
				continue
			}
			n, perr := strconv.ParseUint(f[2], 10, 64)
			if perr != nil {
				continue
			}
			switch f[1] {
			case "Read":
				read += n
			case "Write":
				write += n
			}
		}
		return read, write, nil
	}
	return 0, 0, nil
}

func (m *v1Manager) OOMKilled() (bool, error) {
	d, err := m.need("memory")
	if err != nil {
		return false, err
	}
	kv, err := readKeyed(d, "memory.oom_control")
	if err != nil {
		return false, err
	}
	return kv["oom_kill"] > 0, nil
}

// Procs lists the pids in any of the container's hierarchies (after a
// partial Apply a process may sit in some only).
func (m *v1Manager) Procs() ([]int, error) { return m.collectPids(readPids) }

// subtreeProcs lists the processes below the container's directories in
// every hierarchy, child cgroups included.
func (m *v1Manager) subtreeProcs() ([]int, error) { return m.collectPids(subtreeProcs) }

// collectPids merges what read finds in each of the container's
// directories; a directory that is gone is skipped, all gone is an error.
func (m *v1Manager) collectPids(read func(dir string) ([]int, error)) ([]int, error) {
	dirs, _ := m.uniqueDirs()
	var all []int
	found := false
	for _, d := range dirs {
		pids, err := read(d)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		found = true
		all = append(all, pids...)
	}
	if !found {
		return nil, fmt.Errorf("cgroup %s: %w", m.path, os.ErrNotExist)
	}
	return sortedUnique(all), nil
}

func (m *v1Manager) Freeze() error { return m.setFreezer("FROZEN") }
func (m *v1Manager) Thaw() error   { return m.setFreezer("THAWED") }

// Frozen reports whether the freezer holds the cgroup frozen.
func (m *v1Manager) Frozen() (bool, error) {
	d, err := m.need("freezer")
	if err != nil {
		return false, err
	}
	s, err := readFile(d, "freezer.state")
	return s == "FROZEN", err
}

func (m *v1Manager) setFreezer(state string) error {
	d, err := m.need("freezer")
	if err != nil {
		return err
	}
	// Writing FROZEN starts freezing; freezer.state reads FREEZING until
	// every task stopped. Re-writing the state nudges tasks that were
	// busy in the kernel. A freeze can also stall for good on a task
	// caught half-way (forking, in vfork, being added): every so often
	// thaw, let it finish, and freeze again.
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; ; i++ {
		if state == "FROZEN" && i%200 == 199 {
			if err := writeFile(d, "freezer.state", "THAWED"); err != nil {
				return err
			}
			time.Sleep(10 * time.Millisecond)
		}
		if i%10 == 0 || (state == "FROZEN" && i%200 == 199) {
			if err := writeFile(d, "freezer.state", state); err != nil {
				return err
			}
		}
		cur, err := readFile(d, "freezer.state")
		if err != nil {
			return err
		}
		if cur == state {
			return nil
		}
		if time.Now().After(deadline) {
			if state == "FROZEN" {
				_ = writeFile(d, "freezer.state", "THAWED")
			}
			return fmt.Errorf("cgroup: %s stuck in %s", d, cur)
		}
		time.Sleep(time.Millisecond)
	}
}

func (m *v1Manager) Destroy() error {
	var freeze, thaw func() error
	if d, ok := m.dirs["freezer"]; ok && exists(d) {
		freeze, thaw = m.Freeze, m.Thaw
	}
	var result *multierror.Error
	if err := killAll(m.subtreeProcs, freeze, thaw); err != nil {
		result = multierror.Append(result, err)
	}
	dirs, bases := m.uniqueDirs()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range dirs {
		if !exists(d) && !exists(filepath.Dir(d)) {
			continue
		}
		err := withTreeLock(bases[d], func() error {
			if err := removeTree(d); err != nil {
				return err
			}
			return removeParents(bases[d], d, m.created)
		})
		if err != nil {
			result = multierror.Append(result, err)
		}
	}
	m.created = map[string]bool{}
	return result.ErrorOrNil()
}

func (m *v1Manager) rollback(made []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rollbackDirs(made)
	for _, d := range made {
		delete(m.created, d)
	}
}
