package scheduler

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-multierror"
	"golang.org/x/sync/errgroup"
)

// ErrDependencyFailed marks a step that was not run because a step it
// needs failed or was itself not run.
var ErrDependencyFailed = errors.New("dependency failed")

// Executor carries out steps; the supervisor implements it. Execute calls
// its methods from several goroutines at once, at most limit Do calls at a
// time, each step at most once.
type Executor interface {
	// Do carries out one step: create, start, stop or remove the step's
	// container. It is called only after every After and OrderAfter step
	// has finished and every required Wait is satisfied. It should be
	// idempotent in effect (stopping a stopped container succeeds) and
	// return promptly when ctx is done.
	Do(ctx context.Context, s Step) error
	// WaitCondition blocks until w.Container meets w.Condition and
	// returns nil, or returns an error as soon as it cannot (the
	// container turned unhealthy, exited non-zero for
	// ConditionCompleted, exited for ConditionHealthy, does not exist)
	// or ctx is done. It judges the container's current state first (a
	// container that already exited 0 meets ConditionCompleted; one
	// already healthy meets ConditionHealthy) and then waits for events:
	// Execute does not poll. The container may be one the plan does not
	// touch (a running dependency).
	WaitCondition(ctx context.Context, w Wait) error
}

// Status is where a step ended up after Execute.
type Status int

// Step states; see the package documentation for the state machine.
const (
	StatusPending Status = iota // not reached (only in a report of a plan that was never walked)
	StatusDone                  // Do returned nil
	StatusFailed                // Do, or a required wait, returned an error
	StatusBlocked               // not run: a step in its After list failed or was blocked
	StatusSkipped               // not run: the context was cancelled first
)

