package specconv

import (
	moby "github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// defaultSeccomp is Docker's default profile with its includes/excludes
// resolved for s.Process.Capabilities.Bounding, the host's architecture and
// kernel version.
func defaultSeccomp(s *specs.Spec) (*specs.LinuxSeccomp, error) {
	return moby.GetDefaultProfile(s)
}

// loadSeccomp parses a Docker-format profile file and resolves it like the
// default one.
func loadSeccomp(body []byte, s *specs.Spec) (*specs.LinuxSeccomp, error) {
	return moby.LoadProfile(string(body), s)
}
