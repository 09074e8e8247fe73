package scheduler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/spec"
)

// fakeExec is an in-memory supervisor: Do records when each step begins
// and ends; a container counts as started when its start step is done
// (containers with no start step in the plan count as running already);
// health verdicts and step failures are set by the test.
type fakeExec struct {
	mu       sync.Mutex
	seq      int
	begin    map[int]int // step ID -> sequence number at begin
	end      map[int]int // step ID -> sequence number at end
	calls    map[int]int // step ID -> Do calls
	inflight int
	max      int
	startedC map[string]chan struct{} // container -> closed when started

	failDo  map[int]error    // step ID -> error from Do
	health  map[string]error // container -> healthcheck verdict (nil = healthy)
	exit    map[string]error // container -> completion verdict (nil = exit 0)
	blockDo map[int]bool     // step IDs whose Do blocks until ctx is done
	hook    func(s Step)     // called inside Do, if set
	onWait  func(w Wait)     // called when a wait starts blocking for good
	panicDo map[int]bool     // step IDs whose Do panics
}

func newFake(plan *Plan) *fakeExec {
	f := &fakeExec{
		begin: map[int]int{}, end: map[int]int{}, calls: map[int]int{},
		startedC: map[string]chan struct{}{},
		failDo:   map[int]error{}, health: map[string]error{}, exit: map[string]error{},
		blockDo: map[int]bool{}, panicDo: map[int]bool{},
	}
	for _, s := range plan.Steps {
		if s.Action == ActionStart {
			f.startedC[s.Container] = make(chan struct{})
		}
	}
	return f
}

func (f *fakeExec) Do(ctx context.Context, s Step) error {
	f.mu.Lock()
	f.seq++
	f.begin[s.ID] = f.seq
	f.calls[s.ID]++
	f.inflight++
	f.max = max(f.max, f.inflight)
	hook := f.hook
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.seq++
		f.end[s.ID] = f.seq
		f.mu.Unlock()
	}()
	if hook != nil {
		hook(s)
	}
	if f.panicDo[s.ID] {
		panic("fake executor bug")
	}
	if f.blockDo[s.ID] {
		<-ctx.Done()
		return ctx.Err()
	}
	if err := f.failDo[s.ID]; err != nil {
		return err
	}
	if s.Action == ActionStart {
		close(f.startedC[s.Container])
	}
	return nil
}

func (f *fakeExec) WaitCondition(ctx context.Context, w Wait) error {
	f.mu.Lock()
	ch := f.startedC[w.Container]
	f.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	switch w.Condition {
	case ConditionHealthy:
		if err, ok := f.health[w.Container]; ok && err == errNever {
			if f.onWait != nil {
				f.onWait(w)
			}
			<-ctx.Done()
			return ctx.Err()
		} else if ok {
			return err
		}
	case ConditionCompleted:
		return f.exit[w.Container]
	}
	return nil
}

var errNever = errors.New("never healthy")

// checkOrder fails the test if a step began before a step it depends on
// ended, or ran more than once.
func checkOrder(t *testing.T, plan *Plan, f *fakeExec) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range plan.Steps {
		if f.calls[s.ID] > 1 {
			t.Errorf("step %d ran %d times", s.ID, f.calls[s.ID])
		}
		b, ran := f.begin[s.ID]
		if !ran {
			continue
		}
		for _, d := range append(append([]int(nil), s.After...), s.OrderAfter...) {
			e, ok := f.end[d]
			if f.calls[d] > 0 && (!ok || e > b) {
				t.Errorf("step %q began before step %q ended", s, plan.Steps[d-1])
			}
		}
	}
}

func statuses(r Report) string {
	var b strings.Builder
	for _, res := range r.Results {
		fmt.Fprintf(&b, "%d:%s ", res.Step.ID, res.Status)
	}
	return strings.TrimSpace(b.String())
}

func chainProject() *spec.Project {
	return proj("demo",
		svc("web", dependsOn("api", started)),
		svc("api", dependsOn("db", healthy)),
		svc("db"),
		svc("other"),
	)
}

