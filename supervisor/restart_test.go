package supervisor

import (
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/spec"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func dur(d time.Duration) *spec.Duration { v := spec.Duration(d); return &v }

func TestRestartNo(t *testing.T) {
	tr := NewRestartTracker(spec.RestartPolicy{})
	tr.Started(t0)
	if d := tr.Exited(t0.Add(time.Second), Exit{Code: 1}); d.Restart {
		t.Fatalf("policy no restarted: %+v", d)
	}
}

func TestRestartOnFailureLimitAndBackoff(t *testing.T) {
	tr := NewRestartTracker(spec.RestartPolicy{Condition: "on-failure", MaxAttempts: 3})
	now := t0
	tr.Started(now)
	var delays []time.Duration
	for i := 0; i < 5; i++ {
		now = now.Add(500 * time.Millisecond) // crashes quickly each time
		d := tr.Exited(now, Exit{Code: 2})
		if !d.Restart {
			break
		}
		delays = append(delays, d.Delay)
		now = now.Add(d.Delay)
		tr.Started(now)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}
	if len(delays) != len(want) {
		t.Fatalf("restarted %d times (%v), want 3", len(delays), delays)
	}
	for i := range want {
		if delays[i] != want[i] {
			t.Fatalf("delays = %v, want %v", delays, want)
		}
	}
	if tr.Count() != 3 {
		t.Fatalf("count = %d", tr.Count())
	}
	d := tr.Exited(now.Add(time.Second), Exit{Code: 2})
	if d.Restart || !strings.Contains(d.Reason, "gave up after 3") {
		t.Fatalf("fourth failure: %+v", d)
	}
}

func TestRestartOnFailureSuccessStops(t *testing.T) {
	tr := NewRestartTracker(spec.RestartPolicy{Condition: "on-failure"})
	tr.Started(t0)
	if d := tr.Exited(t0.Add(time.Second), Exit{Code: 0}); d.Restart {
		t.Fatalf("on-failure restarted a clean exit")
	}
}

func TestRestartBackoffCapsAndResets(t *testing.T) {
	tr := NewRestartTracker(spec.RestartPolicy{Condition: "always"})
	now := t0
	tr.Started(now)
	var last time.Duration
	for i := 0; i < 15; i++ {
		now = now.Add(10 * time.Millisecond)
		d := tr.Exited(now, Exit{Code: 0})
		if !d.Restart {
			t.Fatalf("always did not restart: %+v", d)
		}
		last = d.Delay
		now = now.Add(d.Delay)
		tr.Started(now)
	}
	if last != time.Minute {
		t.Fatalf("backoff after 15 quick exits = %v, want the 1m cap", last)
	}
	// Running for 10s resets the backoff.
	now = now.Add(10 * time.Second)
	if d := tr.Exited(now, Exit{Code: 1}); d.Delay != 100*time.Millisecond {
		t.Fatalf("delay after a long run = %v, want 100ms", d.Delay)
	}
}

func TestRestartStoppedByUser(t *testing.T) {
	for _, c := range []string{"always", "unless-stopped", "on-failure"} {
		tr := NewRestartTracker(spec.RestartPolicy{Condition: c})
		tr.Started(t0)
		if d := tr.Exited(t0.Add(time.Second), Exit{Code: 137, StoppedByUser: true}); d.Restart {
			t.Errorf("%s restarted a container the user stopped", c)
		}
	}
}

func TestRestartDeployDelayAndWindow(t *testing.T) {
	tr := NewRestartTracker(spec.RestartPolicy{Condition: "on-failure", MaxAttempts: 2, Delay: dur(3 * time.Second), Window: dur(time.Minute)})
	now := t0
	tr.Started(now)
	for i := 0; i < 2; i++ {
		now = now.Add(time.Second)
		d := tr.Exited(now, Exit{Code: 1})
		if !d.Restart || d.Delay != 3*time.Second {
			t.Fatalf("attempt %d: %+v, want a restart after the fixed 3s delay", i+1, d)
		}
		now = now.Add(d.Delay)
		tr.Started(now)
	}
	if d := tr.Exited(now.Add(time.Second), Exit{Code: 1}); d.Restart {
		t.Fatalf("third attempt inside the window restarted: %+v", d)
	}
	// Past the window the old attempts no longer count.
	now = now.Add(2 * time.Minute)
	if d := tr.Exited(now, Exit{Code: 1}); !d.Restart {
		t.Fatalf("attempt after the window did not restart: %+v", d)
	}
}

func TestRestartOnBoot(t *testing.T) {
	cases := []struct {
		cond    string
		stopped bool
		want    bool
	}{
		{"always", false, true}, {"unless-stopped", false, true},
		{"always", true, false}, {"unless-stopped", true, false},
		{"on-failure", false, false}, {"no", false, false},
	}
	for _, c := range cases {
		if got := RestartOnBoot(spec.RestartPolicy{Condition: c.cond}, c.stopped); got != c.want {
			t.Errorf("RestartOnBoot(%s, stopped=%v) = %v", c.cond, c.stopped, got)
		}
	}
}
