package runtime

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestUserNamespace(t *testing.T) {
	requirePrivileged(t)
	checkNoLeaks(t)
	bundle := makeRootfs(t)
	// t.TempDir makes 0700 directories; the init runs as host uid 100000.
	os.Chmod(bundle, 0o755)
	os.Chmod(filepath.Dir(bundle), 0o755)
	spec := shSpec(`cat /proc/self/uid_map; id -u; hostname; grep CapEff /proc/self/status; echo > /dev/null && echo devnull-ok; ls /sys/fs/cgroup >/dev/null && echo cgroup-ok`)
	spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	out := mustRun(t, spec, bundle)
	wantLines(t, out, "0     100000      65536", "0", "berth", "devnull-ok", "cgroup-ok")
}

func TestExecIntoUserNamespace(t *testing.T) {
	requirePrivileged(t)
	c, _ := startSleeper(t, func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
		s.Root.Path = chmodBundle(t, s.Root.Path)
	})
	out, es := execOut(t, c, c.ExecProcess("/bin/sh", "-c", "id -u; cat /proc/self/uid_map"))
	if es.Code != 0 {
		t.Fatalf("exit %+v: %s", es, out)
	}
	wantLines(t, out, "0", "0     200000      65536")
}

// chmodBundle opens the 0700 test directories above rootfs to a
// container whose root is an unprivileged host uid.
func chmodBundle(t *testing.T, rootfs string) string {
	for d := filepath.Dir(rootfs); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	return rootfs
}
