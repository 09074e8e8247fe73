package runtime

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// cinit returns the C init as the Makefile builds it, or the one
// BERTH_CINIT names (the cgroup v2 guest has no compiler).
func cinit(t testing.TB) []byte {
	t.Helper()
	b, err := cinitOnce()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var cinitOnce = sync.OnceValues(func() ([]byte, error) {
	if bin := os.Getenv("BERTH_CINIT"); bin != "" {
		return os.ReadFile(bin)
	}
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	dir, err := os.MkdirTemp("", "berth-cinit-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "berth-cinit")
	// The Makefile's flags (init-bin).
	out, err := exec.Command(cc, "-O2", "-static", "-s", "-Wall", "-Werror", "-o", bin, "cinit/cinit.c", "nsenter/nsenter.c").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s cinit/cinit.c: %w\n%s", cc, err, out)
	}
	return os.ReadFile(bin)
})

// useCInit makes Create start the C init, where it can, for the rest of
// the test.
func useCInit(t testing.TB) {
	t.Helper()
	useSmall(t, "berth-cinit", &cinitBinary, &sealedCInit, cinit(t))
}

// noCInit makes Create start the Go init for the rest of the test (in a
// build with the tag berth_init, the embedded C init would be used).
func noCInit(t testing.TB) {
	t.Helper()
	prev := cinitBinary
	sealedCInit.reset()
	cinitBinary = nil
	t.Cleanup(func() {
		cinitBinary = prev
		sealedCInit.reset()
	})
}

// cinitRun is one container run as a user sees it: its output (stdout
// and stderr), its exit code, or the error Create or Start returned.
type cinitRun struct {
	out   string
	exit  int
	err   string
	usedC bool
}

var fdNumber = regexp.MustCompile(`/proc/self/fd/[0-9]+`)

func runOnce(t *testing.T, r *Runtime, bundle string, spec *specs.Spec, extra []*os.File) cinitRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, outPath := outFile(t)
	defer out.Close()
	id := regexp.MustCompile(`[^a-z0-9-]+`).ReplaceAllString(testID(t), "-")
	norm := func(s string) string {
		// The two runs differ in their ids and output files, and the
		// inits in the fds they happen to hold.
		s = strings.ReplaceAll(strings.ReplaceAll(s, id, "ID"), outPath, "OUT")
		return fdNumber.ReplaceAllString(s, "/proc/self/fd/N")
	}
	c, err := r.Create(ctx, id, CreateOpts{Bundle: bundle, Spec: spec, IO: IO{Stdout: out, Stderr: out}, ExtraFiles: extra})
	if err != nil {
		return cinitRun{err: norm(err.Error())}
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), true) })
	if con := c.Console(); con != nil {
		defer con.Close()
	}
	run := cinitRun{usedC: c.cinit}
	if err := c.Start(); err != nil {
		run.err = norm(err.Error())
		return run
	}
	es := waitDelete(t, ctx, c)
	b, _ := os.ReadFile(outPath)
	run.out, run.exit = norm(string(b)), es.Code
	return run
}

// stateScript prints what a container's process sees of its setup: its
// identity, capabilities and filters, its mounts (without the ids that
// differ from run to run), /dev, limits, umask, cwd, environment, names,
// fds and cgroups.
const stateScript = `id
grep -E '^(Cap|NoNewPrivs|Seccomp|Groups)' /proc/self/status
cut -d' ' -f4- /proc/self/mountinfo
stat -c '%n %F %a %u %g %t %T' /dev/* /dev/pts/* /dev/mqueue /dev/shm
ulimit -a
cat /proc/self/oom_score_adj
umask
pwd
env | sort
hostname
cat /proc/sys/kernel/domainname
for i in 0 1 2 3 4 5 6 7 8 9 10 11 12; do [ -e /proc/1/fd/$i ] && echo "fd $i $(readlink /proc/1/fd/$i)"; done
cat /proc/self/cgroup
cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced
`

