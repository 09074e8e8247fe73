package runtime

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// startSleeper runs `sleep 1000` (pid 1) in a fresh container.
func startSleeper(t testing.TB, mut func(*specs.Spec)) (*Container, string) {
	t.Helper()
	bundle := makeRootfs(t)
	spec := DefaultSpec(filepath.Join(bundle, "rootfs"), "/bin/sleep", "1000")
	spec.Hostname = "exec-host"
	if mut != nil {
		mut(spec)
	}
	r := newTestRuntime(t)
	c, err := r.Create(context.Background(), testID(t), CreateOpts{Bundle: bundle, Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Delete(context.Background(), true); err != nil {
			t.Error(err)
		}
	})
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	// Start returns once the init is released, as runc's does; the
	// tests look at pid 1 as the user command, so wait for its exec.
	pid, _ := c.Init()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			t.Fatalf("init %d: %v", pid, err)
		}
		if string(b) == "/bin/sleep\x001000\x00" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("init %d did not exec the command: cmdline %q", pid, b)
		}
		time.Sleep(time.Millisecond)
	}
	return c, bundle
}

func execOut(t *testing.T, c *Container, p *specs.Process) (string, ExitStatus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, outPath := outFile(t)
	defer out.Close()
	proc, err := c.Exec(ctx, p, ExecOpts{IO: IO{Stdout: out, Stderr: out}})
	if err != nil {
		t.Fatalf("exec: %v", err)
	}
	es, err := proc.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(outPath)
	return string(b), es
}

func TestExec(t *testing.T) {
	requirePrivileged(t)
	checkNoLeaks(t)
	testExec(t)
}

// TestSmallExec runs TestExec's execs through the small init built with
// cgo (berth-exec, as the Makefile builds it to embed it in berth)
// instead of the test binary.
//
// BERTH_SMALL_EXEC names a built one where there is no Go to build one
// (the cgroup v2 guest, .ci/v2guest).
func TestSmallExec(t *testing.T) {
	requirePrivileged(t)
	checkNoLeaks(t)
	useSmallExec(t)
	noCInit(t)
	f, err := execExe()
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != int64(len(execBinary)) {
		t.Fatalf("Exec runs a %d-byte file, want the %d-byte small exec", st.Size(), len(execBinary))
	}
	testExec(t)
}

func testExec(t *testing.T) {
	c, _ := startSleeper(t, func(s *specs.Spec) {
		s.Process.NoNewPrivileges = true
		prof, err := mobyseccomp.GetDefaultProfile(s)
		if err != nil {
			t.Fatal(err)
		}
		s.Linux.Seccomp = prof
	})
	out, es := execOut(t, c, c.ExecProcess("/bin/sh", "-c", `echo pid=$$; tr '\0' ' ' </proc/1/cmdline; echo; hostname; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; cat /proc/self/cgroup | grep -c ':/$'; exit 7`))
	if es.Code != 7 {
		t.Fatalf("exit %+v output:\n%s", es, out)
	}
	mask, _ := capMask(DefaultCapabilities, lastCapability())
	wantLines(t, out, "/bin/sleep 1000", "exec-host", fmt.Sprintf("CapEff:\t%016x", mask), "NoNewPrivs:\t1", "Seccomp:\t2")
	if strings.Contains(out, "pid=1\n") || !strings.Contains(out, "pid=") {
		t.Errorf("exec'd shell is pid 1 or missing:\n%s", out)
	}

	p := c.ExecProcess("/bin/sh", "-c", `id; pwd; echo $GREETING`)
	p.User = specs.User{Username: "app"}
	p.Cwd = "/tmp"
	p.Env = append(p.Env, "GREETING=hello")
	out, es = execOut(t, c, p)
	wantLines(t, out, "uid=1000(app) gid=1000(app) groups=2000(extra)", "/tmp", "hello")

	// the exec'd process joins the container's cgroup
	p = c.ExecProcess("/bin/sleep", "1000")
	proc, err := c.Exec(context.Background(), p, ExecOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Cgroup() != nil {
		procs, err := c.Cgroup().Procs()
		if err != nil || !slices.Contains(procs, proc.Pid) {
			t.Errorf("exec'd pid %d not in the cgroup %v (%v)", proc.Pid, procs, err)
		}
	}
	proc.Signal(9)
	if es, _ := proc.Wait(context.Background()); es.Code != 137 {
		t.Errorf("killed exec: %+v", es)
	}

	if _, err := c.Exec(context.Background(), c.ExecProcess("/nonexistent"), ExecOpts{}); err == nil || !strings.Contains(err.Error(), "nonexistent") {
		t.Errorf("exec of a missing binary: %v", err)
	}
}

func TestExecTerminal(t *testing.T) {
	requirePrivileged(t)
	c, _ := startSleeper(t, nil)
	p := c.ExecProcess("/bin/sh", "-c", `echo start; tty; stty size; read x; echo got=$x`)
	p.Terminal = true
	p.ConsoleSize = &specs.Box{Height: 33, Width: 111}
	proc, err := c.Exec(context.Background(), p, ExecOpts{})
	if err != nil {
		t.Fatal(err)
	}
	m := proc.Console()
	if m == nil {
		t.Fatal("no console")
	}
	defer m.Close()
	if _, err := m.Write([]byte("abc\n")); err != nil {
		t.Fatal(err)
	}
	var got []string
	sc := bufio.NewScanner(m)
	for sc.Scan() {
		got = append(got, strings.TrimSpace(sc.Text()))
		if strings.HasPrefix(got[len(got)-1], "got=") {
			break
		}
	}
	es, _ := proc.Wait(context.Background())
	all := strings.Join(got, "\n")
	if es.Code != 0 || !strings.Contains(all, "/dev/pts/0") || !strings.Contains(all, "33 111") || !strings.Contains(all, "got=abc") {
		t.Fatalf("terminal exec: %+v\n%s", es, all)
	}
}

func TestExecStoppedContainer(t *testing.T) {
	requirePrivileged(t)
	bundle := makeRootfs(t)
	r := newTestRuntime(t)
	c, err := r.Create(context.Background(), testID(t), CreateOpts{Bundle: bundle, Spec: shSpec("true")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Delete(context.Background(), true) })
	c.Start()
	c.Wait(context.Background())
	if _, err := c.Exec(context.Background(), c.ExecProcess("true"), ExecOpts{}); err == nil {
		t.Fatal("exec into a stopped container worked")
	}
}
