package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }

// cgroupFile reads a controller file of a running container from the host.
func cgroupFile(t *testing.T, c *Container, controller, v1file, v2file string) string {
	t.Helper()
	paths := c.Cgroup().Paths()
	if d, ok := paths[controller]; ok && v1file != "" {
		b, err := os.ReadFile(filepath.Join(d, v1file))
		if err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	if d, ok := paths[""]; ok {
		b, err := os.ReadFile(filepath.Join(d, v2file))
		if err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	t.Fatalf("no %s file for %s in %v", v1file, controller, paths)
	return ""
}

func TestCgroupLimitsInsideAndOnHost(t *testing.T) {
	requirePrivileged(t)
	checkNoLeaks(t)
	bundle := makeRootfs(t)
	r := newTestRuntime(t)
	ctx := context.Background()
	// Inside: the container's own cgroup is the root of its cgroup
	// namespace, so the limits are in the top files of /sys/fs/cgroup.
	spec := shSpec(`cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null;
cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null;
cat /proc/self/cgroup | grep -c ':/$'; echo ready; sleep 100`)
	spec.Linux.Resources = &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(64 << 20)},
		Pids:   &specs.LinuxPids{Limit: i64(42)},
		CPU:    &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000)},
	}
	c, b := startUntil(t, r, bundle, spec, "ready")
	wantLines(t, b, "67108864", "42")
	if got := cgroupFile(t, c, "memory", "memory.limit_in_bytes", "memory.max"); got != "67108864" {
		t.Errorf("host memory limit %q", got)
	}
	if got := cgroupFile(t, c, "pids", "pids.max", "pids.max"); got != "42" {
		t.Errorf("host pids limit %q", got)
	}
	if got := cgroupFile(t, c, "cpu", "cpu.cfs_quota_us", "cpu.max"); got != "50000" && got != "50000 100000" {
		t.Errorf("host cpu quota %q", got)
	}
	st, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Pids < 1 || st.MemoryUsage == 0 {
		t.Errorf("stats: %+v", st)
	}
	paths := c.Cgroup().Paths()
	if err := c.Delete(ctx, true); err != nil {
		t.Fatal(err)
	}
	for _, d := range paths {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s left after delete", d)
		}
		// the intermediate "berth" directory is ours too when we made it
	}
}

// TestInitInEveryHierarchy: once started, every thread of the
// container's pid 1 is in the container's cgroup in every hierarchy, with
// the service's command as pid 1 (on cgroup v1 the init joins by itself,
// from the thread that execs it) and with the reaper (which the parent
// moves, all its threads).
func TestInitInEveryHierarchy(t *testing.T) {
	requirePrivileged(t)
	checkNoLeaks(t)
	bundle := makeRootfs(t)
	r := newTestRuntime(t)
	for _, reaper := range []bool{false, true} {
		t.Run(fmt.Sprintf("reaper_%v", reaper), func(t *testing.T) {
			spec := shSpec("echo ready; sleep 100")
			if reaper {
				spec.Annotations = map[string]string{AnnotationInit: "true"}
			}
			c, _ := startUntil(t, r, bundle, spec, "ready")
			st, err := c.State()
			if err != nil {
				t.Fatal(err)
			}
			tids, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", st.Pid))
			if err != nil {
				t.Fatal(err)
			}
			if reaper && !c.cinit && len(tids) < 2 {
				// (the C init's reaper has one)
				t.Fatalf("the Go reaper has %d threads: the check below could not tell", len(tids))
			}
			if len(st.CgroupPaths) == 0 {
				t.Fatal("no cgroup paths in the state")
			}
			for ctl, dir := range st.CgroupPaths {
				file := "tasks" // v1: threads
				if ctl == "" {
					file = "cgroup.threads" // v2 (a domain cgroup lists its threads too)
				}
				b, err := os.ReadFile(filepath.Join(dir, file))
				if err != nil {
					t.Fatal(err)
				}
				in := strings.Fields(string(b))
				for _, tid := range tids {
					if !slices.Contains(in, tid.Name()) {
						t.Errorf("%s: thread %s of pid %d is not in %s (%v)", ctl, tid.Name(), st.Pid, dir, in)
					}
				}
			}
		})
	}
}

