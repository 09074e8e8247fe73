package cgroups

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The tests in this file run on real cgroups, unchanged on a v1/hybrid
// host and on a pure v2 host (the qemu guest of .ci/v2guest): each one
// goes through the Manager and only looks at the kernel's own files to
// check what the Manager did.

func requirePrivileged(t testing.TB) {
	t.Helper()
	if os.Getenv("BERTH_PRIVILEGED") != "1" {
		if os.Getenv("CI") != "" {
			t.Fatal("privileged test: CI must set BERTH_PRIVILEGED=1")
		}
		t.Skip("privileged test: set BERTH_PRIVILEGED=1 and run as root")
	}
	if os.Geteuid() != 0 {
		t.Fatal("BERTH_PRIVILEGED=1 needs root")
	}
}

const busybox = "/bin/busybox"

func requireBusybox(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(busybox); err != nil {
		t.Fatalf("%s is needed (Debian package busybox-static): %v", busybox, err)
	}
}

// testPath returns a unique cgroup path /berth-test-<rand>/<leaf...>.
func testPath(t testing.TB, leaf ...string) (top, path string) {
	t.Helper()
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	top = fmt.Sprintf("/berth-test-%d-%s", os.Getpid(), hex.EncodeToString(b))
	return top, filepath.Join(append([]string{top}, leaf...)...)
}

// newTestManager creates a Manager for a fresh unique path and registers
// its Destroy plus a leak check over every hierarchy.
func newTestManager(t *testing.T, r *specs.LinuxResources, leaf ...string) (Manager, string) {
	t.Helper()
	requirePrivileged(t)
	top, path := testPath(t, append([]string{"c"}, leaf...)...)
	m, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Destroy(); err != nil {
			t.Errorf("Destroy: %v", err)
		}
		assertGone(t, top)
	})
	if err := m.Create(r); err != nil {
		t.Fatalf("Create: %v", err)
	}
	return m, path
}

// hierarchyDirs returns the directory of cgroup path p in every mounted
// cgroup hierarchy (v1 controllers, named ones and cgroup2 mounts).
func hierarchyDirs(t testing.TB, p string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var dirs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(qf) == 0 || (qf[0] != "cgroup" && qf[0] != "cgroup2") {
			continue
		}
		h := hierarchy{Root: pf[3], Mountpoint: pf[4]}
		if d, err := h.dir(p); err == nil {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// assertGone fails when p exists in any cgroup hierarchy.
func assertGone(t testing.TB, p string) {
	t.Helper()
	for _, d := range hierarchyDirs(t, p) {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup directory %s left behind", d)
		}
	}
}

func version(t testing.TB) Version {
	t.Helper()
	v, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// ctlDir returns the directory holding controller c's files.
func ctlDir(t testing.TB, m Manager, c string) string {
	t.Helper()
	p := m.Paths()
	if d, ok := p[""]; ok {
		return d
	}
	d, ok := p[c]
	if !ok {
		t.Fatalf("no %s hierarchy in %v", c, p)
	}
	return d
}

func readCg(t testing.TB, m Manager, c, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ctlDir(t, m, c), file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func i64(v int64) *int64    { return &v }
func u64(v uint64) *uint64  { return &v }
func boolp(v bool) *bool    { return &v }
func majmin(v int64) *int64 { return &v }

// child is a busybox shell held at a `read` until released, so that it
// can be moved into the cgroup before it does its work.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startChild starts `busybox sh -c 'read x; SCRIPT'` and moves it into m.
func startChild(t *testing.T, m Manager, script string) *child {
	t.Helper()
	requireBusybox(t)
	c := &child{out: &syncBuffer{}}
	c.cmd = exec.Command(busybox, "sh", "-c", "read x; "+script)
	c.cmd.Stdout = c.out
	c.cmd.Stderr = c.out
	c.cmd.Env = []string{"PATH=/nonexistent"} // force busybox applets via explicit calls
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		_ = c.stdin.Close()
		_ = c.cmd.Wait()
	})
	if err := m.Apply(c.cmd.Process.Pid); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return c
}

func (c *child) release(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
}

// wait waits for the child with a generous bound (the v2 guest is
// emulated) and returns its wait status.
func (c *child) wait(t *testing.T, limit time.Duration) syscall.WaitStatus {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	case <-time.After(limit):
		_ = c.cmd.Process.Kill()
		<-done
		t.Fatalf("child did not finish within %v; output: %s", limit, c.out.String())
	}
	return 0
}

