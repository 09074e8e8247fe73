package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// checkNoLeaks fails the test if the host gained mounts or fds.
func checkNoLeaks(t *testing.T) {
	t.Helper()
	before := takeSnapshot(t)
	t.Cleanup(func() {
		if l := before.leaks(t, takeSnapshot(t)); len(l) > 0 {
			t.Errorf("leaked: %v", l)
		}
	})
}

func mustRun(t *testing.T, spec *specs.Spec, bundle string) string {
	t.Helper()
	res := runContainer(t, newTestRuntime(t), bundle, spec)
	if res.exit.Code != 0 {
		t.Fatalf("exit %d, output:\n%s", res.exit.Code, res.out)
	}
	return res.out
}

func wantLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		have[strings.TrimSpace(l)] = true
	}
	for _, l := range lines {
		if !have[l] {
			t.Errorf("missing line %q in output:\n%s", l, out)
		}
	}
}

func TestPid1IsTheCommand(t *testing.T) {
	requirePrivileged(t)
	checkNoLeaks(t)
	bundle := makeRootfs(t)
	out := mustRun(t, shSpec(`tr '\0' ' ' </proc/1/cmdline; echo; echo pid=$$; hostname; ps -o pid,comm | wc -l`), bundle)
	// ps header + sh + ps (+ wc) : no berth process left in the container
	wantLines(t, out, "/bin/sh -c tr '\\0' ' ' </proc/1/cmdline; echo; echo pid=$$; hostname; ps -o pid,comm | wc -l", "pid=1", "berth")
}

func TestCapabilitiesNoNewPrivsSeccomp(t *testing.T) {
	requirePrivileged(t)
	checkNoLeaks(t)
	bundle := makeRootfs(t)
	spec := shSpec(`grep -E '^(CapEff|CapBnd|CapPrm|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status`)
	spec.Process.NoNewPrivileges = true
	prof, err := mobyseccomp.GetDefaultProfile(spec)
	if err != nil {
		t.Fatal(err)
	}
	spec.Linux.Seccomp = prof
	out := mustRun(t, spec, bundle)
	mask, _ := capMask(DefaultCapabilities, lastCapability())
	hex := fmt.Sprintf("%016x", mask)
	wantLines(t, out, "CapEff:\t"+hex, "CapBnd:\t"+hex, "CapPrm:\t"+hex, "CapAmb:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2")

	// cap_add NET_ADMIN, drop CHOWN; without no_new_privs; seccomp unconfined
	spec = shSpec(`grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; chown 1 /tmp && echo chowned; true`)
	caps := []string{"CAP_NET_ADMIN", "CAP_KILL"}
	spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	out = mustRun(t, spec, bundle)
	want := fmt.Sprintf("%016x", uint64(1<<12|1<<5))
	wantLines(t, out, "CapEff:\t"+want, "NoNewPrivs:\t0", "Seccomp:\t0")
	if strings.Contains(out, "chowned") {
		t.Errorf("chown worked without CAP_CHOWN:\n%s", out)
	}
}

func TestSeccompBlocks(t *testing.T) {
	requirePrivileged(t)
	bundle := makeRootfs(t)
	spec := shSpec(`mkdir /tmp/x && echo made; echo done`)
	spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}},
	}
	out := mustRun(t, spec, bundle)
	if strings.Contains(out, "made") || !strings.Contains(out, "done") {
		t.Fatalf("mkdir was not blocked by seccomp:\n%s", out)
	}
}

func TestUserAndGroups(t *testing.T) {
	requirePrivileged(t)
	bundle := makeRootfs(t)
	spec := shSpec(`id; echo home=$HOME`)
	spec.Process.User = specs.User{Username: "app"}
	wantLines(t, mustRun(t, spec, bundle), "uid=1000(app) gid=1000(app) groups=2000(extra)", "home=/home/app")

	spec = shSpec(`id`)
	spec.Process.User = specs.User{UID: 65534, GID: 65534, AdditionalGids: []uint32{2000}}
	wantLines(t, mustRun(t, spec, bundle), "uid=65534(nobody) gid=65534(nogroup) groups=2000(extra)")

	spec = shSpec(`id`)
	spec.Process.User = specs.User{Username: "nosuchuser"}
	res := runContainer(t, newTestRuntime(t), bundle, spec)
	if res.exit.Code == 0 || !strings.Contains(res.out, "nosuchuser") {
		t.Fatalf("unknown user accepted: %+v", res)
	}
}

