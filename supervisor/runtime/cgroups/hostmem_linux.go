package cgroups

import (
	"golang.org/x/sys/unix"
)

// capToHostMemory reports an unlimited (or larger than the machine)
// memory limit as the machine's RAM, as `docker stats` does, so that
// callers get a usable denominator.
func capToHostMemory(limit uint64) uint64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return limit
	}
	total := uint64(si.Totalram) * uint64(si.Unit)
	if total > 0 && limit > total {
		return total
	}
	return limit
}
