package supervisor

import (
	"time"

	"github.com/berth-dev/berth/spec"
)

// Health statuses, as Docker reports them. A container without a health
// check has the empty status.
const (
	HealthNone      = ""
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// Docker's defaults for health check timing.
const (
	defaultHealthInterval      = 30 * time.Second
	defaultHealthTimeout       = 30 * time.Second
	defaultHealthStartInterval = 5 * time.Second
	defaultHealthRetries       = 3

	// healthLogLen is how many probe results are kept, and
	// healthOutputMax how much of each probe's output.
	healthLogLen    = 5
	healthOutputMax = 4096
)

// ProbeResult is the outcome of one health probe.
type ProbeResult struct {
	Start    time.Time `json:"Start"`
	End      time.Time `json:"End"`
	ExitCode int       `json:"ExitCode"` // 0 healthy, anything else failing; -1 for a probe that timed out or could not run
	Output   string    `json:"Output"`
}

// HealthConfig is a health check with Docker's defaults filled in.
type HealthConfig struct {
	Test          []string
	Interval      time.Duration
	Timeout       time.Duration
	StartPeriod   time.Duration
	StartInterval time.Duration
	Retries       int
}

// NewHealthConfig fills in Docker's defaults. It returns nil when the
// service has no active health check (none given, disable: true, or
// test NONE).
func NewHealthConfig(h *spec.Healthcheck) *HealthConfig {
	if h == nil || h.Disable || len(h.Test) == 0 || h.Test[0] == "NONE" {
		return nil
	}
	c := &HealthConfig{
		Test:          h.Test,
		Interval:      defaultHealthInterval,
		Timeout:       defaultHealthTimeout,
		StartInterval: defaultHealthStartInterval,
		Retries:       defaultHealthRetries,
	}
	set := func(dst *time.Duration, d *spec.Duration) {
		if d != nil && d.D() > 0 {
			*dst = d.D()
		}
	}
	set(&c.Interval, h.Interval)
	set(&c.Timeout, h.Timeout)
	set(&c.StartPeriod, h.StartPeriod)
	set(&c.StartInterval, h.StartInterval)
	if h.Retries != nil && *h.Retries > 0 {
		c.Retries = *h.Retries
	}
	return c
}

// HealthState is one container's health: a pure state machine fed with
// probe results and the clock by its caller, which runs the probes.
//
//	          success                    success
//	starting ─────────► healthy ◄──────────────────┐
//	   │                   │ retries failures       │
//	   │ retries failures  ▼  in a row              │
//	   └─(after start ──► unhealthy ────────────────┘
//	      period)
//
// Failures during the start period do not count; a success during it ends
// it. It is not safe for concurrent use.
type HealthState struct {
	cfg     HealthConfig
	started time.Time

	status        string
	failingStreak int
	inStartPeriod bool
	log           []ProbeResult
}

// NewHealthState starts the machine for a container started at now.
func NewHealthState(cfg HealthConfig, now time.Time) *HealthState {
	return &HealthState{cfg: cfg, started: now, status: HealthStarting, inStartPeriod: cfg.StartPeriod > 0}
}

// Status is the current health status.
func (h *HealthState) Status() string { return h.status }

// FailingStreak counts the failed probes since the last success.
func (h *HealthState) FailingStreak() int { return h.failingStreak }

// Log returns the last results, oldest first.
func (h *HealthState) Log() []ProbeResult { return append([]ProbeResult(nil), h.log...) }

// NextProbe is how long after the previous probe (or the container start)
// the next probe runs: the start interval during the start period, the
// interval after it.
func (h *HealthState) NextProbe(now time.Time) time.Duration {
	if h.inStartPeriod && now.Sub(h.started) < h.cfg.StartPeriod {
		return h.cfg.StartInterval
	}
	return h.cfg.Interval
}

// Record feeds one probe result in and reports whether the status changed.
func (h *HealthState) Record(r ProbeResult) (changed bool) {
	if len(r.Output) > healthOutputMax {
		r.Output = r.Output[:healthOutputMax]
	}
	h.log = append(h.log, r)
	if len(h.log) > healthLogLen {
		h.log = h.log[len(h.log)-healthLogLen:]
	}
	before := h.status
	if h.inStartPeriod && r.End.Sub(h.started) >= h.cfg.StartPeriod {
		h.inStartPeriod = false
	}
	if r.ExitCode == 0 {
		h.failingStreak = 0
		h.inStartPeriod = false
		h.status = HealthHealthy
		return before != h.status
	}
	if h.inStartPeriod {
		// Failures while the container starts up do not count.
		return false
	}
	h.failingStreak++
	if h.failingStreak >= h.cfg.Retries {
		h.status = HealthUnhealthy
	}
	return before != h.status
}