func TestRlimitsCwdEnvOOMScore(t *testing.T) {
	requirePrivileged(t)
	bundle := makeRootfs(t)
	spec := shSpec(`ulimit -n; ulimit -Hn; pwd; echo foo=$FOO; cat /proc/self/oom_score_adj`)
	spec.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 200}}
	spec.Process.Cwd = "/home/app"
	spec.Process.Env = append(spec.Process.Env, "FOO=bar")
	adj := 500
	spec.Process.OOMScoreAdj = &adj
	wantLines(t, mustRun(t, spec, bundle), "100", "200", "/home/app", "foo=bar", "500")
}

func TestHostnameDomainnameSysctl(t *testing.T) {
	requirePrivileged(t)
	bundle := makeRootfs(t)
	spec := shSpec(`hostname; cat /proc/sys/kernel/domainname; cat /proc/sys/net/ipv4/ip_forward`)
	spec.Hostname = "web-1"
	spec.Domainname = "example.test"
	spec.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
	wantLines(t, mustRun(t, spec, bundle), "web-1", "example.test", "1")

	spec.Linux.Sysctl = map[string]string{"vm.swappiness": "10"}
	_, err := newTestRuntime(t).Create(context.Background(), testID(t), CreateOpts{Bundle: bundle, Spec: spec})
	if !errors.Is(err, ErrInvalidSpec) {
		t.Fatalf("host sysctl accepted: %v", err)
	}
}

func TestReadonlyRootfsAndMounts(t *testing.T) {
	requirePrivileged(t)
	checkNoLeaks(t)
	bundle := makeRootfs(t)
	hostDir := t.TempDir()
	os.WriteFile(filepath.Join(hostDir, "hello"), []byte("from-host\n"), 0o644)
	hostFile := filepath.Join(t.TempDir(), "conf")
	os.WriteFile(hostFile, []byte("conf-data\n"), 0o644)
	spec := shSpec(`touch /newfile 2>/dev/null && echo root-writable; cat /mnt/rw/hello; echo x > /mnt/rw/written && echo rw-ok;
cat /etc/app.conf; echo y > /etc/app.conf 2>/dev/null && echo conf-writable;
echo z > /scratch/f && echo tmpfs-ok; grep ' /scratch ' /proc/mounts | grep -o 'size=[0-9]*k';
grep ' /dev/shm ' /proc/mounts | grep -o 'size=[0-9]*k'; ls /dev/mqueue >/dev/null && echo mqueue-ok;
grep ' /sys ' /proc/mounts | grep -o ' ro,'; ls /dev/null /dev/zero /dev/urandom /dev/ptmx /dev/pts/ptmx | wc -l`)
	spec.Root.Readonly = true
	spec.Mounts = append(spec.Mounts,
		specs.Mount{Destination: "/mnt/rw", Type: "bind", Source: hostDir, Options: []string{"rbind", "rw"}},
		specs.Mount{Destination: "/etc/app.conf", Type: "bind", Source: hostFile, Options: []string{"bind", "ro"}},
		specs.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1024k"}},
	)
	for i := range spec.Mounts {
		if spec.Mounts[i].Destination == "/dev/shm" {
			spec.Mounts[i].Options = []string{"nosuid", "noexec", "nodev", "mode=1777", "size=2048k"}
		}
	}
	out := mustRun(t, spec, bundle)
	wantLines(t, out, "from-host", "rw-ok", "conf-data", "tmpfs-ok", "size=1024k", "size=2048k", "mqueue-ok", "ro,", "5")
	if strings.Contains(out, "root-writable") || strings.Contains(out, "conf-writable") {
		t.Errorf("read-only mount was writable:\n%s", out)
	}
	if b, _ := os.ReadFile(filepath.Join(hostDir, "written")); string(b) != "x\n" {
		t.Errorf("rw bind did not write through to the host: %q", b)
	}
}

