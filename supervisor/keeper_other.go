//go:build !linux

package supervisor

import "errors"

// RunKeeper needs Linux (PR_SET_CHILD_SUBREAPER, waitid).
func RunKeeper(cfg KeeperConfig) error { return errors.New("berth keeper needs Linux") }
