package supervisor

import (
	"bufio"
	"context"
	"fmt"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/spec"
)

// procStatus reads a "Key:   123 kB" field of /proc/self/status.
func procStatus(t testing.TB, key string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	t.Fatalf("no %s in /proc/self/status", key)
	return 0
}

type memSample struct {
	rssKiB  int64
	heap    uint64 // heap in use + goroutine stacks
	threads int64
	gorout  int
}

func sampleMem(t testing.TB) memSample {
	goruntime.GC()
	debug.FreeOSMemory()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	return memSample{rssKiB: procStatus(t, "VmRSS"), heap: ms.HeapInuse + ms.StackInuse,
		threads: procStatus(t, "Threads"), gorout: goruntime.NumGoroutine()}
}

// BenchmarkEngineMemoryPerContainer starts N sleeping busybox containers
// (each on the project network, with log ingestion and a health check off)
// and reports what each one costs the daemon process: RSS, Go heap and
// stacks, threads and goroutines. The figures are per container, and
// independent of b.N (the N containers are started once).
func BenchmarkEngineMemoryPerContainer(b *testing.B) {
	const n = 40
	env := newTestEnv(b)
	svcs := make([]spec.Service, n)
	for k := range svcs {
		svcs[k] = spec.Service{Name: fmt.Sprintf("s%02d", k), Command: []string{"sleep", "100000"}}
	}
	p := env.projectOf(svcs...)
	// Warm up: one container created and removed, so one-time costs
	// (the sealed runtime binary, the log watcher, pools) are not counted.
	w := env.create(p, "s00")
	env.start(w)
	if err := w.Remove(context.Background(), RemoveOptions{Force: true}); err != nil {
		b.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	before := sampleMem(b)
	for k := range svcs {
		env.start(env.create(p, svcs[k].Name))
	}
	time.Sleep(500 * time.Millisecond)
	after := sampleMem(b)
	if path := os.Getenv("BERTH_HEAP_PROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil {
			pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	b.ReportMetric(float64(after.rssKiB-before.rssKiB)/n, "rss-KiB/container")
	b.ReportMetric(float64(after.heap-before.heap)/1024/n, "heap+stack-KiB/container")
	b.ReportMetric(float64(after.threads-before.threads)/n, "threads/container")
	b.ReportMetric(float64(after.gorout-before.gorout)/n, "goroutines/container")
	for range b.N {
	}
}

// BenchmarkEngineLifecycle measures one container's whole life through
// the engine: Create (rootfs, netns, attach, bundle, runtime create),
// Start (ports, start, DNS), Stop (SIGKILL at once) and Remove.
func BenchmarkEngineLifecycle(b *testing.B) {
	env := newTestEnv(b)
	p := env.projectOf(spec.Service{Name: "life", Command: []string{"sleep", "100000"}})
	svc, _ := p.Service("life")
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		i, err := env.eng.Create(ctx, p, svc, 1)
		if err != nil {
			b.Fatal(err)
		}
		if err := i.Start(ctx); err != nil {
			b.Fatal(err)
		}
		if err := i.Stop(ctx, 0); err != nil {
			b.Fatal(err)
		}
		if err := i.Remove(ctx, RemoveOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