func TestMaskedAndReadonlyPaths(t *testing.T) {
	requirePrivileged(t)
	bundle := makeRootfs(t)
	spec := shSpec(`exec 2>/dev/null; wc -c </proc/timer_list; ls /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/hostname && echo procsys-writable; cat /proc/keys | wc -c; echo end`)
	out := mustRun(t, spec, bundle)
	wantLines(t, out, "0", "end")
	if strings.Contains(out, "procsys-writable") {
		t.Errorf("/proc/sys writable:\n%s", out)
	}
	if lines := strings.Fields(out); len(lines) < 4 || lines[0] != "0" || lines[1] != "0" || lines[2] != "0" {
		t.Errorf("masked paths not empty:\n%s", out)
	}
}

// A symlink in the image must be resolved inside the rootfs: a mount
// target /evil/x with /evil -> <host dir> lands in rootfs/<host dir>/x,
// never on the host directory.
func TestSymlinkMountTargetStaysInRoot(t *testing.T) {
	requirePrivileged(t)
	checkNoLeaks(t)
	bundle := makeRootfs(t)
	victim := t.TempDir()
	if err := os.Symlink(victim, filepath.Join(bundle, "rootfs/evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../../..", filepath.Join(bundle, "rootfs/up")); err != nil {
		t.Fatal(err)
	}
	spec := shSpec(`ls ` + victim + `/x/marker && ls /marker2 2>/dev/null; ls /up/tm/x 2>/dev/null; echo ok`)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "marker"), nil, 0o644)
	spec.Mounts = append(spec.Mounts,
		specs.Mount{Destination: "/evil/x", Type: "bind", Source: src, Options: []string{"bind"}},
		specs.Mount{Destination: "/up/tm", Type: "tmpfs", Source: "tmpfs"},
	)
	out := mustRun(t, spec, bundle)
	wantLines(t, out, victim+"/x/marker", "ok")
	if ents, _ := os.ReadDir(victim); len(ents) != 0 {
		t.Errorf("host directory %s was written: %v", victim, ents)
	}
	if _, err := os.Stat(filepath.Join(bundle, "rootfs", victim, "x")); err != nil {
		t.Errorf("target not created inside the rootfs: %v", err)
	}
	if _, err := os.Stat(filepath.Join(bundle, "rootfs", "tm")); err != nil {
		t.Errorf("/up/tm not resolved inside the rootfs: %v", err)
	}
}

func TestProcOrSysSymlinkRefused(t *testing.T) {
	requirePrivileged(t)
	for _, d := range []string{"proc", "sys"} {
		t.Run(d, func(t *testing.T) {
			checkNoLeaks(t)
			bundle := makeRootfs(t)
			p := filepath.Join(bundle, "rootfs", d)
			os.Remove(p)
			if err := os.Symlink("/tmp", p); err != nil {
				t.Fatal(err)
			}
			r := newTestRuntime(t)
			_, err := r.Create(context.Background(), testID(t), CreateOpts{Bundle: bundle, Spec: shSpec("true")})
			if err == nil || !strings.Contains(err.Error(), "symlink") {
				t.Fatalf("want symlink refusal, got %v", err)
			}
			if ents, _ := os.ReadDir(r.Root()); len(ents) != 0 {
				t.Errorf("state left behind: %v", ents)
			}
		})
	}
}