func TestExecuteRunsEverythingInOrder(t *testing.T) {
	p := proj("demo",
		svc("top", dependsOn("left", started), dependsOn("right", healthy)),
		svc("left", dependsOn("base", completed)),
		svc("right", dependsOn("base", completed), replicas(3)),
		svc("base"),
	)
	plan, err := PlanUp(p, nil, UpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{0, 1, 2, 16} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			f := newFake(plan)
			rep, err := Execute(context.Background(), plan, f, limit)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Count(StatusDone) != len(plan.Steps) {
				t.Errorf("report:\n%s", rep)
			}
			checkOrder(t, plan, f)
			if limit > 0 && f.max > limit {
				t.Errorf("limit %d: %d steps ran at once", limit, f.max)
			}
		})
	}
}

func TestExecuteFailurePropagation(t *testing.T) {
	plan, err := PlanUp(chainProject(), nil, UpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantPlan := lines(
		"1. create demo-db-1 (new)",
		"2. start demo-db-1 after [1] (new)",
		"3. create demo-api-1 after [~1] (new)",
		"4. start demo-api-1 after [2 3] wait [demo-db-1 healthy] (new)",
		"5. create demo-other-1 (new)",
		"6. start demo-other-1 after [5] (new)",
		"7. create demo-web-1 after [~3] (new)",
		"8. start demo-web-1 after [4 7] wait [demo-api-1 started] (new)",
	)
	if plan.String() != wantPlan {
		t.Fatalf("plan:\n%s", plan)
	}

	t.Run("failed step", func(t *testing.T) {
		f := newFake(plan)
		f.failDo[2] = errors.New("port 5432 in use")
		rep, err := Execute(context.Background(), plan, f, 4)
		if got, want := statuses(rep), "1:done 2:failed 3:done 4:blocked 5:done 6:done 7:done 8:blocked"; got != want {
			t.Errorf("statuses %s, want %s", got, want)
		}
		want := "2 errors occurred:\n" +
			"\t* start demo-db-1: port 5432 in use\n" +
			"\t* start demo-api-1: not run: dependency failed: start demo-db-1 failed\n\n"
		if err == nil || err.Error() != want {
			t.Errorf("error:\n%v\nwant:\n%s", err, want)
		}
		if !errors.Is(err, ErrDependencyFailed) {
			t.Error("error does not match ErrDependencyFailed")
		}
		if got := rep.Results[7].Err.Error(); got != "start demo-web-1: not run: dependency failed: start demo-api-1 was not run" {
			t.Errorf("web: %s", got)
		}
		for _, id := range []int{4, 8} {
			if f.calls[id] != 0 {
				t.Errorf("blocked step %d ran", id)
			}
		}
		checkOrder(t, plan, f)
	})

	t.Run("unhealthy dependency", func(t *testing.T) {
		f := newFake(plan)
		f.health["demo-db-1"] = errors.New("container is unhealthy")
		rep, err := Execute(context.Background(), plan, f, 4)
		if got, want := statuses(rep), "1:done 2:done 3:done 4:failed 5:done 6:done 7:done 8:blocked"; got != want {
			t.Errorf("statuses %s, want %s", got, want)
		}
		want := "2 errors occurred:\n" +
			"\t* start demo-api-1: dependency demo-db-1 (service \"db\") not healthy: container is unhealthy\n" +
			"\t* start demo-web-1: not run: dependency failed: start demo-api-1 failed\n\n"
		if err == nil || err.Error() != want {
			t.Errorf("error:\n%v\nwant:\n%s", err, want)
		}
		if f.calls[4] != 0 || f.calls[8] != 0 {
			t.Error("a service waiting on an unhealthy dependency was started")
		}
	})

	t.Run("executor panic is a failure", func(t *testing.T) {
		f := newFake(plan)
		f.panicDo[5] = true
		rep, err := Execute(context.Background(), plan, f, 2)
		if got, want := statuses(rep), "1:done 2:done 3:done 4:done 5:failed 6:blocked 7:done 8:done"; got != want {
			t.Errorf("statuses %s, want %s", got, want)
		}
		if err == nil || !strings.Contains(err.Error(), "create demo-other-1: executor panic: fake executor bug") {
			t.Errorf("error: %v", err)
		}
	})
}

func TestExecuteOptionalDependency(t *testing.T) {
	p := proj("demo",
		svc("web", optionalDep("metrics"), dependsOn("job", completed)),
		svc("metrics"),
		svc("job"),
	)
	plan, err := PlanUp(p, nil, UpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := newFake(plan)
	f.failDo[4] = errors.New("no such image")
	rep, err := Execute(context.Background(), plan, f, 0)
	// metrics failed, web still runs, with a warning.
	if got, want := statuses(rep), "1:done 2:done 3:done 4:failed 5:done 6:done"; got != want {
		t.Fatalf("statuses %s, want %s\n%s", got, want, plan)
	}
	if err == nil || !strings.Contains(err.Error(), "start demo-metrics-1: no such image") {
		t.Errorf("error: %v", err)
	}
	want := `dependency demo-metrics-1 (service "metrics") was not started (not required; starting anyway)`
	if w := rep.Results[5].Warnings; len(w) != 1 || w[0] != want {
		t.Errorf("web warnings %q, want %q", w, want)
	}

	// A failed completion of a required one-shot dependency blocks web.
	f = newFake(plan)
	f.exit["demo-job-1"] = errors.New("exited with code 3")
	rep, err = Execute(context.Background(), plan, f, 0)
	if got, want := statuses(rep), "1:done 2:done 3:done 4:done 5:done 6:failed"; got != want {
		t.Errorf("statuses %s, want %s", got, want)
	}
	if err == nil || !strings.Contains(err.Error(), `start demo-web-1: dependency demo-job-1 (service "job") not completed successfully: exited with code 3`) {
		t.Errorf("error: %v", err)
	}
}

func TestExecuteCancel(t *testing.T) {
	plan, err := PlanUp(chainProject(), nil, UpOptions{})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("while a step runs", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		f := newFake(plan)
		f.blockDo[2] = true
		f.hook = func(s Step) {
			if s.ID == 2 {
				cancel()
			}
		}
		rep, err := Execute(ctx, plan, f, 1)
		if got, want := statuses(rep), "1:done 2:failed 3:skipped 4:blocked 5:done 6:skipped 7:skipped 8:blocked"; got != want {
			t.Errorf("statuses %s, want %s", got, want)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v is not context.Canceled", err)
		}
		want := "2 errors occurred:\n" +
			"\t* start demo-db-1: context canceled\n" +
			"\t* plan interrupted: context canceled\n\n"
		if err == nil || err.Error() != want {
			t.Errorf("error:\n%v\nwant:\n%s", err, want)
		}
		for _, id := range []int{3, 4, 6, 7, 8} {
			if f.calls[id] != 0 {
				t.Errorf("step %d ran after cancel", id)
			}
		}
	})

	t.Run("while waiting for a condition", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		f := newFake(plan)
		f.health["demo-db-1"] = errNever
		f.onWait = func(Wait) { cancel() }
		rep, err := Execute(ctx, plan, f, 0)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v is not context.Canceled", err)
		}
		for _, id := range []int{4, 8} {
			if st := rep.Results[id-1].Status; st != StatusSkipped {
				t.Errorf("step %d: %s, want skipped", id, st)
			}
		}
		if rep.Results[1].Status != StatusDone {
			t.Errorf("start db: %s", rep.Results[1].Status)
		}
		if n := rep.Count(StatusDone) + rep.Count(StatusSkipped); n != len(plan.Steps) {
			t.Errorf("report:\n%s", rep)
		}
		checkOrder(t, plan, f)
	})

	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		f := newFake(plan)
		rep, err := Execute(ctx, plan, f, 0)
		if rep.Count(StatusSkipped) != len(plan.Steps) || !errors.Is(err, context.Canceled) {
			t.Errorf("err %v, report:\n%s", err, rep)
		}
	})
}