func TestDetect(t *testing.T) {
	requirePrivileged(t)
	v := version(t)
	if v != V1 && v != V2 {
		t.Fatalf("Detect = %d", v)
	}
	t.Logf("cgroup version %d", v)
}

func TestResourcesReadBack(t *testing.T) {
	r := &specs.LinuxResources{
		CPU: &specs.LinuxCPU{
			Shares: u64(512),
			Quota:  i64(50000),
			Period: u64(100000),
			Cpus:   "0",
			Mems:   "0",
		},
		Memory: &specs.LinuxMemory{
			Limit:       i64(64 << 20),
			Swap:        i64(128 << 20),
			Reservation: i64(32 << 20),
		},
		Pids: &specs.LinuxPids{Limit: i64(42)},
	}
	m, _ := newTestManager(t, r)
	v := version(t)
	type file struct{ ctl, name, want string }
	var files []file
	if v == V1 {
		files = []file{
			{"cpu", "cpu.shares", "512"},
			{"cpu", "cpu.cfs_quota_us", "50000"},
			{"cpu", "cpu.cfs_period_us", "100000"},
			{"cpuset", "cpuset.cpus", "0"},
			{"cpuset", "cpuset.mems", "0"},
			{"memory", "memory.limit_in_bytes", strconv.Itoa(64 << 20)},
			{"memory", "memory.soft_limit_in_bytes", strconv.Itoa(32 << 20)},
			{"pids", "pids.max", "42"},
		}
		if _, err := os.Stat(filepath.Join(ctlDir(t, m, "memory"), "memory.memsw.limit_in_bytes")); err == nil {
			files = append(files, file{"memory", "memory.memsw.limit_in_bytes", strconv.Itoa(128 << 20)})
		}
	} else {
		files = []file{
			{"cpu", "cpu.weight", strconv.FormatUint(sharesToWeight(512), 10)},
			{"cpu", "cpu.max", "50000 100000"},
			{"cpuset", "cpuset.cpus", "0"},
			{"cpuset", "cpuset.mems", "0"},
			{"memory", "memory.max", strconv.Itoa(64 << 20)},
			{"memory", "memory.low", strconv.Itoa(32 << 20)},
			{"pids", "pids.max", "42"},
		}
		if _, err := os.Stat(filepath.Join(ctlDir(t, m, "memory"), "memory.swap.max")); err == nil {
			files = append(files, file{"memory", "memory.swap.max", strconv.Itoa(64 << 20)})
		}
	}
	for _, f := range files {
		if got := readCg(t, m, f.ctl, f.name); got != f.want {
			t.Errorf("%s = %q, want %q", f.name, got, f.want)
		}
	}

	// Set changes what it is given and leaves the rest.
	if err := m.Set(&specs.LinuxResources{
		CPU:    &specs.LinuxCPU{Quota: i64(-1)},
		Memory: &specs.LinuxMemory{Limit: i64(256 << 20), Swap: i64(512 << 20)},
		Pids:   &specs.LinuxPids{Limit: i64(0)},
	}); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if v == V1 {
		files = []file{
			{"cpu", "cpu.cfs_quota_us", "-1"},
			{"cpu", "cpu.cfs_period_us", "100000"},
			{"memory", "memory.limit_in_bytes", strconv.Itoa(256 << 20)},
			{"pids", "pids.max", "max"},
			{"cpu", "cpu.shares", "512"},
		}
	} else {
		files = []file{
			{"cpu", "cpu.max", "max 100000"},
			{"memory", "memory.max", strconv.Itoa(256 << 20)},
			{"pids", "pids.max", "max"},
			{"cpu", "cpu.weight", strconv.FormatUint(sharesToWeight(512), 10)},
		}
	}
	for _, f := range files {
		if got := readCg(t, m, f.ctl, f.name); got != f.want {
			t.Errorf("after Set: %s = %q, want %q", f.name, got, f.want)
		}
	}
}

