//go:build !linux

package specconv

import (
	"errors"

	"github.com/opencontainers/runtime-spec/specs-go"
)

var errNoDevices = errors.New("device nodes are only supported on Linux")

func deviceNodes(src, dst string) ([]specs.LinuxDevice, error) { return nil, errNoDevices }

func hostDevices(root string) ([]specs.LinuxDevice, error) { return nil, errNoDevices }