// CVE-2024-21626: no host fd reaches the container, and a cwd through an
// fd (/proc/self/fd/N) that points outside the root is refused.
func TestNoHostFdLeakAndCwdOutsideRefused(t *testing.T) {
	requirePrivileged(t)
	bundle := makeRootfs(t)
	// A non-CLOEXEC host fd in the caller.
	fd, err := syscall.Open(t.TempDir(), syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	out := mustRun(t, shSpec(`ls /proc/self/fd | tr '\n' ' '; echo`), bundle)
	if strings.TrimSpace(out) != "0 1 2 3" { // 3 is ls's own directory fd
		t.Errorf("fds in the container: %q, want only stdio (and ls's own)", out)
	}

	hostDir, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer hostDir.Close()
	spec := shSpec(`pwd; ls`)
	spec.Process.Cwd = fmt.Sprintf("/proc/self/fd/%d", initExtraFd)
	r := newTestRuntime(t)
	outPath := filepath.Join(t.TempDir(), "out")
	of, _ := os.Create(outPath)
	defer of.Close()
	c, err := r.Create(context.Background(), testID(t), CreateOpts{Bundle: bundle, Spec: spec, IO: IO{Stdout: of, Stderr: of}, ExtraFiles: []*os.File{hostDir}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Delete(context.Background(), true) })
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	es, _ := c.Wait(context.Background())
	b, _ := os.ReadFile(outPath)
	if es.Code == 0 || !strings.Contains(string(b), "outside the container root") {
		t.Fatalf("cwd outside the root accepted: exit %d output %q", es.Code, b)
	}
}

// CVE-2019-5736: the berth binary a container can reach through
// /proc/<pid>/exe is a sealed memfd, not the host file.
func TestHostBinaryNotWritable(t *testing.T) {
	requirePrivileged(t)
	bundle := makeRootfs(t)
	self, _ := os.Executable()
	before, _ := os.ReadFile(self)
	spec := shSpec(`readlink /proc/1/exe; echo pwned >> /proc/1/exe && echo WROTE; echo pwned > /proc/1/exe && echo WROTE; echo end`)
	spec.Annotations = map[string]string{AnnotationInit: "true"} // pid 1 stays the berth binary
	out := mustRun(t, spec, bundle)
	if strings.Contains(out, "WROTE") || !strings.Contains(out, "/memfd:berth-") {
		t.Fatalf("host binary reachable or writable:\n%s", out)
	}
	after, _ := os.ReadFile(self)
	if string(before) != string(after) {
		t.Fatal("host binary changed")
	}
}

func TestInitReaper(t *testing.T) {
	requirePrivileged(t)
	checkNoLeaks(t)
	bundle := makeRootfs(t)
	// An orphan is reparented to pid 1 and must be reaped there.
	spec := shSpec(`(sh -c 'sleep 0.1' &); sleep 0.5; ps -o stat | grep -c Z; tr '\0' ' ' </proc/1/cmdline; echo; grep Seccomp: /proc/1/status; exit 3`)
	spec.Annotations = map[string]string{AnnotationInit: "true"}
	// the reaper runs confined too (it forks the command after the drop)
	spec.Process.NoNewPrivileges = true
	prof, err := mobyseccomp.GetDefaultProfile(spec)
	if err != nil {
		t.Fatal(err)
	}
	spec.Linux.Seccomp = prof
	res := runContainer(t, newTestRuntime(t), bundle, spec)
	if res.exit.Code != 3 {
		t.Fatalf("exit %d, want the child's 3; output:\n%s", res.exit.Code, res.out)
	}
	wantLines(t, res.out, "0", "Seccomp:\t2")
	if !strings.Contains(res.out, "\nberth-init ") {
		t.Errorf("pid 1 is not the reaper:\n%s", res.out)
	}
}

func TestLifecycleStateKillDelete(t *testing.T) {
	requirePrivileged(t)
	checkNoLeaks(t)
	bundle := makeRootfs(t)
	r := newTestRuntime(t)
	ctx := context.Background()
	id := testID(t)
	c, err := r.Create(ctx, id, CreateOpts{Bundle: bundle, Spec: shSpec("sleep 100")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Delete(context.Background(), true) })
	if _, err := r.Create(ctx, id, CreateOpts{Bundle: bundle, Spec: shSpec("true")}); !errors.Is(err, ErrExist) {
		t.Fatalf("duplicate id: %v", err)
	}
	st, _ := c.State()
	if st.Status != specs.StateCreated || st.Pid <= 0 {
		t.Fatalf("after create: %+v", st.State)
	}
	pid := st.Pid
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if p, start := c.Init(); p != pid || start != st.InitStartTime || start == 0 {
		t.Fatalf("Init() = %d, %d; state has pid %d started at %d", p, start, pid, st.InitStartTime)
	}
	if err := c.Start(); !errors.Is(err, ErrNotCreated) {
		t.Fatalf("second start: %v", err)
	}
	other, err := r.Load(id)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := other.State(); st.Status != specs.StateRunning || st.Pid != pid {
		t.Fatalf("loaded state: %+v", st.State)
	}
	if list, _ := r.List(); len(list) != 1 || list[0].ID != id {
		t.Fatalf("list: %+v", list)
	}
	if err := other.Delete(ctx, false); !errors.Is(err, ErrRunning) {
		t.Fatalf("delete running: %v", err)
	}
	if err := other.Kill(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	es, err := c.Wait(ctx)
	if err != nil || es.Code != 137 || es.Signal != syscall.SIGKILL {
		t.Fatalf("wait: %+v %v", es, err)
	}
	// the non-parent handle sees the recorded exit
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if es, err := other.Wait(wctx); err != nil || es.Code != 137 {
		t.Fatalf("foreign wait: %+v %v", es, err)
	}
	if st, _ := other.State(); st.Status != specs.StateStopped {
		t.Fatalf("after kill: %+v", st.State)
	}
	if err := other.Kill(syscall.SIGTERM); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("kill stopped: %v", err)
	}
	if err := other.Delete(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Load(id); !errors.Is(err, ErrNotExist) {
		t.Fatalf("after delete: %v", err)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		t.Fatalf("init %d still exists", pid)
	}
}

func TestDeleteForceRunning(t *testing.T) {
	requirePrivileged(t)
	checkNoLeaks(t)
	bundle := makeRootfs(t)
	r := newTestRuntime(t)
	ctx := context.Background()
	c, err := r.Create(ctx, testID(t), CreateOpts{Bundle: bundle, Spec: shSpec("sleep 100")})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	st, _ := c.State()
	if err := c.Delete(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", st.Pid)); err == nil {
		t.Fatalf("init %d survived delete --force", st.Pid)
	}
}

func TestBadSpecs(t *testing.T) {
	r, _ := New(t.TempDir())
	bundle := t.TempDir()
	for name, mut := range map[string]func(*specs.Spec){
		"version": func(s *specs.Spec) { s.Version = "2.0.0" },
		"noargs":  func(s *specs.Spec) { s.Process.Args = nil },
		"relcwd":  func(s *specs.Spec) { s.Process.Cwd = "tmp" },
		"nomntns": func(s *specs.Spec) { s.Linux.Namespaces = s.Linux.Namespaces[:1] },
		"badns": func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "time2"})
		},
		"userns": func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		},
		"sysctl":   func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.panic": "1"} },
		"relmount": func(s *specs.Spec) { s.Mounts = append(s.Mounts, specs.Mount{Destination: "x"}) },
	} {
		s := shSpec("true")
		mut(s)
		if _, err := r.Create(context.Background(), "bad-"+name, CreateOpts{Bundle: bundle, Spec: s}); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("%s: want ErrInvalidSpec, got %v", name, err)
		}
	}
	if _, err := r.Create(context.Background(), "../x", CreateOpts{Bundle: bundle, Spec: shSpec("true")}); err == nil {
		t.Error("bad id accepted")
	}
}