// oom_kill_disable exists on cgroup v1 only: v1 sets it; v2 has nothing
// to set and ignores it (as runc does), while the limit beside it still
// applies.
func TestOOMKillDisable(t *testing.T) {
	m, _ := newTestManager(t, &specs.LinuxResources{Memory: &specs.LinuxMemory{
		Limit: i64(32 << 20), DisableOOMKiller: boolp(true),
	}})
	limitFile := "memory.max"
	if version(t) == V1 {
		limitFile = "memory.limit_in_bytes"
		if got := readCg(t, m, "memory", "memory.oom_control"); !strings.Contains(got, "oom_kill_disable 1") {
			t.Errorf("memory.oom_control = %q, want oom_kill_disable 1", got)
		}
	}
	if got := readCg(t, m, "memory", limitFile); got != strconv.Itoa(32<<20) {
		t.Errorf("%s = %q, want %d", limitFile, got, 32<<20)
	}
}

func TestBadInput(t *testing.T) {
	for _, p := range []string{"", "relative/x", "/", "/a/../b"} {
		if _, err := New(p); err == nil {
			t.Errorf("New(%q): no error", p)
		}
	}
	requirePrivileged(t)
	top, path := testPath(t, "c")
	m, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Destroy(); assertGone(t, top) })
	bad := []*specs.LinuxResources{
		{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Type: "x", Access: "r"}}},
		{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Type: "c", Access: "rq"}}},
		{Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(32 << 20)}},
	}
	for i, r := range bad {
		if err := m.Create(r); err == nil {
			t.Errorf("Create(bad[%d]): no error", i)
		}
		assertGone(t, top)
	}
}

func TestApplyProcs(t *testing.T) {
	m, path := newTestManager(t, nil)
	c := startChild(t, m, "exit 0")
	pids, err := m.Procs()
	if err != nil {
		t.Fatal(err)
	}
	pid := c.cmd.Process.Pid
	if len(pids) != 1 || pids[0] != pid {
		t.Fatalf("Procs = %v, want [%d]", pids, pid)
	}
	// The kernel agrees: /proc/PID/cgroup names our path in every
	// hierarchy berth manages.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && parts[2] == path {
			found++
		}
	}
	want := 1
	if version(t) == V1 {
		want = len(uniqueValues(m.Paths()))
	}
	if found != want {
		t.Errorf("/proc/%d/cgroup names %s in %d hierarchies, want %d:\n%s", pid, path, found, want, b)
	}
	c.release(t)
	if ws := c.wait(t, time.Minute); ws.ExitStatus() != 0 {
		t.Errorf("child exit %v: %s", ws, c.out.String())
	}
	if pids, err := m.Procs(); err != nil || len(pids) != 0 {
		t.Errorf("Procs after exit = %v, %v", pids, err)
	}
}

func uniqueValues(m map[string]string) map[string]bool {
	out := map[string]bool{}
	for _, v := range m {
		out[v] = true
	}
	return out
}

func TestPidsLimitHoldsAgainstForkLoop(t *testing.T) {
	m, _ := newTestManager(t, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(8)}})
	// Start 30 background sleepers; the pids limit must stop the shell
	// from making more than 8 processes in all.
	// busybox sh gives up at the first failed fork.
	c := startChild(t, m, `i=0; while [ $i -lt 30 ]; do /bin/busybox sleep 60 & i=$((i+1)); done; /bin/busybox echo all-started; /bin/busybox sleep 60`)
	c.release(t)
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(c.out.String(), "fork") && !strings.Contains(c.out.String(), "all-started") {
		if time.Now().After(deadline) {
			t.Fatalf("fork loop did not finish: %s", c.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Pids > 8 || st.Pids < 2 {
		t.Errorf("pids in cgroup = %d, want 2..8", st.Pids)
	}
	if st.PidsLimit != 8 {
		t.Errorf("PidsLimit = %d, want 8", st.PidsLimit)
	}
	pids, err := m.Procs()
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) > 8 {
		t.Errorf("%d processes inside, limit 8", len(pids))
	}
	if !strings.Contains(c.out.String(), "fork") {
		t.Errorf("shell never failed to fork; output: %q", c.out.String())
	}
	// Destroy (in Cleanup) must kill all of them; check it here too.
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if pid != c.cmd.Process.Pid && syscall.Kill(pid, 0) == nil {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(b), ") Z") {
				t.Errorf("pid %d still alive after Destroy", pid)
			}
		}
	}
}

