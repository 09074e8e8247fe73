package specconv

import (
	"path"
	"strings"

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

// DefaultDeviceRules are the device cgroup rules every unprivileged
// container gets, as Docker and runc together give them: deny everything,
// allow mknod of any node, and allow the standard devices (null, zero,
// full, random, urandom, tty, console, ptmx, /dev/pts/*, /dev/net/tun).
func DefaultDeviceRules() []specs.LinuxDeviceCgroup {
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		devRule("c", -1, -1, "m"),
		devRule("b", -1, -1, "m"),
		devRule("c", 1, 3, "rwm"),    // /dev/null
		devRule("c", 1, 5, "rwm"),    // /dev/zero
		devRule("c", 1, 7, "rwm"),    // /dev/full
		devRule("c", 1, 8, "rwm"),    // /dev/random
		devRule("c", 1, 9, "rwm"),    // /dev/urandom
		devRule("c", 5, 0, "rwm"),    // /dev/tty
		devRule("c", 5, 1, "rwm"),    // /dev/console
		devRule("c", 5, 2, "rwm"),    // /dev/ptmx
		devRule("c", 136, -1, "rwm"), // /dev/pts/*
		devRule("c", 10, 200, "rwm"), // /dev/net/tun
	}
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
		res.Devices = DefaultDeviceRules()
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
