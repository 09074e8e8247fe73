package e2e

import (
	"strings"
	"testing"
	"time"
)

// A second `up -d` with no change touches nothing: every container keeps
// its ID and start time, and the progress names no recreate, create,
// stop or start.
func TestUpAgainTouchesNothing(t *testing.T) {
	s := newStack(t, "reconcile")
	s.must("up", "-d")
	before := s.ps()
	if len(before) != 3 {
		t.Fatalf("after up -d ps lists %d containers: %+v", len(before), before)
	}
	r := s.must("up", "-d")
	for _, verb := range []string{"Recreat", "Creat", "Stopp", "Starting", "Started", "Removed"} {
		if strings.Contains(r.stderr, verb) {
			t.Errorf("second up -d with no change says %q:\n%s", verb, r.stderr)
		}
	}
	after := s.ps()
	if len(after) != 3 {
		t.Fatalf("after the second up -d ps lists %d containers: %+v", len(after), after)
	}
	for svc, b := range before {
		a, ok := after[svc]
		if !ok || a.ID != b.ID || !a.StartedAt.Equal(b.StartedAt) || a.State != "running" || a.RestartCount != 0 {
			t.Errorf("second up -d touched %s: %+v -> %+v", svc, b, a)
		}
	}
}

// Changing one service's configuration (an interpolated environment value)
// and running `up -d` recreates that service alone.
func TestUpRecreatesOnlyChangedService(t *testing.T) {
	s := newStack(t, "reconcile", "BETA_VALUE=one")
	s.must("up", "-d")
	before := s.ps()
	if len(before) != 3 {
		t.Fatalf("after up -d ps lists %d containers: %+v", len(before), before)
	}
	if r := s.must("exec", "-T", "beta", "sh", "-c", "echo $VALUE"); strings.TrimSpace(r.stdout) != "one" {
		t.Fatalf("beta's VALUE = %q, want one", r.stdout)
	}

	s.env = append(s.env, "BETA_VALUE=two")
	r := s.must("up", "-d")
	beta := s.project + "-beta-1"
	if !strings.Contains(r.stderr, "Container "+beta+" Removed") || !strings.Contains(r.stderr, "Container "+beta+" Started") {
		t.Errorf("up -d after the change does not replace %s:\n%s", beta, r.stderr)
	}
	if strings.Contains(r.stderr, "Network ") {
		t.Errorf("up -d after a change to beta reports a network it did not make:\n%s", r.stderr)
	}
	for _, other := range []string{s.project + "-alpha-1", s.project + "-gamma-1"} {
		if strings.Contains(r.stderr, other) {
			t.Errorf("up -d after a change to beta names %s:\n%s", other, r.stderr)
		}
	}
	after := s.ps()
	if len(after) != 3 {
		t.Fatalf("after the second up -d ps lists %d containers: %+v", len(after), after)
	}
	for svc, b := range before {
		a := after[svc]
		if a.State != "running" {
			t.Errorf("after the second up -d %s is %q", svc, a.State)
		}
		changed := a.ID != b.ID || !a.StartedAt.Equal(b.StartedAt)
		if svc == "beta" && !changed {
			t.Errorf("beta's config changed but it kept ID %s and start %s", a.ID, a.StartedAt)
		}
		if svc != "beta" && changed {
			t.Errorf("%s did not change but was touched: %+v -> %+v", svc, b, a)
		}
	}
	if a, b := after["beta"], before["beta"]; a.ID != "" && !a.StartedAt.After(b.StartedAt) {
		t.Errorf("recreated beta started at %s, not after the old one (%s)", a.StartedAt, b.StartedAt)
	}
	if r := s.must("exec", "-T", "beta", "sh", "-c", "echo $VALUE"); strings.TrimSpace(r.stdout) != "two" {
		t.Errorf("recreated beta's VALUE = %q, want two", r.stdout)
	}
}

// x-berth restart_on_unhealthy with unhealthy_restart_limit 2: the
// container is restarted each time it turns unhealthy, twice and no
// more; then it stays up, unhealthy.
func TestRestartOnUnhealthyLimit(t *testing.T) {
	s := newStack(t, "selfheal")
	s.must("up", "-d")
	first := s.ps()["healer"]
	if first.ID == "" {
		t.Fatalf("no healer after up -d: %+v", s.ps())
	}
	var cur psEntry
	waitUntil(t, 30*time.Second, "healer to be restarted twice and unhealthy", func() bool {
		cur = s.ps()["healer"]
		if cur.RestartCount > 2 {
			t.Fatalf("healer restarted %d times, limit 2: %+v", cur.RestartCount, cur)
		}
		// The count goes up as the restart begins; done is running
		// again after the second restart, then unhealthy once more.
		return cur.RestartCount == 2 && cur.State == "running" && cur.Health == "unhealthy"
	})
	if cur.ID != first.ID {
		t.Errorf("restart_on_unhealthy replaced the container: %s -> %s", first.ID, cur.ID)
	}
	if !cur.StartedAt.After(first.StartedAt) {
		t.Errorf("healer's start %s is not after its first start %s", cur.StartedAt, first.StartedAt)
	}
	// Past the limit it is left alone: a few more health cycles (each
	// start turns unhealthy about 1.5 s later) bring no further restart.
	end := time.Now().Add(4 * time.Second)
	for time.Now().Before(end) {
		c := s.ps()["healer"]
		if c.RestartCount != 2 || c.State != "running" || !c.StartedAt.Equal(cur.StartedAt) {
			t.Fatalf("after reaching the limit healer changed: %+v -> %+v", cur, c)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if c := s.ps()["healer"]; c.Health != "unhealthy" {
		t.Errorf("past the limit healer's health is %q, want unhealthy", c.Health)
	}
}