func TestMemoryLimitOOMKill(t *testing.T) {
	m, _ := newTestManager(t, &specs.LinuxResources{Memory: &specs.LinuxMemory{
		Limit: i64(16 << 20), Swap: i64(16 << 20),
	}})
	if killed, err := m.OOMKilled(); err != nil || killed {
		t.Fatalf("OOMKilled before = %v, %v", killed, err)
	}
	// dd allocates its 64 MiB block buffer and fills it from /dev/zero.
	c := startChild(t, m, "exec /bin/busybox dd if=/dev/zero of=/dev/null bs=64M count=4")
	c.release(t)
	ws := c.wait(t, 2*time.Minute)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("dd: %v (want SIGKILL by the OOM killer); output: %s", ws, c.out.String())
	}
	killed, err := m.OOMKilled()
	if err != nil {
		t.Fatal(err)
	}
	if !killed {
		t.Error("OOMKilled = false after the OOM killer killed dd")
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.OOMKills == 0 {
		t.Error("Stats.OOMKills = 0")
	}
	if st.MemoryMaxUsage != 0 && st.MemoryMaxUsage < 8<<20 {
		t.Errorf("MemoryMaxUsage = %d, want near the 16 MiB limit", st.MemoryMaxUsage)
	}
}

func TestDeviceRuleDenies(t *testing.T) {
	// Docker-like: everything allowed, then /dev/null (c 1:3) denied for
	// read and write; /dev/zero (c 1:5) stays usable.
	r := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: true, Access: "rwm"},
		{Allow: false, Type: "c", Major: majmin(1), Minor: majmin(3), Access: "rw"},
	}}
	m, _ := newTestManager(t, r)
	c := startChild(t, m, `if /bin/busybox cat /dev/zero | /bin/busybox head -c 1 >/dev/null; then /bin/busybox echo null-open; else /bin/busybox echo null-denied; fi; /bin/busybox head -c 4 /dev/zero | /bin/busybox wc -c`)
	c.release(t)
	c.wait(t, time.Minute)
	out := c.out.String()
	if !strings.Contains(out, "null-denied") || !strings.Contains(out, "4") {
		t.Errorf("want /dev/null denied and /dev/zero readable, got %q", out)
	}

	// Set again with other rules replaces the filter: now /dev/null is
	// allowed and /dev/zero is denied.
	if err := m.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: majmin(1), Minor: majmin(3), Access: "rwm"},
	}}); err != nil {
		t.Fatalf("Set: %v", err)
	}
	c2 := startChild(t, m, `/bin/busybox echo hi >/dev/null && /bin/busybox echo null-ok; /bin/busybox head -c 1 /dev/zero >/dev/null 2>&1 || /bin/busybox echo zero-denied`)
	c2.release(t)
	c2.wait(t, time.Minute)
	out = c2.out.String()
	if !strings.Contains(out, "null-ok") || !strings.Contains(out, "zero-denied") {
		t.Errorf("after Set: want /dev/null usable and /dev/zero denied, got %q", out)
	}
}

