package supervisor

import (
	"errors"
	"io"
	"time"
)

// KeeperConfig configures RunKeeper.
type KeeperConfig struct {
	// Root is the berth root: the keeper writes Root/keeper.pid, locks
	// Root/keeper.lock and writes exit records to Root/exits.
	Root string
	// Daemon is the daemon's command line (argv[0] is the executable):
	// normally `berth daemon --root ROOT`.
	Daemon []string
	// Log receives the keeper's own lines (nil: discarded). The daemon
	// inherits the keeper's stdout and stderr.
	Log io.Writer
	// MinBackoff and MaxBackoff bound the delay before the daemon is
	// started again after a crash (default 100 ms doubling to 10 s; the
	// delay resets once the daemon ran for ResetAfter, default 10 s).
	MinBackoff, MaxBackoff, ResetAfter time.Duration
}

// ExitCodeAlreadyRunning is the exit code of a daemon that found another
// daemon holding the root: the keeper then stops instead of retrying.
const ExitCodeAlreadyRunning = 3

// ErrKeeperRunning: another keeper holds the root.
var ErrKeeperRunning = errors.New("a berth keeper already runs for this root")

// ExitRecord is what the keeper writes to Root/exits/PID-STARTTIME.json for
// every process it reaps that is not the daemon: container inits orphaned
// by a daemon that died. STARTTIME is field 22 of /proc/PID/stat.
type ExitRecord struct {
	Code   int    `json:"code"`
	Signal int    `json:"signal"`
	Time   string `json:"time"` // RFC 3339, UTC
}

// errAlreadyLocked reports that another process holds a lock taken by
// lockFile.
var errAlreadyLocked = errors.New("locked by another process")