// TestCInitMatchesGoInit runs the same containers with the Go init and
// with the C init and compares what they see: the C init must build the
// same container, and fail the same way where the Go init fails.
func TestCInitMatchesGoInit(t *testing.T) {
	requirePrivileged(t)
	checkNoLeaks(t)
	bundle := makeRootfs(t)
	root := filepath.Join(bundle, "rootfs")
	// A destination reached through the image's own symlinks (one
	// absolute, one dangling), and a file where a directory would go.
	for _, l := range [][2]string{{"/data", "rootfs/link"}, {"/data/not/yet", "rootfs/dangling"}} {
		if err := os.Symlink(l[0], filepath.Join(bundle, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc/afile"), []byte("image\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "hello"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hostFile := filepath.Join(host, "hello")
	// An image whose /proc is a symlink: both inits refuse it.
	badBundle := makeRootfs(t)
	os.Remove(filepath.Join(badBundle, "rootfs/proc"))
	if err := os.Symlink("/tmp", filepath.Join(badBundle, "rootfs/proc")); err != nil {
		t.Fatal(err)
	}

	// Image files the parsers must read as the Go init's do: a NUL in a
	// line, a non-ASCII space at a line's end, a user listed twice in a
	// group, and a line past bufio.Scanner's 64 KiB (which ends the
	// reading: "after" is not found).
	oddBundle := makeRootfs(t)
	passwd := "root:x:0:0:root:/root:/bin/sh\nbad\x00line:x:5:5::/x:/bin/sh\nlate:x:1001:1001::/home/late\u00a0\n" +
		"long:x:7:7:" + strings.Repeat("x", 70000) + ":/:/bin/sh\nafter:x:1002:1002::/:/bin/sh\n"
	group := "root:x:0:\ndup:x:3000:late,late\nempty:x:3001:\nsome:x:3002:,late\n"
	for f, c := range map[string]string{"etc/passwd": passwd, "etc/group": group} {
		if err := os.WriteFile(filepath.Join(oddBundle, "rootfs", f), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	asUser := func(u specs.User) func() *specs.Spec {
		return func() *specs.Spec {
			s := shSpec(stateScript)
			s.Process.User = u
			return s
		}
	}

	mode := os.FileMode(0o620)
	uid, gid := uint32(1000), uint32(2000)
	oom := 500
	cases := []struct {
		name   string
		bundle string
		spec   func() *specs.Spec
		extra  func() []*os.File
		goInit bool // the Go init's case (not one for the C init)
		fails  bool // the container fails to start, or its init does
	}{
		{name: "default", spec: func() *specs.Spec { return shSpec(stateScript) }},
		{name: "user by name, extra gids", spec: asUser(specs.User{Username: "app", AdditionalGids: []uint32{3000}})},
		{name: "user and group by name", spec: asUser(specs.User{Username: "app:extra"})},
		{name: "odd passwd and group", bundle: oddBundle, spec: asUser(specs.User{Username: "late"})},
		{name: "user past a long line", bundle: oddBundle, fails: true, spec: asUser(specs.User{Username: "after"})},
		{name: "oom_score_adj refused", fails: true, spec: func() *specs.Spec {
			s := shSpec(stateScript)
			bad := 5000
			s.Process.OOMScoreAdj = &bad
			return s
		}},
		{name: "sysctl refused", fails: true, spec: func() *specs.Spec {
			s := shSpec(stateScript)
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "not a number", "kernel.shm_rmid_forced": "1"}
			return s
		}},
		{name: "numeric user", spec: asUser(specs.User{UID: 65534, GID: 65534})},
		{name: "unknown user", fails: true, spec: asUser(specs.User{Username: "nosuchuser"})},
		{name: "unknown group", fails: true, spec: asUser(specs.User{Username: "app:nosuchgroup"})},
		{name: "capabilities, no_new_privs, seccomp", spec: func() *specs.Spec {
			s := shSpec(stateScript)
			caps := []string{"CAP_NET_ADMIN", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps, Inheritable: caps[:1], Ambient: caps[:1]}
			s.Process.NoNewPrivileges = true
			return withDefaultSeccomp(t, s)
		}},
		{name: "seccomp without no_new_privs", spec: func() *specs.Spec {
			return withDefaultSeccomp(t, shSpec(stateScript))
		}},
		{name: "rlimits, oom_score_adj, cwd, env", spec: func() *specs.Spec {
			s := shSpec(stateScript)
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 2048}, {Type: "RLIMIT_NPROC", Soft: 500, Hard: 600}}
			s.Process.OOMScoreAdj = &oom
			s.Process.Cwd = "/home/app"
			s.Process.Env = append(s.Process.Env, "HOME=/elsewhere", "A=b=c")
			return s
		}},
		{name: "PATH lookup", spec: func() *specs.Spec {
			s := shSpec("")
			s.Process.Args = []string{"sh", "-c", stateScript}
			s.Process.Env = []string{"PATH=/nope::/bin"}
			return s
		}},
		{name: "command not found", fails: true, spec: func() *specs.Spec {
			s := shSpec("")
			s.Process.Args = []string{"nonexistent-berth-command"}
			return s
		}},
		{name: "cwd missing", fails: true, spec: func() *specs.Spec {
			s := shSpec(stateScript)
			s.Process.Cwd = "/nonexistent-berth-cwd"
			return s
		}},
		{name: "mounts", spec: func() *specs.Spec {
			s := shSpec(stateScript + "cat /data/ro/hello /etc/afile /data/t/../ro/hello; touch /data/ro/x || echo read-only; stat -c '%n %a' /data/t /data/not/yet /link/deep/er")
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/data/ro", Type: "bind", Source: host, Options: []string{"rbind", "ro", "nosuid", "rslave"}},
				specs.Mount{Destination: "/etc/afile", Type: "bind", Source: hostFile, Options: []string{"bind"}},
				specs.Mount{Destination: "/data/t", Type: "tmpfs", Source: "tmpfs", Options: []string{"mode=1750", "size=1m", "noexec", "private"}},
				specs.Mount{Destination: "/dangling", Type: "tmpfs", Source: "tmpfs"},
				specs.Mount{Destination: "/link/deep/er", Type: "tmpfs", Source: "tmpfs", Options: []string{"ro"}},
				specs.Mount{Destination: "/data/ro/../ro2/.", Type: "bind", Source: host, Options: []string{"bind", "rw"}},
			)
			return s
		}},
		{name: "bind source missing", fails: true, spec: func() *specs.Spec {
			s := shSpec(stateScript)
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "/nonexistent-berth-source", Options: []string{"bind"}})
			return s
		}},
		{name: "bind file onto directory", fails: true, spec: func() *specs.Spec {
			s := shSpec(stateScript)
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: hostFile, Options: []string{"bind"}})
			return s
		}},
		{name: "/proc a symlink in the image", fails: true, bundle: badBundle, spec: func() *specs.Spec { return shSpec(stateScript) }},
		{name: "devices, sysctls, names", spec: func() *specs.Spec {
			s := shSpec(stateScript)
			s.Linux.Devices = []specs.LinuxDevice{
				{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: &mode, UID: &uid, GID: &gid},
				{Path: "dev/sub/loopx", Type: "b", Major: 7, Minor: 200},
				{Path: "/dev/fifo", Type: "p"},
			}
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1"}
			s.Hostname, s.Domainname = "cinit-test", "example.test"
			return s
		}},
		{name: "read-only root, propagation, no cgroup namespace", spec: func() *specs.Spec {
			s := shSpec(stateScript + "touch /x || echo read-only root")
			s.Root.Readonly = true
			s.Linux.RootfsPropagation = "rslave"
			var ns []specs.LinuxNamespace
			for _, n := range s.Linux.Namespaces {
				if n.Type != specs.CgroupNamespace {
					ns = append(ns, n)
				}
			}
			s.Linux.Namespaces = ns
			return s
		}},
		{name: "extra files", spec: func() *specs.Spec {
			return shSpec(stateScript + "cat <&3; cat <&4")
		}, extra: func() []*os.File {
			var fs []*os.File
			for _, n := range []string{"hello", "hello"} {
				f, err := os.Open(filepath.Join(host, n))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { f.Close() })
				fs = append(fs, f)
			}
			return fs
		}},
		{name: "reaper", spec: func() *specs.Spec {
			// An orphan to reap, a signal to forward, and the reaper's
			// own identity, capabilities and filter.
			s := shSpec(`(sh -c 'sleep 0.1' &); sleep 0.5; ps -o stat | grep -c Z
tr '\0' ' ' </proc/1/cmdline; echo
grep -E '^(Cap|NoNewPrivs|Seccomp|Uid|Gid|Groups)' /proc/1/status; id
trap 'echo got TERM; exit 0' TERM; kill -TERM 1; sleep 5 & wait; echo no signal`)
			s.Annotations = map[string]string{AnnotationInit: "true"}
			s.Process.User = specs.User{Username: "app"}
			s.Process.NoNewPrivileges = true
			return withDefaultSeccomp(t, s)
		}},
		{name: "terminal (Go init)", goInit: true, spec: func() *specs.Spec {
			s := shSpec("id")
			s.Process.Terminal = true
			return s
		}},
		{name: "unknown capability (Go init)", fails: true, goInit: true, spec: func() *specs.Spec {
			s := shSpec("id")
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_BERTH_NONE")
			return s
		}},
	}
	r := newTestRuntime(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := bundle
			if tc.bundle != "" {
				b = tc.bundle
			}
			extra := func() []*os.File {
				if tc.extra == nil {
					return nil
				}
				return tc.extra()
			}
			var goRun, cRun cinitRun
			t.Run("go", func(t *testing.T) {
				noCInit(t)
				goRun = runOnce(t, r, b, tc.spec(), extra())
			})
			t.Run("c", func(t *testing.T) {
				useCInit(t)
				cRun = runOnce(t, r, b, tc.spec(), extra())
			})
			if goRun.usedC {
				t.Fatal("the Go init's run used the C init")
			}
			if tc.goInit {
				if cRun.usedC && cRun.err == "" {
					t.Errorf("the C init started a container it cannot")
				}
			} else if !cRun.usedC && cRun.err == "" {
				t.Errorf("the C init did not start the container")
			}
			if cRun.err != goRun.err || cRun.exit != goRun.exit || cRun.out != goRun.out {
				t.Errorf("the inits differ:\nGo init: exit %d, error %q\nC init: exit %d, error %q\noutput lines only the Go init's container printed:\n%s\nonly the C init's:\n%s",
					goRun.exit, goRun.err, cRun.exit, cRun.err, lineDiff(goRun.out, cRun.out), lineDiff(cRun.out, goRun.out))
			}
			failed := strings.Contains(goRun.out, "berth init:") || goRun.err != "" || goRun.exit != 0
			switch {
			case failed && !tc.fails:
				t.Errorf("the container failed: exit %d, error %q, output:\n%s", goRun.exit, goRun.err, goRun.out)
			case !failed && tc.fails:
				t.Errorf("the container did not fail: output:\n%s", goRun.out)
			case failed:
				t.Logf("both fail alike: exit %d, %s%s", goRun.exit, goRun.err, goRun.out)
			}
		})
	}
}

