package api

import (
	"errors"
	"strings"
	"time"

	"github.com/berth-dev/berth/spec"
)

// SocketName is the daemon's socket in the berth root.
const SocketName = "berth.sock"

// Info answers /v1/ping.
type Info struct {
	Version string
	Pid     int
	Root    string
	// StartedAt is when this daemon process started.
	StartedAt time.Time
}

// UpOptions are the flags of `up` the daemon acts on. Attached output
// (logs, --abort-on-container-exit, --exit-code-from) is the CLI's
// business: it follows Logs and Events after Up returns.
type UpOptions struct {
	// Detach is informational (the daemon never attaches).
	Detach bool
	// Wait waits, after the plan ran, until every started container is
	// running and, when it has a health check, healthy (up --wait).
	Wait bool
	// WaitTimeout bounds Wait; zero means no bound.
	WaitTimeout   time.Duration
	ForceRecreate bool
	NoRecreate    bool
	// RenewAnonVolumes recreates the containers with fresh anonymous
	// volumes instead of keeping their previous ones (up -V).
	RenewAnonVolumes bool
	NoDeps           bool
	RemoveOrphans    bool
	NoStart          bool
	// Pull overrides every service's pull_policy: always, missing, never
	// ("" keeps the services' own).
	Pull string
	// Scale overrides replica counts (up --scale SVC=N).
	Scale map[string]int
	// Timeout is the stop timeout for containers being recreated or
	// removed (up -t); nil means each service's stop_grace_period.
	Timeout *time.Duration
	// AbortOnExit and ExitCodeFrom are carried for the record only.
	AbortOnExit  bool
	ExitCodeFrom string
}

// UpRequest is the body of POST /v1/up. Project is the loaded, normalized
// project; the CLI loads the compose files.
type UpRequest struct {
	Project *spec.Project
	// Services limits up to these services (plus dependencies unless
	// Options.NoDeps); empty means all.
	Services []string
	Options  UpOptions
}

// DownRequest is the body of POST /v1/down. The daemon works from the
// project state it saved at the last up; Project, when given, is used to
// tell orphans apart (services no longer in the files).
type DownRequest struct {
	ProjectName   string
	Project       *spec.Project `json:",omitempty"`
	RemoveOrphans bool
	// Volumes removes named (non-external) and anonymous volumes (down -v).
	Volumes bool
	// Timeout is the stop timeout (down -t); nil: stop_grace_period.
	Timeout *time.Duration
	// RMI removes images the project used: "local" (images that have no
	// custom tag: the services without an image: name, i.e. built ones)
	// or "all".
	RMI string
}

// Event is one step of progress (create, start, stop, remove, pull...)
// or one container lifecycle event (die, restart, health_status, oom...).
type Event struct {
	Time      time.Time
	Project   string `json:",omitempty"`
	Service   string `json:",omitempty"`
	Container string `json:",omitempty"`
	// Action: for plan progress, the step action (create, start, stop,
	// remove) with Status "working", "done" or "error"; for lifecycle
	// events (the engine's): create, pull, start, die, oom, restart, kill,
	// stop, pause, unpause, health_status, destroy, exec_die, adopt, with
	// Status the new state or health. Also "network" and "volume" for
	// networks and volumes made or removed, and "warning".
	Action   string
	Status   string `json:",omitempty"`
	ExitCode int    `json:",omitempty"`
	Message  string `json:",omitempty"`
	Error    string `json:",omitempty"`
}

// Result ends an up, down or run stream.
type Result struct {
	// Errors lists every failure, sorted; empty means success.
	Errors []string `json:",omitempty"`
	// Warnings are notes for the user (orphans left, optional waits failed).
	Warnings []string `json:",omitempty"`
	// ExitCode is the run container's exit code (run only).
	ExitCode int
	// Containers lists the containers the operation touched (run: the one
	// container's name).
	Containers []string `json:",omitempty"`
}