func TestExecuteBoundedConcurrency(t *testing.T) {
	var services []spec.Service
	for i := 0; i < 12; i++ {
		services = append(services, svc(fmt.Sprintf("s%02d", i)))
	}
	plan, err := PlanUp(proj("demo", services...), nil, UpOptions{NoStart: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{1, 3, 5} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			f := newFake(plan)
			began := make(chan chan struct{}, len(plan.Steps))
			f.hook = func(Step) {
				release := make(chan struct{})
				began <- release
				<-release
			}
			type result struct {
				rep Report
				err error
			}
			res := make(chan result, 1)
			go func() {
				rep, err := Execute(context.Background(), plan, f, limit)
				res <- result{rep, err}
			}()
			next := func() chan struct{} {
				select {
				case r := <-began:
					return r
				case <-time.After(10 * time.Second): // a hang, not a speed check
					t.Fatal("executor stalled below its limit")
					return nil
				}
			}
			var running []chan struct{}
			for len(running) < limit {
				running = append(running, next())
			}
			for remaining := len(plan.Steps) - limit; remaining > 0; remaining-- {
				close(running[0])
				running = append(running[1:], next())
			}
			for _, r := range running {
				close(r)
			}
			r := <-res
			if r.err != nil || r.rep.Count(StatusDone) != len(plan.Steps) {
				t.Fatalf("err %v, report:\n%s", r.err, r.rep)
			}
			if f.max != limit {
				t.Errorf("at most %d steps ran at once, want exactly the limit %d", f.max, limit)
			}
		})
	}
}