// lineDiff returns the lines of a that b lacks, in order.
func lineDiff(a, b string) string {
	have := map[string]int{}
	for _, l := range strings.Split(b, "\n") {
		have[l]++
	}
	var out []string
	for _, l := range strings.Split(a, "\n") {
		if have[l] > 0 {
			have[l]--
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// BERTH_TEST_CINIT=1 runs the whole suite with the C init: every
// container it can start, it starts (make test does this once).
func init() {
	if os.Getenv("BERTH_TEST_CINIT") == "1" {
		b, err := cinitOnce()
		if err != nil {
			panic(err)
		}
		cinitBinary = b
	}
}

// TestReaperFds: the reaper of `init: true` stays pid 1 for the
// container's life, where the container's root could reopen any file it
// holds through /proc/1/fd. Neither init may hold one of the host's: the
// Go runtime kept its cgroup's CPU limit files open (GODEBUG in initEnv
// closes them), and the C reaper keeps nothing but stdio.
func TestReaperFds(t *testing.T) {
	requirePrivileged(t)
	checkNoLeaks(t)
	bundle := makeRootfs(t)
	spec := shSpec(`for f in /proc/1/fd/*; do echo "$f $(readlink $f)"; done`)
	spec.Annotations = map[string]string{AnnotationInit: "true"}
	for _, c := range []bool{false, true} {
		t.Run(fmt.Sprintf("C init %v", c), func(t *testing.T) {
			if c {
				useCInit(t)
			} else {
				noCInit(t)
			}
			r := newTestRuntime(t)
			res := runOnce(t, r, bundle, spec, nil)
			if res.err != "" || res.exit != 0 || res.usedC != c {
				t.Fatalf("exit %d, error %q, C init %v; output:\n%s", res.exit, res.err, res.usedC, res.out)
			}
			for _, l := range strings.Split(strings.TrimSpace(res.out), "\n") {
				fdPath, target, _ := strings.Cut(strings.TrimSpace(l), " ")
				if target == "" {
					continue // gone by the time it was read: the Go reaper's start
				}
				fd := strings.TrimPrefix(fdPath, "/proc/1/fd/")
				switch {
				case fd == "0" || fd == "1" || fd == "2":
				case c:
					t.Errorf("the C reaper holds fd %s (%s)", fd, target)
				case strings.HasPrefix(target, "anon_inode:"), strings.HasPrefix(target, "/memfd:berth-"):
					// the Go runtime's poller, and the init's own sealed copy
				case strings.HasPrefix(target, "pipe:"), target == "/dev/null":
					// inherited from the test process's environment
				default:
					t.Errorf("the Go reaper holds fd %s: %s", fd, target)
				}
			}
		})
	}
}

// TestCInitExecMatchesGoInit: processes exec'd into a running container
// (berth exec, health probes, hooks) by the Go init and by the C init see
// the same identity, capabilities, filters, limits, cwd and environment,
// and fail alike.
func TestCInitExecMatchesGoInit(t *testing.T) {
	requirePrivileged(t)
	checkNoLeaks(t)
	c, _ := startSleeper(t, func(s *specs.Spec) {
		s.Process.User = specs.User{Username: "app"}
		s.Process.NoNewPrivileges = true
		withDefaultSeccomp(t, s)
	})
	const script = `id; grep -E '^(Cap|NoNewPrivs|Seccomp|Groups)' /proc/self/status; ulimit -n -u; umask; pwd; env | sort
cat /proc/self/cgroup; hostname; for i in 0 1 2 3 4 5 6 7 8 9; do [ -e /proc/$$/fd/$i ] && echo "fd $i $(readlink /proc/$$/fd/$i)"; done; exit 3`
	oom := 300
	cases := []struct {
		name  string
		proc  func() *specs.Process
		fails bool
	}{
		{name: "the container's process", proc: func() *specs.Process { return c.ExecProcess("/bin/sh", "-c", script) }},
		{name: "root, cwd, env, rlimits", proc: func() *specs.Process {
			p := c.ExecProcess("sh", "-c", script)
			p.User = specs.User{UID: 0, GID: 0}
			p.Cwd = "/tmp"
			p.Env = append(p.Env, "GREETING=hello")
			p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 200}}
			p.OOMScoreAdj = &oom
			return p
		}},
		{name: "capabilities", proc: func() *specs.Process {
			p := c.ExecProcess("/bin/sh", "-c", script)
			caps := []string{"CAP_KILL", "CAP_CHOWN"}
			p.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
			p.NoNewPrivileges = false
			return p
		}},
		{name: "not found", fails: true, proc: func() *specs.Process { return c.ExecProcess("/nonexistent-berth-exec") }},
		{name: "unknown user", fails: true, proc: func() *specs.Process {
			p := c.ExecProcess("/bin/sh", "-c", script)
			p.User = specs.User{Username: "nosuchuser"}
			return p
		}},
		{name: "cwd missing", fails: true, proc: func() *specs.Process {
			p := c.ExecProcess("/bin/sh", "-c", script)
			p.Cwd = "/nonexistent-berth-cwd"
			return p
		}},
	}
	type run struct {
		out, err string
		exit     int
		usedC    bool
	}
	exec := func(t *testing.T, p *specs.Process) run {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, outPath := outFile(t)
		defer out.Close()
		norm := func(s string) string {
			return fdNumber.ReplaceAllString(strings.ReplaceAll(s, outPath, "OUT"), "/proc/self/fd/N")
		}
		proc, err := c.Exec(ctx, p, ExecOpts{IO: IO{Stdout: out, Stderr: out}})
		if err != nil {
			return run{err: norm(err.Error())}
		}
		es, err := proc.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(outPath)
		return run{out: norm(string(b)), exit: es.Code, usedC: proc.cinit}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var goRun, cRun run
			t.Run("go", func(t *testing.T) {
				noCInit(t)
				goRun = exec(t, tc.proc())
			})
			t.Run("c", func(t *testing.T) {
				useCInit(t)
				cRun = exec(t, tc.proc())
			})
			if goRun.usedC || (!cRun.usedC && cRun.err == "") {
				t.Errorf("C init used: %v by the Go run, %v by the C run", goRun.usedC, cRun.usedC)
			}
			if cRun != (run{out: goRun.out, err: goRun.err, exit: goRun.exit, usedC: cRun.usedC}) {
				t.Errorf("the inits differ:\nGo init: exit %d, error %q\nC init: exit %d, error %q\noutput lines only the Go init's process printed:\n%s\nonly the C init's:\n%s",
					goRun.exit, goRun.err, cRun.exit, cRun.err, lineDiff(goRun.out, cRun.out), lineDiff(cRun.out, goRun.out))
			}
			failed := goRun.err != "" || goRun.exit != 3
			if failed != tc.fails {
				t.Errorf("failed: %v, want %v: exit %d, error %q, output:\n%s", failed, tc.fails, goRun.exit, goRun.err, goRun.out)
			}
			if failed {
				t.Logf("both fail alike: exit %d, %s%s", goRun.exit, goRun.err, goRun.out)
			}
		})
	}
}