// Err returns the Result's errors as one error, or nil.
func (r *Result) Err() error {
	if r == nil || len(r.Errors) == 0 {
		return nil
	}
	if len(r.Errors) == 1 {
		return errors.New(r.Errors[0])
	}
	return errors.New(strings.Join(r.Errors, "\n"))
}

// Publisher is one published port, as `ps --format json` shows it.
type Publisher struct {
	URL           string // host address, "0.0.0.0" for every address
	TargetPort    int
	PublishedPort int
	Protocol      string
}

// ContainerSummary is what ps shows of one container.
type ContainerSummary struct {
	ID      string
	Name    string
	Project string
	Service string
	Number  int
	Image   string
	// Command is the container's command line, joined by spaces.
	Command      string
	State        string // created, running, restarting, paused, exited, dead
	Health       string // "", starting, healthy, unhealthy
	ExitCode     int
	OOMKilled    bool   `json:",omitempty"`
	Error        string `json:",omitempty"`
	RestartCount int
	Publishers   []Publisher
	Networks     []string `json:",omitempty"`
	CreatedAt    time.Time
	StartedAt    time.Time
	// FinishedAt is absent for a container that never exited.
	FinishedAt time.Time `json:",omitzero"`
	Pid        int       `json:",omitempty"`
	// StoppedByUser: stopped on request; no restart policy brings it back.
	StoppedByUser bool `json:",omitempty"`
}

// ContainerRequest is the body of POST /v1/containers/{name}/{action}.
type ContainerRequest struct {
	// Timeout for stop and restart; nil: the service's stop_grace_period.
	Timeout *time.Duration `json:",omitempty"`
	// Signal for kill, by name (SIGTERM, TERM, KILL) or number; "" = SIGKILL.
	Signal string `json:",omitempty"`
	// Force and Volumes for rm.
	Force   bool `json:",omitempty"`
	Volumes bool `json:",omitempty"`
	// Condition for wait: exited (default), started, healthy,
	// completed_successfully.
	Condition string `json:",omitempty"`
}

// Container actions.
const (
	ActionStart   = "start"
	ActionStop    = "stop"
	ActionRestart = "restart"
	ActionKill    = "kill"
	ActionPause   = "pause"
	ActionUnpause = "unpause"
	ActionRemove  = "rm"
	ActionWait    = "wait"
)

// ContainerResponse answers a container action with the container as it
// is afterwards (zero after rm).
type ContainerResponse struct {
	Container ContainerSummary
}

// LogsRequest selects log lines (GET /v1/logs).
type LogsRequest struct {
	Project string
	// Services and Containers filter (empty: every container of Project).
	Services   []string
	Containers []string
	Follow     bool
	// Tail is the number of last lines per container; negative: all.
	Tail int
	// Since drops older lines (zero: none dropped).
	Since time.Time
	// CaughtUp, when following, is called once every line already in the
	// logs has been delivered and only new ones follow.
	CaughtUp func() `json:"-"`
}

// EventLogsCaughtUp is the Action of the event a following logs stream
// sends once it has sent every line that was already logged.
const EventLogsCaughtUp = "logs-caught-up"

// LogLine is one line of a container's output.
type LogLine struct {
	Container string
	Service   string
	Stream    string // stdout or stderr
	Time      time.Time
	Log       string // without the trailing newline
}

// ProjectSummary is one line of `ls`.
type ProjectSummary struct {
	Name string
	// Status as Compose prints it: "running(2), exited(1)".
	Status      string
	ConfigFiles []string `json:",omitempty"`
	WorkingDir  string   `json:",omitempty"`
	// Containers counts containers by state.
	Containers map[string]int `json:",omitempty"`
}

// ProjectInfo answers GET /v1/projects/{name}: the project as the last up
// applied it (saved by the daemon, so no stack files are needed).
type ProjectInfo struct {
	Project *spec.Project
	// Hashes are the services' config hashes at that up.
	Hashes    map[string]string `json:",omitempty"`
	UpdatedAt time.Time
}

