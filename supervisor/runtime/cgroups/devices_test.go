package cgroups

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func devRule(allow bool, typ string, maj, min *int64, access string) specs.LinuxDeviceCgroup {
	return specs.LinuxDeviceCgroup{Allow: allow, Type: typ, Major: maj, Minor: min, Access: access}
}

func TestValidateDevices(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	good := []specs.LinuxDeviceCgroup{
		devRule(false, "a", nil, nil, "rwm"),
		devRule(true, "c", n(1), n(3), "rw"),
		devRule(true, "b", n(-1), n(-1), "m"),
	}
	if err := validateDevices(good); err != nil {
		t.Errorf("good rules: %v", err)
	}
	for _, bad := range []specs.LinuxDeviceCgroup{
		devRule(true, "p", nil, nil, "r"),
		devRule(true, "c", nil, nil, "rx"),
		devRule(true, "c", n(-2), nil, "r"),
	} {
		if err := validateDevices([]specs.LinuxDeviceCgroup{bad}); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
