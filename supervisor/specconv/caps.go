package specconv

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/supervisor/runtime"
)

// allCapabilities lists every capability by number (linux/capability.h).
var allCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// capLastCap returns the highest capability the running kernel knows.
var capLastCap = func() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return len(allCapabilities) - 1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 {
		return len(allCapabilities) - 1
	}
	return n
}

// AllCapabilities returns every capability the kernel and berth both
// know, in numeric order.
func AllCapabilities() []string {
	n := min(capLastCap()+1, len(allCapabilities))
	return slices.Clone(allCapabilities[:n])
}

// normalizeCaps upper-cases, adds the CAP_ prefix and checks each name;
// "ALL" stays "ALL".
func normalizeCaps(in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, c := range in {
		u := strings.ToUpper(strings.TrimSpace(c))
		if u == "ALL" {
			out = append(out, u)
			continue
		}
		if !strings.HasPrefix(u, "CAP_") {
			u = "CAP_" + u
		}
		if !slices.Contains(allCapabilities, u) {
			return nil, fmt.Errorf("unknown capability %q", c)
		}
		out = append(out, u)
	}
	return out, nil
}

// Capabilities computes the capability set like Docker's
// TweakCapabilities: privileged gets everything; cap_add ALL gets
// everything but cap_drop; cap_drop ALL keeps only cap_add; otherwise the
// defaults minus cap_drop plus cap_add. cap_add ALL wins over cap_drop
// ALL, as in Docker.
func Capabilities(add, drop []string, privileged bool) ([]string, error) {
	if privileged {
		return AllCapabilities(), nil
	}
	adds, err := normalizeCaps(add)
	if err != nil {
		return nil, fmt.Errorf("cap_add: %w", err)
	}
	drops, err := normalizeCaps(drop)
	if err != nil {
		return nil, fmt.Errorf("cap_drop: %w", err)
	}
	var caps []string
	switch {
	case slices.Contains(adds, "ALL"):
		for _, c := range AllCapabilities() {
			if !slices.Contains(drops, c) {
				caps = append(caps, c)
			}
		}
	case slices.Contains(drops, "ALL"):
		caps = adds
	default:
		for _, c := range runtime.DefaultCapabilities {
			if !slices.Contains(drops, c) {
				caps = append(caps, c)
			}
		}
		caps = append(caps, adds...)
	}
	// Deduplicate, keeping the first occurrence.
	out := make([]string, 0, len(caps))
	for _, c := range caps {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}
