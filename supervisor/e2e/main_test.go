package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/netstack"
)

// Set by TestMain when the tests run privileged.
var (
	berthBin string // the berth binary under test
	root     string // its berth root, with the busybox image imported
	examples string // the repository's examples/ directory
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
	if berthBin == "" {
		t.Fatal("TestMain did not set up berth (see its output)")
	}
}

func TestMain(m *testing.M) {
	if os.Getenv("BERTH_PRIVILEGED") != "1" || os.Geteuid() != 0 {
		os.Exit(m.Run()) // every test skips (or fails in CI)
	}
	code, err := setupAndRun(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func setupAndRun(m *testing.M) (code int, retErr error) {
	ex, err := filepath.Abs("../../examples")
	if err != nil {
		return 1, err
	}
	examples = ex
	tmp, err := os.MkdirTemp("", "berth-e2e-")
	if err != nil {
		return 1, err
	}
	root = filepath.Join(tmp, "root")
	berthBin = os.Getenv("BERTH_E2E_BINARY")
	if berthBin == "" {
		// The cgroup v2 guest (.ci/v2guest) ships a static berth and no Go.
		berthBin = os.Getenv("BERTH_BINARY")
	}
	if berthBin == "" {
		berthBin = filepath.Join(tmp, "berth")
		build := exec.Command("go", "build", "-o", berthBin, "github.com/berth-dev/berth/cmd/berth")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return 1, fmt.Errorf("go build: %w", err)
		}
	}
	imp := exec.Command(filepath.Join(examples, "images", "make-busybox.sh"), berthBin)
	imp.Env = append(os.Environ(), "BERTH_ROOT="+root)
	if out, err := imp.CombinedOutput(); err != nil {
		return 1, fmt.Errorf("make-busybox.sh: %v: %s", err, out)
	}

	code = m.Run()

	// The daemon (started on demand by the first command) goes; then
	// nothing of the root may be left.
	stop := exec.Command(berthBin, "daemon", "stop")
	stop.Env = append(os.Environ(), "BERTH_ROOT="+root)
	if out, err := stop.CombinedOutput(); err != nil {
		return code, fmt.Errorf("berth daemon stop: %v: %s", err, out)
	}
	var leaks []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		leaks = rootLeaks(root)
		if len(leaks) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(leaks) > 0 {
		return code, fmt.Errorf("left behind by the berth root %s:\n  %s", root, strings.Join(leaks, "\n  "))
	}
	if os.Getenv("BERTH_E2E_KEEP") == "" {
		os.RemoveAll(tmp)
	}
	return code, nil
}

// rootLeaks lists what of root is still on the host once its daemon is
// gone: processes naming the root, mounts below it, its nftables table.
func rootLeaks(root string) []string {
	var leaks []string
	for _, pid := range pids() {
		cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		environ, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
		if pid != os.Getpid() && (bytes.Contains(cmdline, []byte(root)) || bytes.Contains(environ, []byte("BERTH_ROOT="+root+"\x00"))) {
			leaks = append(leaks, fmt.Sprintf("process %d: %s", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
		}
	}
	for _, mp := range mountsUnder(root) {
		leaks = append(leaks, "mount "+mp)
	}
	if out, err := exec.Command("nft", "list", "tables").Output(); err == nil {
		table := netstack.TableName(root)
		if bytes.Contains(out, []byte(" "+table+"\n")) {
			leaks = append(leaks, "nftables table ip "+table)
		}
	}
	return leaks
}

func pids() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// mountsUnder lists the mount points at or below dir.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return []string{"cannot read mountinfo: " + err.Error()}
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// result is what one berth command did.
type result struct {
	args   []string
	stdout string
	stderr string
	code   int
}

func (r result) String() string {
	return fmt.Sprintf("berth %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// stackEnv runs berth on one example stack.
type stackEnv struct {
	t       *testing.T
	dir     string   // the stack's directory
	project string   // its project name
	env     []string // extra environment
	track   *trackedNames
}

// newStack runs the example stack name, under a project name unique to
// this test process, and registers `down -v` and the leak check as
// cleanup.
func newStack(t *testing.T, name string, env ...string) *stackEnv {
	t.Helper()
	requirePrivileged(t)
	// A project name of our own: cgroups are named after containers
	// (/berth/PROJECT-SERVICE-N) whatever the root, so a name another
	// test (or a person) on this host uses too would share them.
	project := fmt.Sprintf("%s-e2e%d", name, os.Getpid())
	env = append(env, "COMPOSE_PROJECT_NAME="+project)
	s := &stackEnv{t: t, dir: filepath.Join(examples, name), project: project, env: env}
	var tracked trackedNames
	t.Cleanup(func() {
		r := s.berth("down", "-v", "-t", "1")
		if r.code != 0 {
			t.Errorf("cleanup: %s", r)
		}
		if len(tracked.containers) == 0 || len(tracked.links) == 0 {
			t.Errorf("leak check: saw no containers (%v) or links (%v) of %s", tracked.containers, tracked.links, s.project)
		}
		t.Logf("leak check of %s: containers %v, links %v", s.project, tracked.containers, tracked.links)
		s.checkNoLeaks(tracked.containers, tracked.links)
	})
	s.track = &tracked
	return s
}

// trackedNames remembers every container and link a stack had, for the
// leak check after down.
type trackedNames struct {
	containers []string
	links      []string
}

func (s *stackEnv) berth(args ...string) result {
	return s.berthCtx(context.Background(), args...)
}

// berthCmd is berth args as the stack runs it, for a test to wire its
// stdio.
func (s *stackEnv) berthCmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, berthBin, args...)
	cmd.Dir = s.dir
	cmd.Env = append(append(os.Environ(), "BERTH_ROOT="+root), s.env...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// bgBerth is berth running in the background (attached up, logs -f,
// events): its output so far and, once exited is closed, how it ended.
type bgBerth struct {
	cmd       *exec.Cmd
	out, errb syncBuffer
	exited    chan struct{}
	err       error
}

// start runs berth args in the background on the stack; the test's
// cleanup kills it if it still runs.
func (s *stackEnv) start(args ...string) *bgBerth {
	s.t.Helper()
	b := &bgBerth{cmd: s.berthCmd(context.Background(), args...), exited: make(chan struct{})}
	b.cmd.Stdout, b.cmd.Stderr = &b.out, &b.errb
	if err := b.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go func() { b.err = b.cmd.Wait(); close(b.exited) }()
	s.t.Cleanup(func() {
		b.cmd.Process.Kill()
		<-b.exited
	})
	return b
}

// interrupt sends SIGINT and waits up to 30 s for berth to end, failing
// the test if it does not; it returns the exit code.
func (b *bgBerth) interrupt(t *testing.T) int {
	t.Helper()
	b.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-b.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("berth %s did not end after SIGINT\n%s", strings.Join(b.cmd.Args[1:], " "), b.dump())
	}
	return b.cmd.ProcessState.ExitCode()
}

func (b *bgBerth) dump() string {
	return fmt.Sprintf("stdout:\n%s\nstderr:\n%s", b.out.String(), b.errb.String())
}

func (s *stackEnv) berthCtx(ctx context.Context, args ...string) result {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := s.berthCmd(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{args: args, stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		s.t.Fatalf("berth %v: %v", args, err)
	}
	s.remember()
	return r
}

// must runs berth and fails the test unless it exits 0.
func (s *stackEnv) must(args ...string) result {
	s.t.Helper()
	r := s.berth(args...)
	if r.code != 0 {
		s.t.Fatalf("%s", r)
	}
	return r
}

// psEntry is what the tests read of `ps --format json`.
type psEntry struct {
	ID           string
	Name         string
	Service      string
	Project      string
	State        string
	Health       string
	ExitCode     int
	RestartCount int
	Publishers   []struct {
		URL           string
		TargetPort    int
		PublishedPort int
		Protocol      string
	}
	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
	Pid        int
}

// ps returns `ps -a --format json`, one entry per line, by service.
func (s *stackEnv) ps() map[string]psEntry {
	s.t.Helper()
	r := s.must("ps", "-a", "--format", "json")
	out := map[string]psEntry{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if line == "" {
			continue
		}
		var e psEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			s.t.Fatalf("ps --format json line %q: %v", line, err)
		}
		if e.Project != s.project {
			s.t.Errorf("ps of %s lists %s of project %q", s.project, e.Name, e.Project)
		}
		out[e.Service] = e
	}
	return out
}

// remember records the stack's containers and links (from the root's
// files) for the leak check.
func (s *stackEnv) remember() {
	if s.track == nil {
		return
	}
	ents, _ := os.ReadDir(filepath.Join(root, "state", "containers"))
	for _, e := range ents {
		name := strings.TrimSuffix(e.Name(), ".json")
		if strings.HasPrefix(name, s.project+"-") && !containsStr(s.track.containers, name) {
			s.track.containers = append(s.track.containers, name)
		}
	}
	b, err := os.ReadFile(filepath.Join(root, "network", "netstack.json"))
	if err != nil {
		return
	}
	var v any
	if json.Unmarshal(b, &v) != nil {
		return
	}
	for _, l := range linkNames(v, s.project) {
		if !containsStr(s.track.links, l) {
			s.track.links = append(s.track.links, l)
		}
	}
}

// linkNames collects the bridge and host_if names of project's networks
// and attachments from netstack's state.
func linkNames(v any, project string) []string {
	var out []string
	var walk func(any, bool)
	walk = func(v any, ours bool) {
		switch x := v.(type) {
		case map[string]any:
			if p, ok := x["project"].(string); ok && p == project {
				ours = true
			}
			if n, ok := x["network"].(string); ok && strings.HasPrefix(n, project+"/") {
				ours = true
			}
			for k, val := range x {
				if s, ok := val.(string); ok && ours && (k == "bridge" || k == "host_if") && s != "" {
					out = append(out, s)
				}
				walk(val, ours)
			}
		case []any:
			for _, e := range x {
				walk(e, ours)
			}
		}
	}
	walk(v, false)
	return out
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkNoLeaks checks that nothing of the containers and links is left:
// processes in their cgroups, cgroup directories, mounts, netns files,
// runtime and state files, links.
func (s *stackEnv) checkNoLeaks(containers, links []string) {
	t := s.t
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var leaks []string
	for {
		leaks = nil
		for _, name := range containers {
			leaks = append(leaks, containerLeaks(name)...)
		}
		for _, l := range links {
			if _, err := os.Lstat(filepath.Join("/sys/class/net", l)); err == nil {
				leaks = append(leaks, "link "+l)
			}
		}
		if len(leaks) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, l := range leaks {
		t.Errorf("left after down: %s", l)
	}
}

func containerLeaks(name string) []string {
	var leaks []string
	// Containers live in /berth/<root hash>/<name> (runtime.DefaultCgroupsPath).
	seg := "/" + name
	for _, pid := range pids() {
		b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cgroup"))
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.Contains(line, ":/berth/") {
				continue
			}
			if strings.HasSuffix(line, seg) || strings.Contains(line, seg+"/") {
				leaks = append(leaks, fmt.Sprintf("process %d in cgroup %s", pid, line))
				break
			}
		}
	}
	v1, _ := filepath.Glob("/sys/fs/cgroup/*/berth/*/" + name)
	v2, _ := filepath.Glob("/sys/fs/cgroup/berth/*/" + name)
	for _, d := range append(v1, v2...) {
		leaks = append(leaks, "cgroup "+d)
	}
	for _, mp := range mountsUnder(root) {
		if strings.Contains(mp, name) {
			leaks = append(leaks, "mount "+mp)
		}
	}
	for _, p := range []string{
		filepath.Join(root, "netns", name),
		filepath.Join(root, "runtime", name),
		filepath.Join(root, "containers", name),
		filepath.Join(root, "state", "containers", name+".json"),
	} {
		if _, err := os.Lstat(p); err == nil {
			leaks = append(leaks, "file "+p)
		}
	}
	return leaks
}

// freePort returns a TCP port free on 127.0.0.1 right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitUntil polls cond every 50 ms for up to d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
