//go:build !linux

package supervisor

import "errors"

// RunKeeper needs Linux (PR_SET_CHILD_SUBREAPER, waitid).
func RunKeeper(cfg KeeperConfig) error { return errors.New("berth keeper needs Linux") }

// StopDaemon needs Linux.
func StopDaemon(root string) (int, error) { return 0, errors.New("berth daemon needs Linux") }
