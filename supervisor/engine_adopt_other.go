//go:build !linux

package supervisor

import "errors"

func waitPidfd(pid int, start uint64) error { return errors.New("pidfd needs Linux") }
