//go:build !linux

package seccomp

import (
	"errors"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// ErrUnsupported is returned on systems without seccomp.
var ErrUnsupported = errors.New("seccomp: not supported on this system")

// Filter is a compiled seccomp profile (Linux only).
type Filter struct{}

// Compile is only implemented on Linux.
func Compile(cfg *specs.LinuxSeccomp) (*Filter, error) {
	if cfg == nil {
		return nil, nil
	}
	return nil, ErrUnsupported
}

// Load is only implemented on Linux; a nil cfg is a no-op.
func Load(cfg *specs.LinuxSeccomp) error {
	if cfg == nil {
		return nil
	}
	return ErrUnsupported
}
