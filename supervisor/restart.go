package supervisor

import (
	"fmt"
	"time"

	"github.com/berth-dev/berth/spec"
)

// Restart backoff, as Docker does it: the first restart waits 100 ms, each
// further one twice as long up to one minute, and a container that ran for
// at least ten seconds starts over at 100 ms.
const (
	backoffInitial = 100 * time.Millisecond
	backoffMax     = time.Minute
	backoffReset   = 10 * time.Second
)

// Exit describes how a container's main process ended.
type Exit struct {
	Code int
	// StoppedByUser is set when berth stopped the container on request
	// (stop, down, kill from the CLI): no policy restarts it then.
	StoppedByUser bool
}

// RestartDecision is what the restart policy says about an exit.
type RestartDecision struct {
	Restart bool
	// Delay is how long to wait before starting again.
	Delay time.Duration
	// Reason explains the decision, for events and logs.
	Reason string
}

// RestartTracker applies one container's restart policy. It is a pure
// value: exits and start times go in, decisions come out; the caller owns
// the clock and the timer. It is not safe for concurrent use.
type RestartTracker struct {
	policy spec.RestartPolicy

	count     int         // restarts decided so far (what `ps` shows)
	attempts  []time.Time // restart times still inside the policy's window
	backoff   time.Duration
	startedAt time.Time
}

// NewRestartTracker returns a tracker for policy. An empty condition is
// "no".
func NewRestartTracker(policy spec.RestartPolicy) *RestartTracker {
	if policy.Condition == "" {
		policy.Condition = "no"
	}
	return &RestartTracker{policy: policy}
}

// Count is the number of restarts decided so far.
func (t *RestartTracker) Count() int { return t.count }

// SetCount restores the count after a supervisor restart.
func (t *RestartTracker) SetCount(n int) { t.count = n }

// Started records that the container's process started at now.
func (t *RestartTracker) Started(now time.Time) { t.startedAt = now }

// Exited decides what to do about an exit at now.
func (t *RestartTracker) Exited(now time.Time, e Exit) RestartDecision {
	p := t.policy
	if e.StoppedByUser {
		return RestartDecision{Reason: "stopped by the user"}
	}
	switch p.Condition {
	case "no":
		return RestartDecision{Reason: "restart policy is \"no\""}
	case "on-failure":
		if e.Code == 0 {
			return RestartDecision{Reason: "exited successfully (on-failure)"}
		}
	case "always", "unless-stopped":
	default:
		return RestartDecision{Reason: fmt.Sprintf("unknown restart policy %q", p.Condition)}
	}

	// A window keeps only the attempts made within it: older ones no
	// longer count toward max_attempts (deploy.restart_policy.window).
	if p.Window != nil && p.Window.D() > 0 {
		kept := t.attempts[:0]
		for _, a := range t.attempts {
			if now.Sub(a) < p.Window.D() {
				kept = append(kept, a)
			}
		}
		t.attempts = kept
	}
	if p.MaxAttempts > 0 && len(t.attempts) >= p.MaxAttempts {
		return RestartDecision{Reason: fmt.Sprintf("gave up after %d restart attempts", p.MaxAttempts)}
	}

	ran := now.Sub(t.startedAt)
	if t.startedAt.IsZero() || ran >= backoffReset {
		t.backoff = 0
	}
	var delay time.Duration
	if p.Delay != nil && p.Delay.D() > 0 {
		// deploy.restart_policy.delay: a fixed wait between attempts.
		delay = p.Delay.D()
	} else {
		if t.backoff == 0 {
			t.backoff = backoffInitial
		} else {
			t.backoff *= 2
			if t.backoff > backoffMax {
				t.backoff = backoffMax
			}
		}
		delay = t.backoff
	}
	t.count++
	t.attempts = append(t.attempts, now)
	return RestartDecision{
		Restart: true,
		Delay:   delay,
		Reason:  fmt.Sprintf("exit code %d, restart policy %q (restart %d)", e.Code, p.Condition, t.count),
	}
}

// RestartOnBoot tells whether a container that was running before the
// supervisor (or the host) went down comes back by itself: "always" and
// "unless-stopped" do, unless the user had stopped the container. Docker
// also brings back a user-stopped "always" container when its daemon
// restarts; berth does not, since a user who stopped it meant it.
func RestartOnBoot(policy spec.RestartPolicy, stoppedByUser bool) bool {
	if stoppedByUser {
		return false
	}
	return policy.Condition == "always" || policy.Condition == "unless-stopped"
}
