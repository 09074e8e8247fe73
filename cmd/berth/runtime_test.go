package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/supervisor/runtime"
)

func requirePrivilegedCLI(t testing.TB) {
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

var buildOnce struct {
	sync.Once
	path string
	dir  string // the temporary directory the binary was built in
	err  error
}

// TestMain removes the binary berthBinary built once the tests are done.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildOnce.dir != "" {
		os.RemoveAll(buildOnce.dir)
	}
	os.Exit(code)
}

// berthBinary builds the berth binary once per test run: the CLI is
// tested as users and conformance suites run it, as a separate process.
func berthBinary(t *testing.T) string {
	buildOnce.Do(func() {
		// BERTH_BIN, or a berth on PATH where there is no Go toolchain
		// (the CI's v2 guest ships /usr/local/bin/berth).
		if p := os.Getenv("BERTH_BIN"); p != "" {
			buildOnce.path = p
			return
		}
		if _, err := exec.LookPath("go"); err != nil {
			buildOnce.path, buildOnce.err = exec.LookPath("berth")
			return
		}
		dir, err := os.MkdirTemp("", "berth-cli-test")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.dir = dir
		buildOnce.path = filepath.Join(dir, "berth")
		out, err := exec.Command("go", "build", "-o", buildOnce.path, ".").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

func cliBundle(t *testing.T, mut func(*specs.Spec)) string {
	t.Helper()
	bundle := t.TempDir()
	root := filepath.Join(bundle, "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev", "etc", "tmp"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("%v: the tests need busybox-static (make deps installs it)", err)
	}
	os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755)
	for _, a := range []string{"sh", "sleep", "cat", "echo", "tr"} {
		os.Symlink("busybox", filepath.Join(root, "bin", a))
	}
	s := runtime.DefaultSpec("rootfs", "sleep", "1000")
	if mut != nil {
		mut(s)
	}
	b, _ := json.Marshal(s)
	os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644)
	return bundle
}

type cli struct {
	t         *testing.T
	bin, root string
}

// run runs the CLI with its output in a file: a pipe would stay open as
// long as the container (which inherits create's stdio) runs.
func (c cli) run(args ...string) (string, error) {
	cmd := exec.Command(c.bin, append([]string{"--root", c.root, "runtime"}, args...)...)
	out, err := os.CreateTemp(c.t.TempDir(), "out")
	if err != nil {
		return "", err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	b, _ := os.ReadFile(out.Name())
	return string(b), err
}

func (c cli) must(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("berth runtime %v: %v\n%s", args, err, out)
	}
	return out
}

func (c cli) status(id string) specs.State {
	c.t.Helper()
	var st specs.State
	if err := json.Unmarshal([]byte(c.must("state", id)), &st); err != nil {
		c.t.Fatal(err)
	}
	return st
}

func TestRuntimeCLILifecycle(t *testing.T) {
	requirePrivilegedCLI(t)
	c := cli{t: t, bin: berthBinary(t), root: t.TempDir()}
	bundle := cliBundle(t, func(s *specs.Spec) { s.Version = "1.0.2" })
	id := fmt.Sprintf("cli-%d", os.Getpid())
	pidFile := filepath.Join(t.TempDir(), "pid")
	t.Cleanup(func() { c.run("delete", "--force", id) })
	c.must("create", "--bundle", bundle, "--pid-file", pidFile, id)
	st := c.status(id)
	pb, _ := os.ReadFile(pidFile)
	if st.Status != specs.StateCreated || strconv.Itoa(st.Pid) != string(pb) {
		t.Fatalf("after create: %+v, pid file %q", st, pb)
	}
	c.must("start", id)
	if st := c.status(id); st.Status != specs.StateRunning {
		t.Fatalf("after start: %+v", st)
	}
	if out := c.must("exec", id, "sh", "-c", "tr '\\0' ' ' </proc/1/cmdline"); strings.TrimSpace(out) != "sleep 1000" {
		t.Fatalf("exec: %q", out)
	}
	if out := c.must("exec", "--cap", "NET_ADMIN", "--no-new-privs", "-g", "4242", "-u", "1:1", id, "sh", "-c", "grep -E '^(CapEff|NoNewPrivs|Groups):' /proc/self/status"); !strings.Contains(out, "NoNewPrivs:\t1") || !strings.Contains(out, "Groups:\t4242") || !strings.Contains(out, "CapEff:\t0000000000000000") {
		// uid 1 without ambient caps: effective is empty, the rest applies
		t.Fatalf("exec flags: %s", out)
	}
	if out, err := c.run("exec", id, "sh", "-c", "exit 5"); err == nil || !strings.Contains(err.Error(), "exit status 5") {
		t.Fatalf("exec exit code: %v %s", err, out)
	}
	c.must("pause", id)
	if st := c.status(id); st.Status != "paused" {
		t.Fatalf("after pause: %+v", st)
	}
	c.must("resume", id)
	if out := c.must("list"); !strings.Contains(out, id) || !strings.Contains(out, "running") {
		t.Fatalf("list: %s", out)
	}
	if _, err := c.run("delete", id); err == nil {
		t.Fatal("delete of a running container succeeded")
	}
	c.must("kill", id, "KILL")
	deadline := time.Now().Add(10 * time.Second)
	for c.status(id).Status != specs.StateStopped {
		if time.Now().After(deadline) {
			t.Fatal("container did not stop")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.must("delete", id)
	if out, err := c.run("state", id); err == nil {
		t.Fatalf("state after delete: %s", out)
	}

	bad := cliBundle(t, func(s *specs.Spec) { s.Version = "2.0.0" })
	if out, err := c.run("create", "--bundle", bad, id+"-bad"); err == nil || !strings.Contains(out, "ociVersion") {
		t.Fatalf("ociVersion 2.0.0 accepted: %v %s", err, out)
	}
}

func TestRuntimeCLIRunExitCode(t *testing.T) {
	requirePrivilegedCLI(t)
	c := cli{t: t, bin: berthBinary(t), root: t.TempDir()}
	bundle := cliBundle(t, func(s *specs.Spec) { s.Process.Args = []string{"sh", "-c", "echo hi; exit 3"} })
	out, err := c.run("run", "--bundle", bundle, fmt.Sprintf("run-%d", os.Getpid()))
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 || !strings.Contains(out, "hi") {
		t.Fatalf("run: %v %q", err, out)
	}
	if out := c.must("list"); strings.Count(out, "\n") != 1 {
		t.Fatalf("run left a container: %s", out)
	}
}

func TestRuntimeCLIConsoleSocket(t *testing.T) {
	requirePrivilegedCLI(t)
	c := cli{t: t, bin: berthBinary(t), root: t.TempDir()}
	bundle := cliBundle(t, func(s *specs.Spec) {
		s.Process.Terminal = true
		s.Process.Args = []string{"sh", "-c", "tty; sleep 1000"}
	})
	sock := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan *os.File, 1)
	go func() {
		conn, err := l.AcceptUnix()
		if err != nil {
			got <- nil
			return
		}
		defer conn.Close()
		buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			got <- nil
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		fds, _ := unix.ParseUnixRights(&msgs[0])
		got <- os.NewFile(uintptr(fds[0]), "master")
	}()
	id := fmt.Sprintf("tty-%d", os.Getpid())
	t.Cleanup(func() { c.run("delete", "--force", id) })
	if out, err := c.run("create", "--bundle", bundle, id); err == nil || !strings.Contains(out, "console-socket") {
		t.Fatalf("terminal without --console-socket: %v %s", err, out)
	}
	c.must("create", "--bundle", bundle, "--console-socket", sock, id)
	master := <-got
	if master == nil {
		t.Fatal("no pty master received")
	}
	defer master.Close()
	c.must("start", id)
	buf := make([]byte, 64)
	n, _ := master.Read(buf)
	if !strings.Contains(string(buf[:n]), "/dev/pts/0") {
		t.Fatalf("tty output %q", buf[:n])
	}
	c.must("delete", "--force", id)
}