func TestStatsAfterWork(t *testing.T) {
	requirePrivileged(t)
	dir := t.TempDir()
	r := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(128 << 20)}}
	// Recent kernels count v1 blkio bytes only for devices with a
	// throttle rule: give the disk under dir a limit nothing reaches.
	maj, min, disk := diskOf(t, dir)
	if disk {
		r.BlockIO = &specs.LinuxBlockIO{ThrottleWriteBpsDevice: []specs.LinuxThrottleDevice{
			{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: maj, Minor: min}, Rate: 1 << 40},
		}}
	}
	m, _ := newTestManager(t, r)
	// v1 charges buffered writeback to the root cgroup, so the disk
	// write that must show up in the io stats bypasses the page cache.
	direct := ""
	if disk {
		direct = fmt.Sprintf("/bin/busybox dd if=/dev/zero of=%s/g bs=64k count=16 oflag=direct 2>/dev/null;", dir)
	}
	c := startChild(t, m, fmt.Sprintf(`i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; /bin/busybox dd if=/dev/zero of=%s/f bs=1M count=4 2>/dev/null; %s /bin/busybox echo done; /bin/busybox sleep 60`, dir, direct))
	c.release(t)
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(c.out.String(), "done") {
		if time.Now().After(deadline) {
			t.Fatalf("work did not finish: %s", c.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stats: %+v", *st)
	if st.CPUUsageNanos == 0 {
		t.Error("CPUUsageNanos = 0 after a busy loop")
	}
	if st.MemoryUsage == 0 {
		t.Error("MemoryUsage = 0 with a live process and 4 MiB written")
	}
	if st.MemoryLimit != 128<<20 {
		t.Errorf("MemoryLimit = %d, want %d", st.MemoryLimit, 128<<20)
	}
	if st.Pids == 0 {
		t.Error("Pids = 0 with a live process")
	}
	if st.MemoryCache == 0 {
		t.Error("MemoryCache = 0 after writing a 4 MiB file")
	}
	// Written bytes are counted only where the file lives on a block
	// device (not on the tmpfs of the v2 guest).
	if disk && st.IOWriteBytes < 1<<20 {
		t.Errorf("IOWriteBytes = %d after writing 1 MiB with O_DIRECT", st.IOWriteBytes)
	}
}

// diskOf returns the whole disk holding dir, if dir is on a block
// device (not on the tmpfs of the v2 guest).
func diskOf(t testing.TB, dir string) (major, minor int64, ok bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	sys := fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	if _, err := os.Stat(sys); err != nil {
		return 0, 0, false
	}
	if _, err := os.Stat(sys + "/partition"); err == nil {
		sys += "/.."
	}
	b, err := os.ReadFile(sys + "/dev")
	if err != nil {
		return 0, 0, false
	}
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &major, &minor); err != nil {
		return 0, 0, false
	}
	return major, minor, true
}

func TestFreezeThaw(t *testing.T) {
	m, _ := newTestManager(t, nil)
	c := startChild(t, m, `/bin/busybox sleep 60`)
	c.release(t)
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if f, err := IsFrozen(m); err != nil || !f {
		t.Fatalf("Frozen after Freeze = %v, %v", f, err)
	}
	// A frozen task sits in the freezer: the kernel shows it in the
	// refrigerator, not running, and it does not react to SIGCONT-free
	// signals until thawed; here we only check the state flips back.
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if f, err := IsFrozen(m); err != nil || f {
		t.Fatalf("Frozen after Thaw = %v, %v", f, err)
	}
	// Destroy works on a frozen cgroup too.
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if err := m.Destroy(); err != nil {
		t.Fatalf("Destroy of frozen cgroup: %v", err)
	}
	ws := c.wait(t, time.Minute)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("child after Destroy: %v, want killed", ws)
	}
}

func TestDestroyLeavesNothing(t *testing.T) {
	requirePrivileged(t)
	top, path := testPath(t, "a", "b", "c")
	m, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Destroy(); assertGone(t, top) })
	if err := m.Create(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(100)}}); err != nil {
		t.Fatal(err)
	}
	if err := m.Create(nil); err != nil { // idempotent
		t.Fatalf("second Create: %v", err)
	}
	for c, d := range m.Paths() {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s dir %s missing after Create: %v", c, d, err)
		}
	}
	c := startChild(t, m, `/bin/busybox sleep 60 & /bin/busybox sleep 60`)
	c.release(t)
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, top)
	if err := m.Destroy(); err != nil {
		t.Fatalf("second Destroy: %v", err)
	}
	ws := c.wait(t, time.Minute)
	if !ws.Signaled() {
		t.Errorf("child survived Destroy: %v", ws)
	}
}