// TestProcMustBeProcfs: after pivot_root the inits reach their own fds
// through /proc/self/fd, and they used to read the capability count from
// /proc too. An image can ship files there: here a plain file where the
// exec fifo's link would be (the init went on without waiting for Start)
// and a cap_last_cap of its own ("-1" made the Go init drop nothing, a
// number over 2^31 the C init), with procfs mounted elsewhere. Both inits
// refuse the container, and the command never runs.
func TestProcMustBeProcfs(t *testing.T) {
	requirePrivileged(t)
	checkNoLeaks(t)
	for _, fake := range []string{"-1", "4294967295"} {
		bundle := makeRootfs(t)
		for f, c := range map[string]string{"proc/sys/kernel/cap_last_cap": fake + "\n", "proc/self/fd/4": ""} {
			p := filepath.Join(bundle, "rootfs", f)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(c), 0o666); err != nil {
				t.Fatal(err)
			}
		}
		spec := shSpec("echo ran; grep CapBnd /p/self/status")
		spec.Linux.MaskedPaths, spec.Linux.ReadonlyPaths = nil, nil
		for i := range spec.Mounts {
			if spec.Mounts[i].Destination == "/proc" {
				spec.Mounts[i].Destination = "/p"
			}
		}
		for _, c := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s C init %v", fake, c), func(t *testing.T) {
				if c {
					useCInit(t)
				} else {
					noCInit(t)
				}
				res := runOnce(t, newTestRuntime(t), bundle, spec, nil)
				const want = "container init: rootfs: /proc is not procfs: the container needs a proc mount there"
				if res.err != want || strings.Contains(res.out, "ran") {
					t.Errorf("exit %d, error %q, output %q; want the error %q", res.exit, res.err, res.out, want)
				}
			})
		}
	}
}

// withDefaultSeccomp gives s Docker's default seccomp profile.
func withDefaultSeccomp(t testing.TB, s *specs.Spec) *specs.Spec {
	t.Helper()
	prof, err := mobyseccomp.GetDefaultProfile(s)
	if err != nil {
		t.Fatal(err)
	}
	s.Linux.Seccomp = prof
	return s
}
