//go:build berth_initonly

package cgroups

import (
	"errors"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// setDeviceFilter is left out of the container init's build (tag
// berth_initonly, see ../initbin): only the runtime's parent side
// creates cgroups, and leaving out the eBPF loader (cilium/ebpf and the
// 35 packages under it) makes every container start cheaper.
func setDeviceFilter(string, []specs.LinuxDeviceCgroup) error {
	return errors.New("cgroups: the device filter is not part of the container init's build")
}