func TestDestroyKeepsPreexistingParent(t *testing.T) {
	requirePrivileged(t)
	top, _ := testPath(t)
	// Someone else's parent: made by hand, not by berth, in each
	// hierarchy berth uses.
	probe, err := New(top + "/mine/c")
	if err != nil {
		t.Fatal(err)
	}
	var made []string
	for d := range uniqueValues(probe.Paths()) {
		d = filepath.Dir(filepath.Dir(d))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		made = append(made, d)
	}
	t.Cleanup(func() {
		for _, d := range made {
			_ = removeTree(d)
		}
		assertGone(t, top)
	})
	if version(t) == V1 {
		for _, d := range made {
			if filepath.Base(filepath.Dir(d)) == "cpuset" {
				if err := copyCpuset(d); err != nil {
					t.Fatal(err)
				}
			}
		}
	} else {
		// On v2 the foreign parent enables the controllers itself.
		for _, d := range made {
			if err := enableControllers(d); err != nil {
				t.Fatal(err)
			}
		}
	}
	m, err := New(top + "/mine/c")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Create(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(5)}}); err != nil {
		t.Fatal(err)
	}
	// A second Manager for a sibling shares the berth-made "mine".
	sib, err := New(top + "/mine/d")
	if err != nil {
		t.Fatal(err)
	}
	if err := sib.Create(nil); err != nil {
		t.Fatal(err)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, d := range made {
		if _, err := os.Stat(filepath.Join(d, "mine", "d")); err != nil {
			t.Errorf("sibling cgroup removed: %v", err)
		}
		if _, err := os.Stat(filepath.Join(d, "mine", "c")); err == nil {
			t.Errorf("%s/mine/c left behind", d)
		}
	}
	// Destroy from a fresh Manager (another process after a restart):
	// the created mark on "mine" lets it go, the foreign parent stays.
	sib2, err := New(top + "/mine/d")
	if err != nil {
		t.Fatal(err)
	}
	if err := sib2.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, d := range made {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("pre-existing parent %s removed", d)
		}
		if _, err := os.Stat(filepath.Join(d, "mine")); err == nil {
			t.Errorf("berth-made %s/mine left behind", d)
		}
	}
}

func TestForeignParentUntouched(t *testing.T) {
	requirePrivileged(t)
	top, _ := testPath(t)
	probe, err := New(top + "/c")
	if err != nil {
		t.Fatal(err)
	}
	// A parent berth did not make, with no controllers enabled for its
	// children (on v2); berth must not change it.
	var made []string
	for d := range uniqueValues(probe.Paths()) {
		d = filepath.Dir(d)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		made = append(made, d)
		if strings.Contains(d, "cpuset") {
			if err := copyCpuset(d); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() {
		for _, d := range made {
			_ = removeTree(d)
		}
		assertGone(t, top)
	})
	m, err := New(top + "/c")
	if err != nil {
		t.Fatal(err)
	}
	err = m.Create(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(5)}})
	if version(t) == V2 {
		if err == nil || !strings.Contains(err.Error(), `controller "pids" is not enabled`) {
			t.Errorf("Create below a parent without the pids controller: err = %v", err)
		}
		if got := readFileT(t, filepath.Join(made[0], "cgroup.subtree_control")); got != "" {
			t.Errorf("foreign parent's cgroup.subtree_control changed to %q", got)
		}
	} else if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, d := range made {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("foreign parent %s removed", d)
		}
		if _, err := os.Stat(filepath.Join(d, "c")); err == nil {
			t.Errorf("%s/c left behind", d)
		}
	}
}

func readFileT(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// Containers of one project share a berth-made parent; creating and
// destroying them concurrently must neither fail nor leave the parent.
func TestConcurrentSiblings(t *testing.T) {
	requirePrivileged(t)
	top, _ := testPath(t)
	t.Cleanup(func() { assertGone(t, top) })
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				m, err := New(fmt.Sprintf("%s/shared/c%d-%d", top, g, i))
				if err != nil {
					errs <- err
					return
				}
				if err := m.Create(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(10)}}); err != nil {
					errs <- fmt.Errorf("Create: %w", err)
					_ = m.Destroy()
					return
				}
				if err := m.Destroy(); err != nil {
					errs <- fmt.Errorf("Destroy: %w", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestCpusetLevels: a process joined to a container cgroup berth made,
// at any depth, may run on the CPUs and memory nodes the test itself may
// (no cpuset was asked for). On v1, where a new cpuset cgroup starts empty
// and refuses tasks, every level berth made (or the kernel filled from a
// level berth made) also holds its parent's cpus and mems; on v2 the
// kernel hands them down by itself.
func TestCpusetLevels(t *testing.T) {
	requirePrivileged(t)
	own := allowedLists(t, os.Getpid())
	for _, leaf := range [][]string{{"proj", "c1"}, {"proj", "c2"}, {"other", "deeper", "c3"}} {
		m, _ := newTestManager(t, nil, leaf...)
		c := startChild(t, m, "exit 0")
		if got := allowedLists(t, c.cmd.Process.Pid); got != own {
			t.Errorf("child in %v may run on %q, want the test's own %q", leaf, got, own)
		}
		if version(t) == V1 {
			dir := ctlDir(t, m, "cpuset")
			for i := 0; i < len(leaf)+1; i++ {
				parent := filepath.Dir(dir)
				for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
					got, _ := os.ReadFile(filepath.Join(dir, f))
					want, _ := os.ReadFile(filepath.Join(parent, f))
					if strings.TrimSpace(string(got)) == "" || string(got) != string(want) {
						t.Errorf("%s/%s = %q, want the parent's %q", dir, f, got, want)
					}
				}
				dir = parent
			}
		}
		c.release(t)
		if ws := c.wait(t, time.Minute); ws.ExitStatus() != 0 {
			t.Errorf("child in %v: exit %v: %s", leaf, ws, c.out.String())
		}
	}
}

// allowedLists returns the Cpus_allowed_list and Mems_allowed_list lines
// of /proc/PID/status.
func allowedLists(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Cpus_allowed_list:") || strings.HasPrefix(l, "Mems_allowed_list:") {
			out = append(out, strings.Join(strings.Fields(l), " "))
		}
	}
	if len(out) != 2 {
		t.Fatalf("/proc/%d/status has no allowed lists:\n%s", pid, b)
	}
	return strings.Join(out, "; ")
}