// ProjectRequest is the body of POST /v1/projects/{name}/{action} with
// action start, stop or restart: the daemon walks the saved project's
// dependency graph (start in dependency order, waiting for depends_on
// conditions; stop in reverse), acting on existing containers only.
type ProjectRequest struct {
	// Services limits the action to these services (empty: all).
	Services []string `json:",omitempty"`
	// Timeout for stop and restart; nil: each service's stop_grace_period.
	Timeout *time.Duration `json:",omitempty"`
}

// RunRequest is the body of POST /v1/run: a one-off container of a service.
// Its stdin is /dev/null unless TTY or Interactive (see Attached).
type RunRequest struct {
	Project *spec.Project
	Service string
	// Command replaces the service's command when non-nil;
	// Entrypoint likewise.
	Command    []string `json:",omitempty"`
	Entrypoint []string `json:",omitempty"`
	// Env adds KEY=VALUE entries to the service environment.
	Env     []string `json:",omitempty"`
	User    string   `json:",omitempty"`
	Workdir string   `json:",omitempty"`
	// Name overrides the container name (default PROJECT-SERVICE-run-XXXX).
	Name string `json:",omitempty"`
	// Remove deletes the container once it exited (run --rm).
	Remove bool
	// NoDeps does not start the service's dependencies.
	NoDeps bool
	// Detach returns once the container started (run -d); otherwise its
	// output streams as LogLine messages until it exits.
	Detach bool
	// ServicePorts publishes the service's ports (run --service-ports);
	// by default, as in Compose, a run container publishes none.
	ServicePorts bool
	// TTY gives the container's process a pty (as `run` with a terminal
	// and no -T). The daemon passes the pty master to the client in an
	// Attach message (AttachConsole): the session's bytes never go
	// through the daemon, its output is not logged, and closing the
	// master hangs the session up (the process gets SIGHUP).
	TTY bool `json:",omitempty"`
	// Interactive connects the container's stdin (run -i, the default).
	// Without TTY the daemon passes the client the write end of a pipe
	// that is the container's stdin (Attach message AttachStdin): closing
	// it is end of file. With TTY the pty is the stdin; Interactive then
	// only tells the client to copy its stdin there.
	Interactive bool `json:",omitempty"`
	// ConsoleSize is the pty's size when the process starts (TTY only);
	// the client changes it later on the master it holds.
	ConsoleSize *ConsoleSize `json:",omitempty"`
}

// Attached reports whether the run passes files to the client, which
// needs Client.RunAttached: TTY or Interactive, and not Detach.
func (r *RunRequest) Attached() bool { return !r.Detach && (r.TTY || r.Interactive) }

// ConsoleSize is a terminal's size in characters.
type ConsoleSize struct {
	Rows, Cols uint16
}

// Attach announces a file the daemon passes along with the message (an
// SCM_RIGHTS control message on the unix socket): the receiver owns it.
type Attach struct {
	// Kind is AttachConsole or AttachStdin.
	Kind string
	// Container is the one-off container the file belongs to.
	Container string
}

// Attach kinds.
const (
	// AttachConsole: the pty master of a RunRequest with TTY.
	AttachConsole = "console"
	// AttachStdin: the write end of the container's stdin pipe.
	AttachStdin = "stdin"
)

// Message is one line of an NDJSON stream: exactly one field is set.
type Message struct {
	Event  *Event   `json:",omitempty"`
	Log    *LogLine `json:",omitempty"`
	Result *Result  `json:",omitempty"`
	// Attach comes with a file (run with RunRequest.Attached only).
	Attach *Attach `json:",omitempty"`
}

// ErrorBody is the JSON body of a non-2xx response.
type ErrorBody struct {
	Error string
	// Kind: not_found, conflict, bad_request, internal.
	Kind string
}
