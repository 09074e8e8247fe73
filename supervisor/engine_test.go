package supervisor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/image"
)

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{
		"SIGTERM": syscall.SIGTERM, "term": syscall.SIGTERM, "9": syscall.SIGKILL, "SIGUSR1": syscall.SIGUSR1,
		"SIGRTMIN": 34, "SIGRTMIN+3": 37, "RTMAX": 64, "SIGRTMAX-2": 62,
	} {
		got, err := parseSignal(in)
		if err != nil || got != want {
			t.Errorf("parseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "SIGNOPE", "0", "65", "SIGRTMIN+40", "SIGRTMAX-x"} {
		if _, err := parseSignal(bad); err == nil {
			t.Errorf("parseSignal(%q): no error", bad)
		}
	}
}

func TestProbeArgs(t *testing.T) {
	got, err := probeArgs([]string{"CMD-SHELL", "curl -f localhost || exit 1"})
	if err != nil || strings.Join(got, "|") != "/bin/sh|-c|curl -f localhost || exit 1" {
		t.Errorf("CMD-SHELL: %q %v", got, err)
	}
	got, err = probeArgs([]string{"CMD", "pg_isready", "-U", "x"})
	if err != nil || strings.Join(got, "|") != "pg_isready|-U|x" {
		t.Errorf("CMD: %q %v", got, err)
	}
	for _, bad := range [][]string{nil, {"CMD"}, {"CMD-SHELL"}} {
		if _, err := probeArgs(bad); err == nil {
			t.Errorf("probeArgs(%q): no error", bad)
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.json")
	st := &containerState{Service: &spec.Service{Name: "web", Restart: spec.RestartPolicy{Condition: "always"}},
		Info:       ContainerInfo{Name: "p-web-1", Service: "web", Project: "p", Number: 1, State: StateRunning, RestartCount: 4},
		LogOffsets: [2]int64{10, 20}, InitStartTime: 99, NetMode: netModeBridge}
	if err := saveState(p, "", st, true); err != nil {
		t.Fatal(err)
	}
	got, err := loadState(p)
	if err != nil {
		t.Fatal(err)
	}
	if got.Info.RestartCount != 4 || got.LogOffsets != st.LogOffsets || got.InitStartTime != 99 || got.Service.Restart.Condition != "always" {
		t.Errorf("round trip: %+v", got)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temp files left: %v", ents)
	}
	os.WriteFile(p, []byte(`{"version":1}`), 0o600)
	if _, err := loadState(p); err == nil {
		t.Error("incomplete state accepted")
	}
	os.WriteFile(p, []byte(`{"version":`), 0o600)
	if _, err := loadState(p); err == nil {
		t.Error("truncated state accepted")
	}
}

func TestExitOfKeeperRecord(t *testing.T) {
	root := t.TempDir()
	e := &Engine{cfg: EngineConfig{Root: root}}
	os.MkdirAll(filepath.Join(root, "exits"), 0o700)
	if err := os.WriteFile(e.exitRecordPath(1234, 5678), []byte(`{"code":143,"signal":15,"time":"2026-01-01T00:00:00Z"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	es, note := e.exitOf(nil, nil, 1234, 5678)
	if es.Code != 143 || note != "" {
		t.Errorf("with a record: %+v %q", es, note)
	}
	if _, err := os.Stat(e.exitRecordPath(1234, 5678)); !errors.Is(err, os.ErrNotExist) {
		t.Error("the record was not consumed")
	}
	// A record for the same pid but another start time is another
	// process: not used.
	os.WriteFile(e.exitRecordPath(1234, 1), []byte(`{"code":0}`), 0o600)
	es, note = e.exitOf(nil, nil, 1234, 5678)
	if es.Code != 255 || !strings.Contains(note, "unknown") {
		t.Errorf("without a record: %+v %q", es, note)
	}
}

func TestIngester(t *testing.T) {
	dir := t.TempDir()
	lf, err := OpenLogFile(filepath.Join(dir, "c.log"), LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	var saved [2]int64
	ing, err := newIngester(dir, lf, [2]int64{}, func(o [2]int64) { saved = o })
	if err != nil {
		t.Fatal(err)
	}
	ch, stop := ing.follow()
	defer stop()
	out, _ := os.OpenFile(filepath.Join(dir, "stdout.raw"), os.O_WRONLY|os.O_APPEND, 0)
	errf, _ := os.OpenFile(filepath.Join(dir, "stderr.raw"), os.O_WRONLY|os.O_APPEND, 0)
	out.WriteString("one\ntw")
	errf.WriteString("oops\n")
	ing.pump()
	select {
	case <-ch:
	default:
		t.Error("no follow notification")
	}
	ents, err := ReadLogs(lf.path, time.Time{}, -1)
	if err != nil || len(ents) != 2 {
		t.Fatalf("entries: %v %v", ents, err)
	}
	// The partial line is not consumed: offsets stop before it.
	if saved != [2]int64{4, 5} {
		t.Errorf("offsets %v, want [4 5]", saved)
	}
	out.WriteString("o\n")
	ing.pump()
	ents, _ = ReadLogs(lf.path, time.Time{}, -1)
	if len(ents) != 3 || ents[2].Log != "two\n" || ents[2].Stream != "stdout" {
		t.Fatalf("after the rest of the line: %v", ents)
	}
	ing.close()

	// A new ingester (a restarted daemon) resumes at the saved offsets.
	out.WriteString(strings.Repeat("x", 100) + "\n")
	ing2, err := newIngester(dir, lf, saved, func(o [2]int64) { saved = o })
	if err != nil {
		t.Fatal(err)
	}
	defer ing2.close()
	ing2.pump()
	ents, _ = ReadLogs(lf.path, time.Time{}, -1)
	if len(ents) != 4 || ents[3].Log != strings.Repeat("x", 100)+"\n" {
		t.Fatalf("after resuming: %d entries, last %v", len(ents), ents[len(ents)-1])
	}

	// The consumed prefix is punched out of the raw file.
	big := strings.Repeat(strings.Repeat("y", 1023)+"\n", 256)
	out.WriteString(big)
	ing2.pump()
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dir, "stdout.raw"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Size < int64(len(big)) || st.Blocks*512 >= st.Size/2 {
		t.Errorf("raw file: size %d, %d bytes allocated: prefix not punched", st.Size, st.Blocks*512)
	}
	out.Close()
	errf.Close()
}

func TestWaitConditionEvents(t *testing.T) {
	retries := 1
	i := &Instance{name: "p-web-1", changed: make(chan struct{}),
		st: containerState{Service: &spec.Service{Name: "web",
			Healthcheck: &spec.Healthcheck{Test: []string{"CMD", "true"}, Retries: &retries}},
			Info: ContainerInfo{State: StateCreated}}}
	set := func(f func(c *ContainerInfo)) {
		i.mu.Lock()
		f(&i.st.Info)
		notify := i.changedLocked()
		i.mu.Unlock()
		notify()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- i.WaitCondition(ctx, "service_healthy") }()
	set(func(c *ContainerInfo) { c.State, c.StartedAt, c.Health = StateRunning, time.Now(), HealthStarting })
	set(func(c *ContainerInfo) { c.Health = HealthHealthy })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	go func() { done <- i.WaitCondition(ctx, "service_completed_successfully") }()
	set(func(c *ContainerInfo) { c.State, c.ExitCode = StateExited, 2 })
	if err := <-done; !errors.Is(err, ErrConditionFailed) || !strings.Contains(err.Error(), "p-web-1") || !strings.Contains(err.Error(), "code 2") {
		t.Fatalf("completed_successfully after exit 2: %v", err)
	}
	if err := i.WaitCondition(ctx, "bogus"); err == nil {
		t.Error("unknown condition accepted")
	}
	short, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	set(func(c *ContainerInfo) { c.State, c.StartedAt = StateCreated, time.Time{} })
	if err := i.WaitCondition(short, "started"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timeout: %v", err)
	}
}

func TestNewEngineNeedsEverything(t *testing.T) {
	if _, err := NewEngine(EngineConfig{Root: t.TempDir()}); err == nil {
		t.Fatal("NewEngine without managers: no error")
	}
}

// A build: service's image is made by the CLI (up --build); the engine
// never pulls it (its name is often nowhere else) and says what to run
// when it is missing. The store is empty: any pull would be tried and
// reported as a pull error instead.
func TestResolveImageOfBuildService(t *testing.T) {
	st, err := image.Open(filepath.Join(t.TempDir(), "images"))
	if err != nil {
		t.Fatal(err)
	}
	var pulls int
	e := &Engine{cfg: EngineConfig{Images: st, Events: func(ev Event) {
		if ev.Action == "pull" {
			pulls++
		}
	}}}
	for _, tc := range []struct {
		svc  spec.Service
		want string
	}{
		{spec.Service{Name: "app", Build: &spec.Build{Context: "."}}, "its build: section was not built (run `berth up --build`"},
		{spec.Service{Name: "app", Image: "demo-app", Build: &spec.Build{Context: "."}}, `service "app": image "demo-app" is not built (run ` + "`berth up --build` or `berth build app`)"},
		{spec.Service{Name: "app", Image: "demo-app", PullPolicy: "build"}, "is not built"},
	} {
		_, err := e.resolveImage(context.Background(), &tc.svc)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.svc, err, tc.want)
		}
	}
	if pulls != 0 {
		t.Errorf("%d pulls of built images", pulls)
	}
}
