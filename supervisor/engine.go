package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/berth-dev/berth/netstack"
	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/image"
	"github.com/berth-dev/berth/supervisor/runtime"
	"github.com/berth-dev/berth/volumes"
)

// Container states, as `ps` shows them (Docker's names).
const (
	StateCreated    = "created"
	StateRunning    = "running"
	StateRestarting = "restarting"
	StatePaused     = "paused"
	StateExited     = "exited"
	StateDead       = "dead"
)

// Conditions WaitCondition understands; the depends_on names with and
// without their "service_" prefix are accepted.
const (
	ConditionStarted               = "started"
	ConditionHealthy               = "healthy"
	ConditionCompletedSuccessfully = "completed_successfully"
)

// Errors callers branch on with errors.Is.
var (
	// ErrExist: a container of that name already exists.
	ErrExist = errors.New("container already exists")
	// ErrNotFound: no such container, or an image that is not there.
	ErrNotFound = errors.New("no such container")
	// ErrRemoved: the container was removed while waiting on it.
	ErrRemoved = errors.New("container removed")
	// ErrIsRunning: the operation needs a stopped container.
	ErrIsRunning = errors.New("container is running")
	// ErrNotRunning: the operation needs a running container.
	ErrNotRunning = errors.New("container is not running")
	// ErrConditionFailed: WaitCondition's condition can no longer be met
	// (the container turned unhealthy, or exited non-zero).
	ErrConditionFailed = errors.New("condition failed")
)

// EngineConfig is what an Engine works with. Every field but Events is
// required; the daemon owns them all and keeps them alive longer than the
// Engine.
type EngineConfig struct {
	// Root is the berth root ($BERTH_ROOT). The engine keeps its files in
	// Root/containers/NAME (bundle, raw output, logs, resolver files),
	// Root/state/containers/NAME.json, Root/netns/NAME, and reads the
	// keeper's exit records in Root/exits.
	Root    string
	Images  *image.Store
	Volumes *volumes.Manager
	Net     *netstack.Manager
	Runtime *runtime.Runtime
	// Events receives every lifecycle event, synchronously, from the
	// goroutine that caused it: it must not block or call back into the
	// Engine. nil drops them.
	Events func(Event)
	// PullOptions are used when an image has to be pulled.
	PullOptions image.PullOptions
}

// Event is one lifecycle event of a container.
type Event struct {
	Time      time.Time
	Project   string
	Service   string
	Container string
	// Action: create, pull, start, die, oom, restart, kill, stop, pause,
	// unpause, health_status, destroy, exec_die (a hook or probe), adopt.
	Action string
	// Status is the new state (or health status for health_status).
	Status   string
	ExitCode int
	Message  string
	// RestartDelay, on a die event whose Status is restarting, is the
	// backoff before the restart.
	RestartDelay time.Duration
}

// ContainerInfo is what `ps` shows of a container (the fields of the
// API's ContainerSummary, and a few more).
type ContainerInfo struct {
	Name        string
	Service     string
	Project     string
	Number      int
	ID          string // 64 hex digits, made at Create
	Image       string // as the service names it
	ImageDigest string // the image ID (config digest, sha256:...)
	ConfigHash  string // spec.ServiceHash at Create
	Command     []string
	State       string // created, running, restarting, paused, exited, dead
	Health      string // "", starting, healthy, unhealthy
	// HealthLog holds the last probe results, oldest first.
	HealthLog []ProbeResult `json:",omitempty"`
	ExitCode  int
	OOMKilled bool
	// Error says why the container is dead or why the last exit code is
	// unknown (255).
	Error         string `json:",omitempty"`
	RestartCount  int
	StoppedByUser bool
	Publishers    []netstack.PortBinding
	Networks      []netstack.Attachment `json:",omitempty"`
	CreatedAt     time.Time
	StartedAt     time.Time
	FinishedAt    time.Time
	Pid           int
}

// RemoveOptions tune Instance.Remove.
type RemoveOptions struct {
	// Volumes also removes the container's anonymous volumes (rm -v).
	Volumes bool
	// Force kills a running container first; without it removing a
	// running container fails with ErrIsRunning.
	Force bool
}