// Docker's default device list: everything denied, then a few character
// devices allowed, and mknod of any device allowed.
func TestDeviceDefaultDenyList(t *testing.T) {
	c := func(maj, min int64, access string) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: majmin(maj), Minor: majmin(min), Access: access}
	}
	r := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: majmin(-1), Minor: majmin(-1), Access: "m"},
		{Allow: true, Type: "b", Major: majmin(-1), Minor: majmin(-1), Access: "m"},
		c(1, 3, "rwm"), c(1, 5, "rwm"), c(1, 7, "rwm"), c(1, 8, "rwm"), c(1, 9, "rwm"),
		c(5, 0, "rwm"), c(5, 1, "rwm"), c(5, 2, "rwm"), c(136, -1, "rwm"),
		// a later deny narrows an allow: urandom becomes read-only
		{Allow: false, Type: "c", Major: majmin(1), Minor: majmin(9), Access: "w"},
	}}
	m, _ := newTestManager(t, r)
	dir := t.TempDir()
	bb := "/bin/busybox"
	script := strings.Join([]string{
		bb + ` dd if=/dev/zero of=/dev/null count=1 2>/dev/null && ` + bb + ` echo null-ok`,
		bb + ` dd if=/dev/kmsg of=/dev/null count=0 2>/dev/null || ` + bb + ` echo kmsg-denied`,
		bb + ` dd if=/dev/urandom of=/dev/null count=1 2>/dev/null && ` + bb + ` echo urandom-read-ok`,
		bb + ` dd if=/dev/zero of=/dev/urandom count=1 2>/dev/null || ` + bb + ` echo urandom-write-denied`,
		bb + ` mknod ` + dir + `/n c 1 11 && ` + bb + ` echo mknod-ok`,
		bb + ` dd if=` + dir + `/n of=/dev/null count=0 2>/dev/null || ` + bb + ` echo node-denied`,
	}, "; ")
	ch := startChild(t, m, script)
	ch.release(t)
	ch.wait(t, time.Minute)
	out := ch.out.String()
	for _, want := range []string{"null-ok", "kmsg-denied", "urandom-read-ok", "urandom-write-denied", "mknod-ok", "node-denied"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in output %q", want, out)
		}
	}
}

// A Create that fails on a cgroup already in use (a repeated Create with
// a bad value) reports the error and leaves the running container alone.
func TestFailedCreateKeepsProcesses(t *testing.T) {
	m, _ := newTestManager(t, nil)
	c := startChild(t, m, `/bin/busybox sleep 60`)
	c.release(t)
	err := m.Create(&specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "9999"}})
	if err == nil {
		t.Fatal("cpuset 9999 accepted")
	}
	pids, err := m.Procs()
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) != 1 || pids[0] != c.cmd.Process.Pid {
		t.Errorf("Procs after failed Create = %v, want [%d]", pids, c.cmd.Process.Pid)
	}
}
