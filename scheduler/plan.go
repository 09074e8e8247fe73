package scheduler

import (
	"fmt"
	"strconv"
	"strings"
)

// Action is what a step does to one container.
type Action string

// Step actions. A recreate is stop + remove + create + start; a restart is
// stop + start.
const (
	ActionCreate Action = "create"
	ActionStart  Action = "start"
	ActionStop   Action = "stop"
	ActionRemove Action = "remove"
)

// Causes: why a step is in the plan. Causes that name another service are
// built by the planner ("dependency db restarted", "shares namespaces
// with db").
const (
	CauseNew           = "new"
	CauseScaleUp       = "scale up"
	CauseConfigChanged = "config changed"
	CauseImageChanged  = "image changed"
	CauseForced        = "forced"
	CauseNotRunning    = "not running"
	CauseScaleDown     = "scale down"
	CauseDuplicate     = "duplicate number"
	CauseOrphan        = "orphan"
	CauseDown          = "down"
)

// Wait is a dependency condition a start step waits for after its After
// steps are done, through Executor.WaitCondition.
type Wait struct {
	Service   string
	Container string
	Condition Condition
	// Required is false for a depends_on with required: false: if the
	// wait fails, the step runs anyway and the report carries a warning.
	Required bool
}

func (w Wait) String() string {
	s := w.Container + " " + string(w.Condition)
	if !w.Required {
		s += "?"
	}
	return s
}

// Step is one action on one container.
type Step struct {
	// ID is the step's 1-based position in Plan.Steps.
	ID        int
	Action    Action
	Service   string
	Number    int    // replica number, from 1
	Container string // container name
	// After lists steps that must have succeeded before this one runs; if
	// one fails (or is blocked) this step is blocked.
	After []int
	// OrderAfter lists steps that must have finished, in any state,
	// before this one runs (ordering only: required: false dependencies,
	// and stop/remove order between containers).
	OrderAfter []int
	// Waits are the dependency conditions checked (start steps only)
	// once every After and OrderAfter step has finished.
	Waits []Wait
	// Cause says why the step is planned.
	Cause string
}

// String prints the step on one line, as in Plan.String.
func (s Step) String() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(s.ID))
	b.WriteString(". ")
	b.WriteString(string(s.Action))
	b.WriteByte(' ')
	b.WriteString(s.Container)
	if len(s.After)+len(s.OrderAfter) > 0 {
		b.WriteString(" after [")
		first := true
		for _, id := range s.After {
			if !first {
				b.WriteByte(' ')
			}
			first = false
			b.WriteString(strconv.Itoa(id))
		}
		for _, id := range s.OrderAfter {
			if !first {
				b.WriteByte(' ')
			}
			first = false
			b.WriteByte('~')
			b.WriteString(strconv.Itoa(id))
		}
		b.WriteByte(']')
	}
	if len(s.Waits) > 0 {
		b.WriteString(" wait [")
		for i, w := range s.Waits {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(w.String())
		}
		b.WriteByte(']')
	}
	if s.Cause != "" {
		b.WriteString(" (")
		b.WriteString(s.Cause)
		b.WriteByte(')')
	}
	return b.String()
}

// Plan is an ordered list of steps. Steps are in an order that respects
// every dependency (each After and OrderAfter ID is smaller than the
// step's own), so running them one by one in order is always valid;
// Execute runs independent steps concurrently.
//
// A Plan is a value: the planner builds it, nothing changes it after.
type Plan struct {
	Project string
	Steps   []Step
	// Warnings are notes for the user (orphans left in place), sorted.
	Warnings []string
}

// Empty reports whether the plan has no steps.
func (p *Plan) Empty() bool { return p == nil || len(p.Steps) == 0 }

// String prints one step per line, then one line per warning, each line
// ending in a newline. An empty plan without warnings prints "". Tests
// compare this text. For web depending on db (service_healthy):
//
//	[plan]
//	1. create demo-db-1 (new)
//	2. start demo-db-1 after [1] (new)
//	3. create demo-web-1 after [~1] (new)
//	4. start demo-web-1 after [2 3] wait [demo-db-1 healthy] (new)
//	warning: ...
//
// "~N" marks an ordering-only dependency, "condition?" an optional wait.
func (p *Plan) String() string {
	if p == nil {
		return ""
	}
	var b strings.Builder
	for _, s := range p.Steps {
		b.WriteString(s.String())
		b.WriteByte('\n')
	}
	for _, w := range p.Warnings {
		b.WriteString("warning: ")
		b.WriteString(w)
		b.WriteByte('\n')
	}
	return b.String()
}

// Validate checks the plan's shape: IDs are 1..n in order, every
// dependency names an earlier step, actions are known. Execute calls it;
// plans from this package always pass.
func (p *Plan) Validate() error {
	if p == nil {
		return fmt.Errorf("%w: nil plan", ErrInvalid)
	}
	for i, s := range p.Steps {
		if s.ID != i+1 {
			return fmt.Errorf("%w: step %d has ID %d", ErrInvalid, i+1, s.ID)
		}
		switch s.Action {
		case ActionCreate, ActionStart, ActionStop, ActionRemove:
		default:
			return fmt.Errorf("%w: step %d: unknown action %q", ErrInvalid, s.ID, s.Action)
		}
		for _, list := range [][]int{s.After, s.OrderAfter} {
			for _, d := range list {
				if d < 1 || d >= s.ID {
					return fmt.Errorf("%w: step %d depends on step %d, which is not an earlier step", ErrInvalid, s.ID, d)
				}
			}
		}
	}
	return nil
}
