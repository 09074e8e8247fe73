package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

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

var busyboxApplets = []string{
	"sh", "cat", "echo", "sleep", "true", "false", "hostname", "id", "ls", "grep",
	"mount", "readlink", "stty", "touch", "mkdir", "ps", "kill", "wc", "head", "dd", "sed", "stat", "test", "env",
}

// makeRootfs builds a tiny rootfs from /bin/busybox (Debian's
// busybox-static) in a temp dir, with users root, app (1000, in group
// extra 2000) and nobody.
func makeRootfs(t testing.TB) (bundle string) {
	t.Helper()
	bundle = t.TempDir()
	root := filepath.Join(bundle, "rootfs")
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp", "home/app", "data"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(root, "tmp"), 0o1777)
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("/bin/busybox is needed (apt-get install busybox-static): %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range busyboxApplets {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\napp:x:1000:\nextra:x:2000:app\nnogroup:x:65534:\n",
	}
	for p, c := range files {
		if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return bundle
}

func testID(t testing.TB) string {
	name := strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	return fmt.Sprintf("t%d-%s-%d", os.Getpid(), strings.ToLower(name), time.Now().UnixNano()%1e6)
}

func newTestRuntime(t testing.TB) *Runtime {
	t.Helper()
	r, err := New(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// result is what a container run produced.
type result struct {
	out  string
	exit ExitStatus
}

// runContainer creates, starts and waits for a container and deletes it;
// stdout and stderr go to one file whose content is returned.
func runContainer(t testing.TB, r *Runtime, bundle string, spec *specs.Spec) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, outPath := outFile(t)
	defer out.Close()
	id := testID(t)
	c, err := r.Create(ctx, id, CreateOpts{Bundle: bundle, Spec: spec, IO: IO{Stdout: out, Stderr: out}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), true) })
	if err := c.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	es := waitDelete(t, ctx, c)
	b, _ := os.ReadFile(outPath)
	return result{out: string(b), exit: es}
}

func shSpec(script string) *specs.Spec {
	return DefaultSpec("rootfs", "/bin/sh", "-c", script)
}

// snapshot records what must be unchanged after a test: our fds, and
// the mounts (other tests on this machine mount and unmount too, so the
// comparison is by content: no new mount may name a path of ours).
type snapshot struct {
	mounts map[string]bool
	fds    int
}

func takeSnapshot(t testing.TB) snapshot {
	// The sealed copy of our binary is made once per process and kept.
	if _, err := sealedSelfExe(); err != nil {
		t.Fatal(err)
	}
	m, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	s := snapshot{mounts: map[string]bool{}}
	for _, fd := range fds {
		// The sealed copies of the inits live as long as the process,
		// made by whichever test first starts one: not a leak.
		if l, _ := os.Readlink("/proc/self/fd/" + fd.Name()); !strings.HasPrefix(l, "/memfd:berth-") {
			s.fds++
		}
	}
	for _, l := range strings.Split(string(m), "\n") {
		if f := strings.Fields(l); len(f) > 4 {
			s.mounts[f[4]] = true
		}
	}
	return s
}

// leaks lists what after has that s had not: mounts below the test's
// temp directories (t.TempDir names them after the test), fds, children.
func (s snapshot) leaks(t testing.TB, after snapshot) []string {
	var out []string
	prefix := filepath.Join(os.TempDir(), strings.NewReplacer("/", "_", "#", "_").Replace(t.Name()))
	for mp := range after.mounts {
		if !s.mounts[mp] && strings.HasPrefix(mp, prefix) {
			out = append(out, "mount "+mp)
		}
	}
	for _, d := range ourCgroups() {
		out = append(out, "cgroup "+d)
	}
	for _, pid := range childPids() {
		out = append(out, fmt.Sprintf("child process %d", pid))
	}
	if after.fds != s.fds {
		out = append(out, fmt.Sprintf("fds: %d before, %d after", s.fds, after.fds))
	}
	return out
}

// startUntil creates and starts a container whose output goes to a
// file, waits until that output holds marker and returns the container
// and the output so far. The container is deleted at cleanup.
func startUntil(t testing.TB, r *Runtime, bundle string, spec *specs.Spec, marker string) (*Container, string) {
	t.Helper()
	outPath := filepath.Join(t.TempDir(), "out")
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	return startUntilIO(t, r, bundle, spec, IO{Stdout: out, Stderr: out}, outPath, marker)
}

// startUntilIO is startUntil with the container's IO given; its output
// must reach outPath.
func startUntilIO(t testing.TB, r *Runtime, bundle string, spec *specs.Spec, io IO, outPath, marker string) (*Container, string) {
	t.Helper()
	c, err := r.Create(context.Background(), testID(t), CreateOpts{Bundle: bundle, Spec: spec, IO: io})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Delete(context.Background(), true) })
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, outPath, marker)
	b, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	return c, string(b)
}

// waitFor polls a file until it contains s (containers write to it).
func waitFor(t testing.TB, path, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), s) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	b, _ := os.ReadFile(path)
	t.Fatalf("timed out waiting for %q in output:\n%s", s, b)
}

// childPids lists the live children of this process (a container init or
// exec'd process we forgot to reap or kill).
func childPids() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	me := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b)[i+2:])
		if len(f) > 1 && f[1] == strconv.Itoa(me) {
			out = append(out, pid)
		}
	}
	return out
}

// ourCgroups lists cgroup directories of this test process's containers
// (testID names them t<pid>-...) anywhere in the first levels of every
// hierarchy.
func ourCgroups() []string {
	prefix := fmt.Sprintf("t%d-", os.Getpid())
	var out []string
	root := "/sys/fs/cgroup"
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if strings.Count(strings.TrimPrefix(p, root), "/") > 5 {
			return filepath.SkipDir
		}
		if strings.HasPrefix(d.Name(), prefix) {
			out = append(out, p)
			return filepath.SkipDir
		}
		return nil
	})
	return out
}

// waitDelete waits for the started container c to exit, deletes it and
// returns how it exited.
func waitDelete(t testing.TB, ctx context.Context, c *Container) ExitStatus {
	t.Helper()
	es, err := c.Wait(ctx)
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	if err := c.Delete(ctx, false); err != nil {
		t.Fatalf("delete: %v", err)
	}
	return es
}

// outFile is a new file for a process's output, and its path; the
// caller closes it.
func outFile(t testing.TB) (*os.File, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "out")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return f, p
}
