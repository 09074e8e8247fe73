package specconv

import (
	"path"
	"strings"

	"github.com/berth-dev/berth/supervisor/runtime"
	"github.com/opencontainers/runtime-spec/specs-go"
)

func devRule(typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
	r := specs.LinuxDeviceCgroup{Allow: true, Type: typ, Access: access}
	if major >= 0 {
		r.Major = i64(major)
	}
	if minor >= 0 {
		r.Minor = i64(minor)
	}
	return r
}

func (c *conv) devices() error {
	res := c.s.Linux.Resources
	if c.svc.Privileged {
		devs, err := hostDevices("/dev")
		if err != nil {
			return c.errf("privileged", "list host devices: %v", err)
		}
		c.s.Linux.Devices = devs
		res.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	} else {
		res.Devices = runtime.DefaultDeviceRules()
	}
	for _, d := range c.svc.Devices {
		perms := d.Permissions
		if perms == "" {
			perms = "rwm"
		}
		if strings.Trim(perms, "rwm") != "" || len(perms) > 3 {
			return c.errf("devices", "%s: invalid permissions %q (want a combination of r, w and m)", d.Source, perms)
		}
		target := d.Target
		if target == "" {
			target = d.Source
		}
		if !path.IsAbs(d.Source) || !path.IsAbs(target) {
			return c.errf("devices", "%s:%s: paths must be absolute", d.Source, target)
		}
		devs, err := deviceNodes(d.Source, target)
		if err != nil {
			return c.errf("devices", "%v", err)
		}
		for _, dev := range devs {
			c.s.Linux.Devices = upsertDevice(c.s.Linux.Devices, dev)
			if !c.svc.Privileged {
				res.Devices = append(res.Devices, devRule(dev.Type, dev.Major, dev.Minor, perms))
			}
		}
	}
	return nil
}

func upsertDevice(list []specs.LinuxDevice, d specs.LinuxDevice) []specs.LinuxDevice {
	for i := range list {
		if list[i].Path == d.Path {
			list[i] = d
			return list
		}
	}
	return append(list, d)
}
