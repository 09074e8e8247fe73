package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPty opens a pty pair of the host's devpts, sized rows x cols.
func openPty(t *testing.T, rows, cols uint16) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(os.NewSyscallError("ioctl(TIOCSPTLCK)", err))
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(os.NewSyscallError("ioctl(TIOCGPTN)", err))
	}
	if err := unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(os.NewSyscallError("ioctl(TIOCSWINSZ)", err))
	}
	sl, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sl.Close() })
	return m, sl
}

// ptyBerth starts berth args on a terminal of its own (stdin, stdout and
// stderr on a pty of size 33x101, its controlling terminal) and returns
// the terminal's master side, what berth wrote to it so far, and a wait
// for its exit code.
func (s *stackEnv) ptyBerth(ctx context.Context, args ...string) (master *os.File, out *syncBuffer, wait func() int) {
	t := s.t
	t.Helper()
	master, slave := openPty(t, 33, 101)
	cmd := s.berthCmd(ctx, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	out = &syncBuffer{}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(out, master) // ends with EIO once berth is gone
	}()
	wait = func() int {
		err := cmd.Wait()
		select {
		case <-copied:
		case <-time.After(2 * time.Second):
		}
		s.remember()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &ee):
			return ee.ExitCode()
		}
		t.Fatalf("berth %v: %v\noutput:\n%s", args, err, out)
		return -1
	}
	return master, out, wait
}

// waitOutput waits until out holds want.
func waitOutput(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %q in the output:\n%q", want, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runContainers lists the stack's one-off containers (ps -a).
func (s *stackEnv) runContainers(service string) []string {
	s.t.Helper()
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(s.must("ps", "-a", "--format", "json").stdout), "\n") {
		var e psEntry
		if line == "" {
			continue
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			s.t.Fatalf("ps --format json line %q: %v", line, err)
		}
		if strings.HasPrefix(e.Name, s.project+"-"+service+"-run-") {
			names = append(names, e.Name)
		}
	}
	return names
}

// shellSession runs `berth run --rm --no-deps client sh` of the fetch
// stack on a terminal and waits for the shell's prompt.
func shellSession(t *testing.T) (s *stackEnv, master *os.File, out *syncBuffer, wait func() int) {
	s = newStack(t, "fetch")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	master, out, wait = s.ptyBerth(ctx, "run", "--rm", "--no-deps", "client", "sh")
	waitOutput(t, out, "# ") // the shell's prompt
	s.remember()
	return s, master, out, wait
}

// typeLine writes line to the terminal, as typed, with its Enter.
func typeLine(t *testing.T, master *os.File, line string) {
	t.Helper()
	if _, err := io.WriteString(master, line+"\r"); err != nil {
		t.Fatal(err)
	}
}

// endSession waits for berth's exit code, which must be want, and checks
// that --rm removed the container.
func endSession(t *testing.T, s *stackEnv, out *syncBuffer, wait func() int, want int) {
	t.Helper()
	if code := wait(); code != want {
		t.Errorf("berth run exited %d, want %d (the shell's exit); output:\n%q", code, want, out.String())
	}
	if names := s.runContainers("client"); len(names) != 0 {
		t.Errorf("run --rm left %v", names)
	}
}

// berth run on a terminal gives the command a pty of the terminal's size
// (also after a resize), joined to it: what is typed reaches a shell, its output comes back,
// berth exits with its code, and --rm removes the container.
func TestRunPty(t *testing.T) {
	s, master, out, wait := shellSession(t)
	typeLine(t, master, "tty; stty size; echo $((6*7))")
	waitOutput(t, out, "42\r\n")
	// Resizing our terminal sends berth SIGWINCH (it leads the
	// terminal's foreground process group): the pty follows.
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120}); err != nil {
		t.Fatal(os.NewSyscallError("ioctl(TIOCSWINSZ)", err))
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "40 120\r\n") && time.Now().Before(deadline) {
		typeLine(t, master, "stty size")
		time.Sleep(200 * time.Millisecond)
	}
	typeLine(t, master, "exit 3")
	endSession(t, s, out, wait, 3)
	got := out.String()
	for _, want := range []string{"/dev/pts/", "33 101\r\n", "42\r\n", "40 120\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%q", want, got)
		}
	}
}

// A pty session outlives kill -9 of the daemon: the master is ours, the
// keeper brings a daemon back, and berth learns the exit code from it.
func TestRunPtySurvivesDaemonKill(t *testing.T) {
	s, master, out, wait := shellSession(t)
	killDaemon(t)
	typeLine(t, master, "echo alive $((40+2))")
	waitOutput(t, out, "alive 42")
	typeLine(t, master, "exit 7")
	endSession(t, s, out, wait, 7)
}

// Without a terminal (or with -T) our stdin is the command's, streamed
// as it comes, and its end of file reaches it.
func TestRunStdin(t *testing.T) {
	s := newStack(t, "fetch")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// printf 'a\nb\n' | berth run -T --rm client sh -c 'wc -l'
	cmd := s.berthCmd(ctx, "run", "-T", "--rm", "--no-deps", "client", "sh", "-c", "wc -l")
	cmd.Stdin = strings.NewReader("a\nb\n")
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("run -T wc -l: %v (%s)", err, stderrOf(err))
	}
	if strings.TrimSpace(string(b)) != "2" {
		t.Errorf("wc -l of two lines printed %q, want 2", b)
	}

	// cat echoes a line while stdin is open, and ends when it closes.
	cmd = s.berthCmd(ctx, "run", "-T", "--no-deps", "client", "cat")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	cmd.Stdin = pr
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	if _, err := io.WriteString(pw, "ping\n"); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, &stdout, "ping\n")
	s.remember()
	pw.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run -T cat after end of file: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run -T cat did not end when its stdin closed")
	}
	// Without --rm the container stays, exited, with its output logged.
	names := s.runContainers("client")
	if len(names) != 1 {
		t.Fatalf("one-off containers: %v, want one", names)
	}
	if logs := s.must("logs", "--no-log-prefix", "client").stdout; strings.TrimSpace(logs) != "ping" {
		t.Errorf("logs of %s: %q, want ping", names[0], logs)
	}
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return fmt.Sprint(err)
}