var statusNames = [...]string{"pending", "done", "failed", "blocked", "skipped"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

// StepResult is what became of one step.
type StepResult struct {
	Step   Step
	Status Status
	// Err is set for failed and blocked steps; it names the step's
	// container and, for a blocked step or a failed wait, the dependency.
	Err error
	// Warnings are optional (required: false) waits that failed.
	Warnings []string
}

// Report says what Execute did, step by step, in plan order.
type Report struct {
	Results []StepResult
}

// Count returns how many steps ended in status s.
func (r Report) Count(s Status) int {
	n := 0
	for _, res := range r.Results {
		if res.Status == s {
			n++
		}
	}
	return n
}

// String prints one line per step: "N. action container: status", the
// error after failed and blocked steps, warnings on lines of their own.
func (r Report) String() string {
	var b strings.Builder
	for _, res := range r.Results {
		fmt.Fprintf(&b, "%d. %s %s: %s", res.Step.ID, res.Step.Action, res.Step.Container, res.Status)
		if res.Err != nil {
			b.WriteString(": ")
			b.WriteString(res.Err.Error())
		}
		b.WriteByte('\n')
		for _, w := range res.Warnings {
			b.WriteString("   warning: ")
			b.WriteString(w)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

type eventKind int

const (
	evWaited eventKind = iota // the step's waits finished
	evDone                    // Do returned
)

type event struct {
	kind     eventKind
	id       int // index into plan.Steps
	err      error
	warnings []string
	skipped  bool // evDone: the context was cancelled before Do
}

// Execute walks plan: a step runs once the steps it depends on have
// finished, independent steps run concurrently, at most limit Do calls at
// once (limit <= 0: no bound). Start steps first wait for their
// dependency conditions through ex.WaitCondition; those waits do not
// count against limit.
//
// A failed step blocks the steps that need it (After), transitively;
// other branches run to the end. Cancelling ctx stops the walk: running
// steps get the cancelled ctx, nothing new starts, and the rest are
// skipped. The report always covers every step. The error gathers every
// failure (and ctx.Err() after a cancellation) in a *multierror.Error, or
// is nil when every step is done.
func Execute(ctx context.Context, plan *Plan, ex Executor, limit int) (Report, error) {
	if err := plan.Validate(); err != nil {
		return Report{}, err
	}
	if ex == nil {
		return Report{}, fmt.Errorf("%w: nil executor", ErrInvalid)
	}
	steps := plan.Steps
	n := len(steps)
	rep := Report{Results: make([]StepResult, n)}
	for i, s := range steps {
		rep.Results[i].Step = s
	}

	startStep := map[string]int{} // container -> index of its start step
	for i, s := range steps {
		if s.Action == ActionStart {
			startStep[s.Container] = i
		}
	}
	pending := make([]int, n)      // unfinished dependencies per step
	dependents := make([][]int, n) // step index -> indexes waiting on it
	for i, s := range steps {
		for _, list := range [][]int{s.After, s.OrderAfter} {
			for _, d := range list {
				pending[i]++
				dependents[d-1] = append(dependents[d-1], i)
			}
		}
	}

	if limit <= 0 {
		limit = -1
	}
	var g errgroup.Group // no WithContext: one failure must not cancel the others
	g.SetLimit(limit)
	var waiters sync.WaitGroup
	events := make(chan event, 2*n) // at most one evWaited and one evDone per step
	var queue []int                 // ready to Do, ascending
	finished := 0
	cancelled := false

	var finish func(i int, st Status, err error)
	var ready func(i int)
	finish = func(i int, st Status, err error) {
		rep.Results[i].Status, rep.Results[i].Err = st, err
		finished++
		for _, d := range dependents[i] {
			pending[d]--
			if pending[d] == 0 {
				ready(d)
			}
		}
	}
	ready = func(i int) {
		s := steps[i]
		for _, d := range s.After {
			switch dr := rep.Results[d-1]; dr.Status {
			case StatusFailed, StatusBlocked:
				verb := "failed"
				if dr.Status == StatusBlocked {
					verb = "was not run"
				}
				finish(i, StatusBlocked, fmt.Errorf("%s %s: not run: %w: %s %s %s", s.Action, s.Container, ErrDependencyFailed, dr.Step.Action, dr.Step.Container, verb))
				return
			}
		}
		if cancelled {
			finish(i, StatusSkipped, nil)
			return
		}
		for _, d := range s.After {
			if rep.Results[d-1].Status == StatusSkipped {
				finish(i, StatusSkipped, nil)
				return
			}
		}
		// A dependency whose start step in this plan failed, was blocked
		// or skipped cannot meet its condition: do not wait for it. (For a required
		// one the step is blocked above, as that start step is in After.)
		var waits []Wait
		for _, w := range s.Waits {
			if j, ok := startStep[w.Container]; ok && rep.Results[j].Status > StatusDone {
				rep.Results[i].Warnings = append(rep.Results[i].Warnings, fmt.Sprintf(
					"dependency %s (service %q) was not started (not required; starting anyway)", w.Container, w.Service))
				continue
			}
			waits = append(waits, w)
		}
		if len(waits) == 0 {
			queue = insertSorted(queue, i)
			return
		}
		waiters.Add(1)
		go func() {
			defer waiters.Done()
			warnings, err := waitAll(ctx, ex, waits)
			events <- event{kind: evWaited, id: i, err: err, warnings: warnings}
		}()
	}
	// pump hands queued steps to the errgroup. g.Go blocks while limit
	// steps run; that is safe because running steps never block on the
	// dispatcher (events has room for every event), so a slot always
	// frees up.
	pump := func() {
		for len(queue) > 0 && !cancelled {
			i := queue[0]
			queue = queue[1:]
			s := steps[i]
			g.Go(func() error {
				if ctx.Err() != nil {
					events <- event{kind: evDone, id: i, skipped: true}
					return nil
				}
				events <- event{kind: evDone, id: i, err: safeDo(ctx, ex, s)}
				return nil
			})
		}
	}
	cancel := func() {
		cancelled = true
		q := queue
		queue = nil
		for _, i := range q {
			finish(i, StatusSkipped, nil)
		}
	}

	for i := range steps {
		if pending[i] == 0 {
			ready(i)
		}
	}
	done := ctx.Done()
	for finished < n {
		if !cancelled && ctx.Err() != nil {
			done = nil
			cancel()
		}
		pump()
		if finished == n {
			break
		}
		select {
		case <-done:
			done = nil
			cancel()
		case ev := <-events:
			s := steps[ev.id]
			switch ev.kind {
			case evWaited:
				rep.Results[ev.id].Warnings = append(rep.Results[ev.id].Warnings, ev.warnings...)
				switch {
				case ev.err != nil && ctx.Err() != nil:
					finish(ev.id, StatusSkipped, nil)
				case ev.err != nil:
					finish(ev.id, StatusFailed, fmt.Errorf("%s %s: %w", s.Action, s.Container, ev.err))
				case cancelled:
					finish(ev.id, StatusSkipped, nil)
				default:
					queue = insertSorted(queue, ev.id)
				}
			case evDone:
				if ev.skipped {
					finish(ev.id, StatusSkipped, nil)
				} else if ev.err != nil {
					finish(ev.id, StatusFailed, fmt.Errorf("%s %s: %w", s.Action, s.Container, ev.err))
				} else {
					finish(ev.id, StatusDone, nil)
				}
			}
		}
	}
	_ = g.Wait()
	waiters.Wait()

	var errs *multierror.Error
	for _, res := range rep.Results {
		switch res.Status {
		case StatusFailed:
			errs = multierror.Append(errs, res.Err)
		case StatusBlocked:
			// Report a blocked step only where it is the first victim
			// in another container, and not after a cancellation; the
			// rest follow from it.
			if ctx.Err() == nil && blockerFailedElsewhere(rep, res.Step) {
				errs = multierror.Append(errs, res.Err)
			}
		}
	}
	if err := ctx.Err(); err != nil && rep.Count(StatusSkipped) > 0 {
		errs = multierror.Append(errs, fmt.Errorf("plan interrupted: %w", err))
	}
	return rep, errs.ErrorOrNil()
}

func blockerFailedElsewhere(rep Report, s Step) bool {
	for _, d := range s.After {
		dr := rep.Results[d-1]
		if dr.Status == StatusFailed && dr.Step.Container != s.Container {
			return true
		}
		if dr.Status == StatusFailed || dr.Status == StatusBlocked {
			return false // the first bad dependency decided it
		}
	}
	return false
}

// waitAll waits for a step's conditions in order: a required one that
// fails ends the wait with an error naming the dependency; an optional
// one that fails adds a warning.
func waitAll(ctx context.Context, ex Executor, waits []Wait) ([]string, error) {
	var warnings []string
	for _, w := range waits {
		err := safeWait(ctx, ex, w)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return warnings, ctx.Err()
		}
		err = fmt.Errorf("dependency %s (service %q) not %s: %w", w.Container, w.Service, conditionWord(w.Condition), err)
		if w.Required {
			return warnings, err
		}
		warnings = append(warnings, err.Error()+" (not required; starting anyway)")
	}
	return warnings, nil
}

func conditionWord(c Condition) string {
	if c == ConditionCompleted {
		return "completed successfully"
	}
	return string(c)
}

// safeDo and safeWait turn an executor panic into an error, so a bug in
// one step cannot wedge the walk.
func safeDo(ctx context.Context, ex Executor, s Step) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("executor panic: %v", r)
		}
	}()
	return ex.Do(ctx, s)
}

func safeWait(ctx context.Context, ex Executor, w Wait) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("executor panic: %v", r)
		}
	}()
	return ex.WaitCondition(ctx, w)
}

func insertSorted(q []int, i int) []int {
	j := 0
	for j < len(q) && q[j] < i {
		j++
	}
	q = append(q, 0)
	copy(q[j+1:], q[j:])
	q[j] = i
	return q
}
