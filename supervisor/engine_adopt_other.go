//go:build !linux

package supervisor

import "errors"

func waitPidfd(pid int, start uint64) error { return errors.New("pidfd needs Linux") }

func procStartTime(pid int) (uint64, error) { return 0, errors.New("needs Linux") }

func procParent(pid int, start uint64) (int, error) { return 0, errors.New("needs Linux") }