// Engine runs the containers of one berth root: it creates them, owns their
// lifecycle (restarts, health checks, hooks, logs) and their state files,
// and adopts them again after a daemon restart.
//
// Lifecycle: NewEngine starts no goroutines; Create/Adopt start what each
// container needs; Close stops the engine's own goroutines and leaves every
// container running. Methods are safe for concurrent use.
//
// # Files
//
//	Root/containers/NAME/config.json       the OCI spec (the bundle; re-read for every run)
//	Root/containers/NAME/stdout.raw, .raw  the container's stdout/stderr (O_APPEND files)
//	Root/containers/NAME/NAME.log[.N]      JSON-lines log (ReadLogs), rotated per logging.options
//	Root/containers/NAME/{resolv.conf,hosts,hostname}  bound over /etc/...
//	Root/state/containers/NAME.json        the container's state (atomic, fsynced on lifecycle changes)
//	Root/netns/NAME                        the container's network namespace (a bind mount)
//	Root/exits/PID-STARTTIME.json          exit records the keeper writes (read and removed by Adopt)
//
// # Create, start, restart
//
// Create pulls the image per pull_policy, prepares the rootfs (kept until
// Remove: a restart keeps the writable layer), the volumes, a netns file
// attached to the service's networks (eth0, eth1... by network priority),
// the resolver files, the bundle, and creates the runtime container. Start
// publishes the ports, starts the process, registers its DNS names, runs
// post_start hooks and the health checks. Runtime containers are one-shot:
// every later start (a policy restart, Start after an exit) deletes the old
// runtime container and creates a new one from the same bundle, rootfs and
// netns.
//
// # Logs
//
// There are no pipes between a container and the daemon (a dead daemon must
// never SIGPIPE a container): the container writes to the raw files, which
// one inotify watcher per engine ingests into the log, punching the consumed
// prefix out of the raw files. The ingested offsets are kept in the state
// file, so after a daemon restart ingestion resumes where it stopped; lines
// written while no daemon ran get the time they were ingested, not the time
// they were written. A tty service's output comes through a pty master the
// daemon holds: that copy (and the pty) do not survive a daemon crash.
//
// # Restart policies, health, stop
//
// RestartTracker decides with Docker's backoff (100 ms doubling to 1 min,
// reset after 10 s of running); the count is persisted. Stop, Kill with a
// terminating signal, and Remove mark the container "stopped by the user":
// no policy restarts it until Start. Health probes run through the runtime's
// exec (CMD, CMD-SHELL via /bin/sh -c), are killed at their timeout, and feed
// HealthState; x-berth restart_on_unhealthy stops an unhealthy container
// (stop signal, grace, SIGKILL) and starts it again with the policy's backoff
// (always-style when the policy itself would not restart), at most
// unhealthy_restart_limit times.
//
// # Adoption
//
// Adopt reads every state file. A container whose init is the same process
// (pid and /proc start time) is adopted as it is; its exit is awaited
// through a pidfd and its code read from the keeper's exit record (or 255
// with a note when there is none). One that exited meanwhile gets its
// restart policy applied at once, unless the host rebooted since it started
// (the kernel boot id differs): then it is only marked exited, and bringing
// it back (in dependency order) is the daemon's boot restore; its netns is
// made again when it next starts.
type Engine struct {
	cfg EngineConfig

	mu        sync.Mutex // guards the fields below
	instances map[string]*Instance
	creating  map[string]bool // names being created (not listed yet)
	closed    bool

	logs *logWatcher // one inotify watcher for every container's raw output
}

// NewEngine checks cfg and makes the engine's directories. It starts
// nothing.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	if cfg.Root == "" || cfg.Images == nil || cfg.Volumes == nil || cfg.Net == nil || cfg.Runtime == nil {
		return nil, errors.New("engine: Root, Images, Volumes, Net and Runtime are required")
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, err
	}
	cfg.Root = root
	for _, d := range []string{"containers", "state/containers", "netns", "exits"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
	}
	image.SpreadSubdirs(filepath.Join(root, "containers"))
	return &Engine{cfg: cfg, instances: map[string]*Instance{}, creating: map[string]bool{}, logs: newLogWatcher()}, nil
}

// Close stops the engine's log watcher and every health and wait loop
// it runs, leaving the containers running (as a daemon that exits does).
// It is idempotent.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	insts := make([]*Instance, 0, len(e.instances))
	for _, i := range e.instances {
		insts = append(insts, i)
	}
	e.mu.Unlock()
	for _, i := range insts {
		i.detach()
	}
	return e.logs.Close()
}

// Instances returns the containers of project (all when project is ""),
// sorted by name.
func (e *Engine) Instances(project string) []*Instance {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*Instance
	for _, i := range e.instances {
		if project == "" || i.project == project {
			out = append(out, i)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].name < out[b].name })
	return out
}

// Instance returns the container named name.
func (e *Engine) Instance(name string) (*Instance, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	i, ok := e.instances[name]
	return i, ok
}

// ContainerName is the name of replica number of svc: container_name, or
// PROJECT-SERVICE-N.
func ContainerName(p *spec.Project, svc *spec.Service, number int) string {
	if svc.ContainerName != "" {
		return svc.ContainerName
	}
	return fmt.Sprintf("%s-%s-%d", p.Name, svc.Name, number)
}

func (e *Engine) emit(ev Event) {
	if e.cfg.Events == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	e.cfg.Events(ev)
}

func (e *Engine) containerDir(name string) string {
	return filepath.Join(e.cfg.Root, "containers", name)
}

func (e *Engine) statePath(name string) string {
	return filepath.Join(e.cfg.Root, "state", "containers", name+".json")
}

func (e *Engine) netnsPath(name string) string {
	return filepath.Join(e.cfg.Root, "netns", name)
}

func (e *Engine) exitRecordPath(pid int, start uint64) string {
	return filepath.Join(e.cfg.Root, "exits", fmt.Sprintf("%d-%d.json", pid, start))
}

var _ = context.Background
