// The runtime's two call sites into sibling packages: cgroups and seccomp.

package runtime

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/supervisor/runtime/cgroups"
	"github.com/berth-dev/berth/supervisor/runtime/seccomp"
)

// newCgroupManager is the one call site into the cgroup drivers.
func newCgroupManager(path string) (cgroups.Manager, error) {
	return cgroups.New(path)
}

// loadSeccomp installs the process's seccomp filter (nil: none) on the
// calling process, as late before execve as the privileges allow.
func loadSeccomp(cfg *specs.LinuxSeccomp) error {
	if cfg == nil {
		return nil
	}
	if err := seccomp.Load(cfg); err != nil {
		return fmt.Errorf("seccomp: %w", err)
	}
	return nil
}

// seccompAvailable reports whether loadSeccomp really installs filters.
const seccompAvailable = true