func TestCreateWithTerminal(t *testing.T) {
	requirePrivileged(t)
	checkNoLeaks(t)
	bundle := makeRootfs(t)
	spec := shSpec(`tty; read x; echo got=$x`)
	spec.Process.Terminal = true
	r := newTestRuntime(t)
	ctx := context.Background()
	c, err := r.Create(ctx, testID(t), CreateOpts{Bundle: bundle, Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Delete(context.Background(), true) })
	m := c.Console()
	if m == nil {
		t.Fatal("no console")
	}
	defer m.Close()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	m.Write([]byte("xyz\n"))
	var all []byte
	buf := make([]byte, 256)
	for !strings.Contains(string(all), "got=xyz") {
		n, err := m.Read(buf)
		if err != nil {
			break
		}
		all = append(all, buf[:n]...)
	}
	if es, _ := c.Wait(ctx); es.Code != 0 || !strings.Contains(string(all), "/dev/pts/0") || !strings.Contains(string(all), "got=xyz") {
		t.Fatalf("exit %+v, terminal output %q", es, all)
	}
}

// With the reaper, a signal to the container reaches the command.
func TestInitReaperForwardsSignals(t *testing.T) {
	requirePrivileged(t)
	bundle := makeRootfs(t)
	spec := DefaultSpec("rootfs", "/bin/sleep", "1000")
	spec.Annotations = map[string]string{AnnotationInit: "true"}
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
	time.Sleep(100 * time.Millisecond) // let the reaper start sleep
	if err := c.Kill(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if es, err := c.Wait(ctx); err != nil || es.Code != 128+int(syscall.SIGTERM) {
		t.Fatalf("exit %+v %v, want 143", es, err)
	}
}

// A Create that fails half way leaves nothing: no state, no cgroup, no
// process, no mount.
func TestFailedCreateRollsBack(t *testing.T) {
	requirePrivileged(t)
	checkNoLeaks(t)
	bundle := makeRootfs(t)
	r := newTestRuntime(t)
	spec := shSpec("true")
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "/nonexistent-berth-source"})
	id := testID(t)
	_, err := r.Create(context.Background(), id, CreateOpts{Bundle: bundle, Spec: spec})
	if err == nil || !strings.Contains(err.Error(), "nonexistent-berth-source") {
		t.Fatalf("want a bind source error, got %v", err)
	}
	if ents, _ := os.ReadDir(r.Root()); len(ents) != 0 {
		t.Errorf("state left: %v", ents)
	}
	matches, _ := filepath.Glob("/sys/fs/cgroup/*" + r.DefaultCgroupsPath(id))
	more, _ := filepath.Glob("/sys/fs/cgroup" + r.DefaultCgroupsPath(id))
	if len(matches)+len(more) != 0 {
		t.Errorf("cgroups left: %v %v", matches, more)
	}
}

