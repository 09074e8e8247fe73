package runtime

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/supervisor/runtime/cgroups"
)

// newCgroupManager is the one call site into the cgroup drivers.
//
// MERGE(cg): once branch cg provides cgroups.New, this becomes
//
//	return cgroups.New(path)
//
// Until then containers run without a cgroup of their own (nil manager).
var newCgroupManager = func(path string) (cgroups.Manager, error) {
	return nil, nil
}

// loadSeccomp installs the process's seccomp filter on the calling
// thread, right before execve.
//
// MERGE(sconv): once branch sconv provides
// github.com/berth-dev/berth/supervisor/runtime/seccomp, this becomes
//
//	if cfg == nil { return nil }
//	return seccomp.Load(cfg)
//
// Until then a spec that asks for seccomp is refused at Create (see
// validateSpec), so no container silently runs without its filter.
var loadSeccomp = func(cfg *specs.LinuxSeccomp) error {
	return nil
}

// seccompAvailable reports whether loadSeccomp really installs filters.
var seccompAvailable = false
