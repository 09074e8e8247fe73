package supervisor

import (
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/spec"
)

func probe(at time.Time, code int) ProbeResult {
	return ProbeResult{Start: at, End: at.Add(time.Millisecond), ExitCode: code}
}

func TestHealthConfigDefaults(t *testing.T) {
	if NewHealthConfig(nil) != nil || NewHealthConfig(&spec.Healthcheck{Disable: true, Test: []string{"CMD", "true"}}) != nil ||
		NewHealthConfig(&spec.Healthcheck{Test: []string{"NONE"}}) != nil {
		t.Fatal("disabled health checks must give no config")
	}
	c := NewHealthConfig(&spec.Healthcheck{Test: []string{"CMD", "true"}})
	if c.Interval != 30*time.Second || c.Timeout != 30*time.Second || c.Retries != 3 || c.StartInterval != 5*time.Second || c.StartPeriod != 0 {
		t.Fatalf("defaults = %+v", c)
	}
	r := 7
	c = NewHealthConfig(&spec.Healthcheck{Test: []string{"CMD", "true"}, Interval: dur(time.Second), Retries: &r, StartPeriod: dur(time.Minute)})
	if c.Interval != time.Second || c.Retries != 7 || c.StartPeriod != time.Minute {
		t.Fatalf("explicit values lost: %+v", c)
	}
}

func TestHealthTurnsUnhealthyAfterRetries(t *testing.T) {
	h := NewHealthState(HealthConfig{Interval: time.Second, Retries: 3}, t0)
	if h.Status() != HealthStarting {
		t.Fatalf("initial status %q", h.Status())
	}
	now := t0
	for i := 1; i <= 2; i++ {
		now = now.Add(time.Second)
		if h.Record(probe(now, 1)) {
			t.Fatalf("status changed after %d failures", i)
		}
	}
	now = now.Add(time.Second)
	if !h.Record(probe(now, 1)) || h.Status() != HealthUnhealthy {
		t.Fatalf("after 3 failures: %q", h.Status())
	}
	now = now.Add(time.Second)
	if !h.Record(probe(now, 0)) || h.Status() != HealthHealthy || h.FailingStreak() != 0 {
		t.Fatalf("a success must make it healthy again: %q", h.Status())
	}
}

func TestHealthStartPeriod(t *testing.T) {
	h := NewHealthState(HealthConfig{Interval: 10 * time.Second, StartInterval: time.Second, StartPeriod: 5 * time.Second, Retries: 1}, t0)
	if d := h.NextProbe(t0); d != time.Second {
		t.Fatalf("probe interval in the start period = %v", d)
	}
	for i := 1; i <= 4; i++ {
		h.Record(probe(t0.Add(time.Duration(i)*time.Second), 1))
	}
	if h.Status() != HealthStarting || h.FailingStreak() != 0 {
		t.Fatalf("failures in the start period counted: %q streak %d", h.Status(), h.FailingStreak())
	}
	// After the start period one failure (retries 1) is enough.
	h.Record(probe(t0.Add(6*time.Second), 1))
	if h.Status() != HealthUnhealthy {
		t.Fatalf("status after the start period = %q", h.Status())
	}
	if d := h.NextProbe(t0.Add(6 * time.Second)); d != 10*time.Second {
		t.Fatalf("interval after the start period = %v", d)
	}
}

func TestHealthSuccessEndsStartPeriod(t *testing.T) {
	h := NewHealthState(HealthConfig{Interval: 10 * time.Second, StartInterval: time.Second, StartPeriod: time.Minute, Retries: 1}, t0)
	h.Record(probe(t0.Add(time.Second), 0))
	if h.Status() != HealthHealthy {
		t.Fatalf("status = %q", h.Status())
	}
	h.Record(probe(t0.Add(2*time.Second), 1))
	if h.Status() != HealthUnhealthy {
		t.Fatalf("a failure after the first success must count: %q", h.Status())
	}
	if d := h.NextProbe(t0.Add(2 * time.Second)); d != 10*time.Second {
		t.Fatalf("next probe = %v, want the interval once the start period ended", d)
	}
}

func TestHealthLogIsBounded(t *testing.T) {
	h := NewHealthState(HealthConfig{Interval: time.Second, Retries: 3}, t0)
	for i := 0; i < 9; i++ {
		r := probe(t0.Add(time.Duration(i)*time.Second), i%2)
		r.Output = strings.Repeat("x", 10000)
		h.Record(r)
	}
	log := h.Log()
	if len(log) != 5 {
		t.Fatalf("log holds %d results, want 5", len(log))
	}
	if !log[4].Start.Equal(t0.Add(8*time.Second)) || len(log[0].Output) != 4096 {
		t.Fatalf("log not the newest 5, capped: first output %d bytes", len(log[0].Output))
	}
}
