package runtime

import (
	"bytes"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// TestSealedCopyAfterDropCaches: a container start after the kernel has
// dropped its caches maps the init's pages as cheaply as before. The
// sealed copy's pages, when nothing maps them, come out of drop_caches
// marked for reclaim, which makes every exec of them fault page by page
// (about twice the faults of the small init here); the copy the daemon
// keeps resident (keepResident) does not. A copy not kept, made beside
// it, shows whether this kernel has that behaviour at all (logged; the
// check on the kept copy stands either way).
func TestSealedCopyAfterDropCaches(t *testing.T) {
	requirePrivileged(t)
	small := smallInit(t)

	locked, err := makeSealedExe("berth-init-test", bytes.NewReader(small))
	if err != nil {
		t.Fatal(err)
	}
	copied := &sealedExe{f: locked, mem: keepResident(locked)}
	t.Cleanup(copied.reset)
	if copied.mem == nil {
		t.Fatal("the sealed copy is not mapped and locked")
	}
	control, err := makeSealedExe("berth-init-control", bytes.NewReader(small))
	if err != nil {
		t.Fatal(err)
	}
	unmapped := &sealedExe{f: control}
	t.Cleanup(unmapped.reset)

	// faults runs the copy (run by hand, the init prints a line and exits
	// 2) and returns the fewest minor faults of a few runs.
	faults := func(f *os.File) int64 {
		t.Helper()
		best := int64(-1)
		for range 5 {
			cmd := exec.Command(fdPath(3))
			cmd.ExtraFiles = []*os.File{f}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !bytes.Contains(stderr.Bytes(), []byte("berth-init")) {
				t.Fatalf("running the copy: %v\n%s", err, stderr.Bytes())
			}
			n := cmd.ProcessState.SysUsage().(*syscall.Rusage).Minflt
			if best < 0 || n < best {
				best = n
			}
		}
		return best
	}
	before, controlBefore := faults(locked), faults(control)
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	after, controlAfter := faults(locked), faults(control)
	t.Logf("minor faults per run of the init: kept copy %d, after drop_caches %d; unmapped copy %d, after %d",
		before, after, controlBefore, controlAfter)
	if after > before+before/5 {
		t.Errorf("after drop_caches a run of the init faults %d times, before %d", after, before)
	}
	if controlAfter <= controlBefore+controlBefore/5 {
		t.Logf("this kernel keeps fault-around for unmapped shmem pages after drop_caches: the mapping only keeps them resident here")
	}
}