func TestExecuteDownStopsInReverse(t *testing.T) {
	p := chainProject()
	plan, err := PlanDown(p, running(p), DownOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := newFake(plan)
	rep, err := Execute(context.Background(), plan, f, 0)
	if err != nil || rep.Count(StatusDone) != len(plan.Steps) {
		t.Fatalf("err %v, report:\n%s", err, rep)
	}
	checkOrder(t, plan, f)
	stopEnd := map[string]int{}
	stopBegin := map[string]int{}
	for _, s := range plan.Steps {
		if s.Action == ActionStop {
			stopEnd[s.Service], stopBegin[s.Service] = f.end[s.ID], f.begin[s.ID]
		}
	}
	for _, pair := range [][2]string{{"web", "api"}, {"api", "db"}} {
		if stopEnd[pair[0]] > stopBegin[pair[1]] {
			t.Errorf("%s stopped after %s began stopping", pair[0], pair[1])
		}
	}

	// A failed stop does not keep the rest of the stack running.
	f = newFake(plan)
	f.failDo[1] = errors.New("timeout")
	rep, _ = Execute(context.Background(), plan, f, 0)
	if rep.Count(StatusFailed) != 1 || rep.Count(StatusBlocked) != 1 || rep.Count(StatusDone) != len(plan.Steps)-2 {
		t.Errorf("report:\n%s", rep)
	}
}

func TestExecuteBadInput(t *testing.T) {
	good := func() *Plan {
		return &Plan{Steps: []Step{
			{ID: 1, Action: ActionCreate, Container: "a"},
			{ID: 2, Action: ActionStart, Container: "a", After: []int{1}},
		}}
	}
	tests := []struct {
		name string
		mut  func(*Plan)
		want string
	}{
		{"forward reference", func(p *Plan) { p.Steps[0].After = []int{2} }, "invalid input: step 1 depends on step 2, which is not an earlier step"},
		{"self reference", func(p *Plan) { p.Steps[1].OrderAfter = []int{2} }, "invalid input: step 2 depends on step 2, which is not an earlier step"},
		{"bad id", func(p *Plan) { p.Steps[1].ID = 7 }, "invalid input: step 2 has ID 7"},
		{"bad action", func(p *Plan) { p.Steps[0].Action = "explode" }, `invalid input: step 1: unknown action "explode"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := good()
			tt.mut(p)
			_, err := Execute(context.Background(), p, newFake(p), 0)
			if err == nil || err.Error() != tt.want || !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := Execute(context.Background(), nil, newFake(good()), 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil plan: %v", err)
	}
	if _, err := Execute(context.Background(), good(), nil, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil executor: %v", err)
	}
	rep, err := Execute(context.Background(), &Plan{}, newFake(good()), 0)
	if err != nil || len(rep.Results) != 0 {
		t.Errorf("empty plan: %v %v", rep, err)
	}
}
