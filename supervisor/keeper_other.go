//go:build !linux

package supervisor

import (
	"errors"
	"os"
)

// RunKeeper needs Linux (PR_SET_CHILD_SUBREAPER, waitid).
func RunKeeper(cfg KeeperConfig) error { return errors.New("berth keeper needs Linux") }

// StopDaemon needs Linux.
func StopDaemon(root string) (int, error) { return 0, errors.New("berth daemon needs Linux") }

// lockFile needs Linux: the daemon it guards does too.
func lockFile(path string) (*os.File, error) {
	return nil, errors.New("berth daemon needs Linux")
}

// DaemonGone needs Linux.
func DaemonGone(root string) bool { return true }
