package cgroups

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// validateDevices checks the device rules of linux.resources.devices.
func validateDevices(rules []specs.LinuxDeviceCgroup) error {
	for i, r := range rules {
		switch r.Type {
		case "", "a", "b", "c":
		default:
			return fmt.Errorf("cgroup: devices[%d]: type %q is not a, b or c", i, r.Type)
		}
		if strings.Trim(r.Access, "rwm") != "" {
			return fmt.Errorf("cgroup: devices[%d]: access %q is not a combination of r, w, m", i, r.Access)
		}
		if r.Major != nil && *r.Major < -1 || r.Minor != nil && *r.Minor < -1 {
			return fmt.Errorf("cgroup: devices[%d]: negative device number", i)
		}
	}
	return nil
}

// deviceRuleString renders a rule as the v1 devices controller reads it:
// "c 1:3 rwm", with "*" for any number and "a" for every device.
func deviceRuleString(r specs.LinuxDeviceCgroup) string {
	typ := r.Type
	if typ == "" {
		typ = "a"
	}
	access := r.Access
	if access == "" {
		access = "rwm"
	}
	num := func(p *int64) string {
		if p == nil || *p < 0 {
			return "*"
		}
		return strconv.FormatInt(*p, 10)
	}
	return fmt.Sprintf("%s %s:%s %s", typ, num(r.Major), num(r.Minor), access)
}

// sharesToWeight converts v1 cpu.shares (2..262144) to v2 cpu.weight
// (1..10000) with the linear map runc and crun use, so a compose
// cpu_shares gives the same weight under either runtime.
func sharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	if shares < 2 {
		shares = 2
	}
	if shares > 262144 {
		shares = 262144
	}
	return 1 + ((shares-2)*9999)/262142
}
