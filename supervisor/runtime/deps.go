// The runtime's call site into the cgroup drivers (seccomp: seccomp_linux.go).

package runtime

import (
	"github.com/berth-dev/berth/supervisor/runtime/cgroups"
)

// newCgroupManager is the one call site into the cgroup drivers.
func newCgroupManager(path string) (cgroups.Manager, error) {
	return cgroups.New(path)
}

// seccompAvailable reports whether the runtime really installs filters.
const seccompAvailable = true
