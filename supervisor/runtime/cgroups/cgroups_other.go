//go:build !linux

package cgroups

import "errors"

// ErrNotSupported is returned on systems without cgroups.
var ErrNotSupported = errors.New("cgroups are only supported on Linux")

// Detect reports the host's cgroup layout; cgroups exist only on Linux.
func Detect() (Version, error) { return 0, ErrNotSupported }

// New returns a Manager; cgroups exist only on Linux.
func New(path string) (Manager, error) { return nil, ErrNotSupported }

// Forget does nothing: there is no layout to forget.
func Forget() {}
