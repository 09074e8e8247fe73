package runtime

import (
	"context"
	"fmt"
	"sort"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// BenchmarkLifecycle times create+start+exit+delete of `true`, and of
// `sleep` then kill, with and without a network namespace. Besides ns/op
// (the mean) it reports the median in ms; run with -benchtime=50x for the
// median over 50 runs.
func BenchmarkLifecycle(b *testing.B) {
	requirePrivileged(b)
	bundle := makeRootfs(b)
	r := newTestRuntime(b)
	for _, netns := range []bool{false, true} {
		for _, kind := range []string{"true", "sleep-kill"} {
			b.Run(fmt.Sprintf("%s/netns=%v", kind, netns), func(b *testing.B) {
				spec := DefaultSpec("rootfs", "/bin/true")
				if kind == "sleep-kill" {
					spec.Process.Args = []string{"/bin/sleep", "1000"}
				}
				if !netns {
					var keep []specs.LinuxNamespace
					for _, ns := range spec.Linux.Namespaces {
						if ns.Type != specs.NetworkNamespace {
							keep = append(keep, ns)
						}
					}
					spec.Linux.Namespaces = keep
				}
				ctx := context.Background()
				times := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					t0 := time.Now()
					c, err := r.Create(ctx, fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i), CreateOpts{Bundle: bundle, Spec: spec})
					if err != nil {
						b.Fatal(err)
					}
					if err := c.Start(); err != nil {
						b.Fatal(err)
					}
					if kind == "sleep-kill" {
						if err := c.Kill(syscall.SIGKILL); err != nil {
							b.Fatal(err)
						}
					}
					if _, err := c.Wait(ctx); err != nil {
						b.Fatal(err)
					}
					if err := c.Delete(ctx, false); err != nil {
						b.Fatal(err)
					}
					times = append(times, time.Since(t0))
				}
				b.StopTimer()
				sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
				b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
			})
		}
	}
}

// BenchmarkExec times an exec of `true` into a running container (what
// a health probe costs), run through berth itself (here: the test
// binary), through the small cgo init (berth-exec) and through the C
// init, and reports the CPU time of the processes each exec started.
func BenchmarkExec(b *testing.B) {
	requirePrivileged(b)
	for _, name := range []string{"self", "small", "cinit"} {
		b.Run(name, func(b *testing.B) {
			switch name {
			case "small":
				useSmallExec(b)
				noCInit(b)
			case "cinit":
				useCInit(b)
			default:
				noCInit(b)
			}
			c, _ := startSleeper(b, nil)
			ctx := context.Background()
			var ru0, ru1 syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru0)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				proc, err := c.Exec(ctx, c.ExecProcess("/bin/true"), ExecOpts{})
				if err != nil {
					b.Fatal(err)
				}
				if es, err := proc.Wait(ctx); err != nil || es.Code != 0 {
					b.Fatalf("exec: %+v %v", es, err)
				}
			}
			b.StopTimer()
			_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru1)
			cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
			b.ReportMetric(float64(ru1.Minflt-ru0.Minflt)/float64(b.N), "faults/op")
		})
	}
}