func TestPidsLimitHoldsAgainstForkLoop(t *testing.T) {
	requirePrivileged(t)
	checkNoLeaks(t)
	bundle := makeRootfs(t)
	// The loop's shell dies when fork fails; pid 1 survives it (echo is a
	// builtin) and reports, then holds the cgroup for the host to count.
	spec := shSpec(`sh -c 'i=0; while [ $i -lt 60 ]; do sleep 30 & i=$((i+1)); done; echo all-forked' 2>/dev/null; echo loop-ended; exec sleep 100`)
	spec.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(10)}}
	r := newTestRuntime(t)
	c, b := startUntil(t, r, bundle, spec, "loop-ended")
	if strings.Contains(b, "all-forked") {
		t.Fatalf("60 forks succeeded under pids.max=10")
	}
	procs, err := c.Cgroup().Procs()
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) > 10 || len(procs) < 2 {
		t.Fatalf("%d processes in the cgroup, want 2..10", len(procs))
	}
	t.Logf("processes under pids.max=10: %d", len(procs))
	if err := c.Delete(context.Background(), true); err != nil {
		t.Fatal(err)
	}
}

func TestOOMKilledIs137(t *testing.T) {
	requirePrivileged(t)
	checkNoLeaks(t)
	bundle := makeRootfs(t)
	spec := DefaultSpec("rootfs", "/bin/dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=4")
	spec.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(32 << 20), Swap: i64(32 << 20)}}
	r := newTestRuntime(t)
	ctx := context.Background()
	c, err := r.Create(ctx, testID(t), CreateOpts{Bundle: bundle, Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Delete(context.Background(), true) })
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	es, err := c.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if es.Code != 137 || !es.OOMKilled {
		t.Fatalf("exit %+v, want 137 and OOMKilled", es)
	}
	other, _ := r.Load(c.ID())
	if st, _ := other.State(); !st.OOMKilled || st.ExitCode == nil || *st.ExitCode != 137 {
		t.Fatalf("state: %+v", st)
	}
}

func TestDeviceRules(t *testing.T) {
	requirePrivileged(t)
	bundle := makeRootfs(t)
	// CAP_MKNOD makes the node (/dev/kmsg, which root may open for
	// writing without CAP_SYSLOG); the device cgroup refuses to open it.
	// Without the rules it opens. /dev/net/tun (10:200) is allowed, as
	// runc allows it to Docker containers.
	script := `mknod /tmp/kmsg c 1 11 && echo made; (exec 3>/tmp/kmsg) 2>/dev/null && echo opened || echo denied; ` +
		`mknod /tmp/tun c 10 200 && (exec 3</tmp/tun) 2>/dev/null && echo tun; head -c1 /dev/zero | wc -c`
	wantLines(t, mustRun(t, shSpec(script), bundle), "made", "denied", "tun", "1")
	spec := shSpec(strings.ReplaceAll(strings.ReplaceAll(script, "/tmp/kmsg", "/tmp/kmsg2"), "/tmp/tun", "/tmp/tun2"))
	spec.Linux.Resources = nil
	wantLines(t, mustRun(t, spec, bundle), "made", "opened", "tun", "1")
}

func TestPauseResumeUpdate(t *testing.T) {
	requirePrivileged(t)
	c, _ := startSleeper(t, nil)
	if err := c.Pause(); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.State(); st.Status != specs.ContainerState(Paused) {
		t.Fatalf("after pause: %s", st.Status)
	}
	if err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.State(); st.Status != specs.StateRunning {
		t.Fatalf("after resume: %s", st.Status)
	}
	if err := c.Update(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(7)}}); err != nil {
		t.Fatal(err)
	}
	out, _ := execOut(t, c, c.ExecProcess("/bin/sh", "-c", "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null"))
	wantLines(t, out, "7")
	// The saved state carries the updated config: another handle sees it.
	other, err := c.rt.Load(c.ID())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := other.Spec()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Linux == nil || cfg.Linux.Resources == nil ||
		cfg.Linux.Resources.Pids == nil || cfg.Linux.Resources.Pids.Limit == nil || *cfg.Linux.Resources.Pids.Limit != 7 ||
		cfg.Process == nil || len(cfg.Process.Args) == 0 {
		t.Fatalf("config loaded from the state file after Update: %+v", cfg)
	}
	// a paused container can be force-deleted
	if err := c.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(context.Background(), false); err == nil {
		t.Fatal("delete of a paused container without force")
	}
	if err := c.Delete(context.Background(), true); err != nil {
		t.Fatal(err)
	}
}
