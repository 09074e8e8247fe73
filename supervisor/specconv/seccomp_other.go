//go:build !linux

package specconv

import (
	"errors"

	"github.com/opencontainers/runtime-spec/specs-go"
)

var errNoSeccomp = errors.New("seccomp is only supported on Linux")

func defaultSeccomp(*specs.Spec) (*specs.LinuxSeccomp, error) { return nil, errNoSeccomp }

func loadSeccomp([]byte, *specs.Spec) (*specs.LinuxSeccomp, error) { return nil, errNoSeccomp }
