//go:build amd64

// The tests use x86_64 syscall numbers for the host's own calls.

package specconv

import (
	"testing"

	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/runtime/seccomp"
)

// TestProfilesCompile checks that every profile ToOCI resolves compiles
// for the runtime's seccomp.Load.
func TestProfilesCompile(t *testing.T) {
	for _, svc := range []spec.Service{
		{},
		{CapAdd: []string{"ALL"}},
		{CapDrop: []string{"ALL"}},
		{CapAdd: []string{"SYS_ADMIN", "SYS_PTRACE", "SYS_TIME", "SYS_MODULE", "DAC_READ_SEARCH", "BPF", "PERFMON"}},
		{SecurityOpt: []string{"no-new-privileges"}},
	} {
		s, _ := convert(t, svc, baseOpts())
		f, err := seccomp.Compile(s.Linux.Seccomp)
		if err != nil {
			t.Fatalf("cap_add %v cap_drop %v: %v", svc.CapAdd, svc.CapDrop, err)
		}
		if f == nil || len(f.Instructions) < 100 {
			t.Errorf("cap_add %v: suspiciously small filter", svc.CapAdd)
		}
	}
}
