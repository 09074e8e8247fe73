package runtime

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestSmallInit builds the pure-Go init (./berth-init, as the Makefile
// builds it to embed it in berth) and runs containers with it: a plain
// command, and the reaper, whose pid 1 must be that small binary, not the
// test binary.
//
// BERTH_SMALL_INIT names a built init where there is no Go to build one
// (the cgroup v2 guest, .ci/v2guest).
func TestSmallInit(t *testing.T) {
	requirePrivileged(t)
	checkNoLeaks(t)
	small := smallInit(t)
	useSmall(t, "berth-init", &initBinary, &sealedInit, small)
	noCInit(t) // the Go init's test, in every build

	r := newTestRuntime(t)
	bundle := makeRootfs(t)
	res := runContainer(t, r, bundle, shSpec(`echo "hello from $(cat /etc/hostname 2>/dev/null || hostname)"; exit 7`))
	if res.exit.Code != 7 || !strings.Contains(res.out, "hello from") {
		t.Fatalf("exit %d, output %q; want 7 and the greeting", res.exit.Code, res.out)
	}

	spec := shSpec(`stat -L -c %s /proc/1/exe; tr '\0' ' ' </proc/1/cmdline; echo`)
	spec.Annotations = map[string]string{AnnotationInit: "true"}
	res = runContainer(t, r, bundle, spec)
	if res.exit.Code != 0 {
		t.Fatalf("exit %d; output:\n%s", res.exit.Code, res.out)
	}
	lines := strings.Split(strings.TrimSpace(res.out), "\n")
	if len(lines) != 2 || lines[0] != strconv.Itoa(len(small)) || !strings.HasPrefix(lines[1], "berth-init ") {
		t.Fatalf("pid 1 is not the small init (%d bytes, cmdline berth-init ID):\n%s", len(small), res.out)
	}
}

// smallInit returns the pure-Go init as the Makefile builds it, or the one
// BERTH_SMALL_INIT names. It is built once per test binary (three tests
// use it).
func smallInit(t *testing.T) []byte {
	t.Helper()
	b, err := smallInitOnce()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var smallInitOnce = sync.OnceValues(func() ([]byte, error) {
	return buildSmall("berth-init", "BERTH_SMALL_INIT", "CGO_ENABLED=0", "-tags", "berth_initonly")
})

// buildSmall builds ./berth-init as the Makefile builds name (cgo is
// "CGO_ENABLED=0" or "=1", args the build flags), or reads the binary
// the environment variable env names where there is no Go (the cgroup v2
// guest, .ci/v2guest).
func buildSmall(name, env, cgo string, args ...string) ([]byte, error) {
	if bin := os.Getenv(env); bin != "" {
		return os.ReadFile(bin)
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("the go tool is needed to build %s (or %s naming one): %w", name, env, err)
	}
	dir, err := os.MkdirTemp("", name+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, name)
	build := exec.Command(gobin, append(append([]string{"build"}, args...), "-o", bin, "./berth-init")...)
	build.Env = append(os.Environ(), cgo)
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %w\n%s", err, out)
	}
	return os.ReadFile(bin)
}

// TestSmallInitDeps: the init's build (tag berth_initonly) leaves out the
// cgroup v2 device filter's eBPF loader, which only the parent side uses
// and which alone made each container start 0.2 ms of CPU dearer. Package
// paths stay in a stripped Go binary (its function table).
func TestSmallInitDeps(t *testing.T) {
	const ebpf = "github.com/cilium/ebpf."
	if bytes.Contains(smallInit(t), []byte(ebpf)) {
		t.Errorf("berth-init links %s", ebpf)
	}
	// This test binary links it (through cgroups): the check above looks
	// for the right name.
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(self, []byte(ebpf)) {
		t.Errorf("the runtime no longer links %s: update this test", ebpf)
	}
}

// useSmallExec makes Exec run the small init built with cgo for the rest
// of the test.
func useSmallExec(t testing.TB) {
	t.Helper()
	small, err := smallExecOnce()
	if err != nil {
		t.Fatal(err)
	}
	useSmall(t, "berth-exec", &execBinary, &sealedExec, small)
}

// useSmall sets *bin, whose sealed copy is s, to small for the rest of
// the test. The tests tell the small binary from the test binary by its
// size.
func useSmall(t testing.TB, name string, bin *[]byte, s *sealedExe, small []byte) {
	t.Helper()
	self, err := os.Stat("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(small)) == self.Size() {
		t.Fatalf("%s and the test binary are both %d bytes: the tests could not tell them apart", name, self.Size())
	}
	prev := *bin
	// A copy made before (of an embedded binary, in a build with the tag
	// berth_init) would be the one used: start over from small.
	s.reset()
	*bin = small
	t.Cleanup(func() {
		// The sealed copy lives as long as the process: close it here,
		// for the fd check and the tests after this one.
		*bin = prev
		s.reset()
	})
}

// smallExecOnce builds berth-exec as the Makefile does (cgo, static), or
// reads the one BERTH_SMALL_EXEC names.
var smallExecOnce = sync.OnceValues(func() ([]byte, error) {
	return buildSmall("berth-exec", "BERTH_SMALL_EXEC", "CGO_ENABLED=1",
		"-tags", "berth_initonly netgo osusergo", "-ldflags", "-extldflags=-static")
})