// Ambient capabilities reach a non-root command.
func TestAmbientCapabilitiesForNonRoot(t *testing.T) {
	requirePrivileged(t)
	bundle := makeRootfs(t)
	spec := shSpec(`grep -E '^(CapEff|CapAmb):' /proc/self/status; id -u`)
	spec.Process.User = specs.User{Username: "app"}
	nb := []string{"CAP_NET_BIND_SERVICE"}
	spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: nb, Effective: nb, Permitted: nb, Inheritable: nb, Ambient: nb}
	wantLines(t, mustRun(t, spec, bundle), "CapEff:\t0000000000000400", "CapAmb:\t0000000000000400", "1000")
}

// A relative bind source is relative to the bundle, as the runtime spec says.
func TestRelativeBindSource(t *testing.T) {
	requirePrivileged(t)
	bundle := makeRootfs(t)
	os.MkdirAll(filepath.Join(bundle, "conf"), 0o755)
	os.WriteFile(filepath.Join(bundle, "conf/app.ini"), []byte("rel-ok\n"), 0o644)
	spec := shSpec(`cat /etc/conf/app.ini`)
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/etc/conf", Type: "bind", Source: "conf", Options: []string{"rbind", "ro"}})
	wantLines(t, mustRun(t, spec, bundle), "rel-ok")
}

// TestCreateWithHighFds: the daemon of a busy host has hundreds of fds
// open, so the files a container gets can have any number. Go's fork dups
// its error pipe to just above the highest of them: with stdout at fd 255
// it lands on 256, where the sealed init sits in this process, and an init
// exec'd by that number failed with EACCES. Both the container's init and
// an exec into it must start, and see only their own fds.
func TestCreateWithHighFds(t *testing.T) {
	requirePrivileged(t)
	checkNoLeaks(t)
	bundle := makeRootfs(t)
	r := newTestRuntime(t)
	self, err := initExe()
	if err != nil {
		t.Fatal(err)
	}
	if self.Fd() != 256 {
		t.Logf("the sealed init is at fd %d, not 256: the test still checks that it starts", self.Fd())
	}
	outPath := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	high := int(self.Fd()) - 1
	if err := unix.Dup3(int(f.Fd()), high, unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	out := os.NewFile(uintptr(high), "out-high")
	defer out.Close()
	c, _ := startUntilIO(t, r, bundle, shSpec("ls /proc/self/fd | wc -l; echo ready; sleep 100"), IO{Stdout: out, Stderr: out}, outPath, "ready")
	p, err := c.Exec(context.Background(), c.ExecProcess("sh", "-c", "echo exec-ok"), ExecOpts{IO: IO{Stdout: out, Stderr: out}})
	if err != nil {
		t.Fatalf("exec with stdout at fd %d: %v", high, err)
	}
	if es, err := p.Wait(context.Background()); err != nil || es.Code != 0 {
		t.Fatalf("exec: %v %+v", err, es)
	}
	waitFor(t, outPath, "exec-ok")
	// ls's own fds: 0, 1, 2 and the directory it reads.
	b, _ := os.ReadFile(outPath)
	wantLines(t, string(b), "4")
}
