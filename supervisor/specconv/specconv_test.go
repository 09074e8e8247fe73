package specconv

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/runtime"
	"github.com/berth-dev/berth/volumes"
	"github.com/opencontainers/runtime-spec/specs-go"
)

func baseOpts() Options {
	return Options{
		Image:       ImageConfig{Cmd: []string{"/bin/sh"}},
		Rootfs:      "/var/lib/berth/c/rootfs",
		Hostname:    "0123456789ab",
		CgroupsPath: "/berth/p-web-1",
	}
}

func convert(t *testing.T, svc spec.Service, opts Options) (*specs.Spec, []string) {
	t.Helper()
	if svc.Name == "" {
		svc.Name = "web"
	}
	p := &spec.Project{Name: "p", WorkingDir: t.TempDir()}
	s, warns, err := ToOCI(p, &svc, opts)
	if err != nil {
		t.Fatalf("ToOCI: %v", err)
	}
	return s, warns
}

func convertErr(t *testing.T, svc spec.Service, opts Options) error {
	t.Helper()
	svc.Name = "web"
	p := &spec.Project{Name: "p", WorkingDir: t.TempDir()}
	_, _, err := ToOCI(p, &svc, opts)
	return err
}

func TestDefaults(t *testing.T) {
	s, warns := convert(t, spec.Service{}, baseOpts())
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	if s.Version != specs.Version || s.Root.Path != "/var/lib/berth/c/rootfs" || s.Root.Readonly {
		t.Errorf("root/version: %+v %s", s.Root, s.Version)
	}
	if s.Hostname != "0123456789ab" || s.Linux.CgroupsPath != "/berth/p-web-1" {
		t.Errorf("hostname %q cgroups %q", s.Hostname, s.Linux.CgroupsPath)
	}
	if !reflect.DeepEqual(s.Process.Args, []string{"/bin/sh"}) || s.Process.Cwd != "/" {
		t.Errorf("args %q cwd %q", s.Process.Args, s.Process.Cwd)
	}
	wantEnv := []string{DefaultPath, "HOSTNAME=0123456789ab"}
	if !reflect.DeepEqual(s.Process.Env, wantEnv) {
		t.Errorf("env = %q, want %q", s.Process.Env, wantEnv)
	}
	if s.Process.User.UID != 0 || s.Process.User.GID != 0 || s.Annotations[AnnotationUser] != "" {
		t.Errorf("user = %+v", s.Process.User)
	}
	var nsTypes []string
	for _, n := range s.Linux.Namespaces {
		nsTypes = append(nsTypes, string(n.Type))
		if n.Path != "" {
			t.Errorf("namespace %s joins %s", n.Type, n.Path)
		}
	}
	if want := []string{"mount", "network", "uts", "pid", "ipc", "cgroup"}; !reflect.DeepEqual(nsTypes, want) {
		t.Errorf("namespaces = %v, want %v", nsTypes, want)
	}
	var dests []string
	for _, m := range s.Mounts {
		dests = append(dests, m.Destination+" "+m.Type)
	}
	wantMounts := []string{"/proc proc", "/dev tmpfs", "/dev/pts devpts", "/sys sysfs", "/sys/fs/cgroup cgroup", "/dev/mqueue mqueue", "/dev/shm tmpfs"}
	if !reflect.DeepEqual(dests, wantMounts) {
		t.Errorf("mounts = %v, want %v", dests, wantMounts)
	}
	if shm := s.Mounts[6]; !slices.Contains(shm.Options, "size=67108864") {
		t.Errorf("/dev/shm options %v, want size=67108864", shm.Options)
	}
	if sys := s.Mounts[3]; !slices.Contains(sys.Options, "ro") {
		t.Errorf("/sys options %v, want ro", sys.Options)
	}
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/sys/firmware", "/proc/timer_list", "/proc/interrupts"} {
		if !slices.Contains(s.Linux.MaskedPaths, p) {
			t.Errorf("%s not masked", p)
		}
	}
	if !reflect.DeepEqual(s.Linux.ReadonlyPaths, runtime.DefaultReadonlyPaths) {
		t.Errorf("readonly paths %v", s.Linux.ReadonlyPaths)
	}
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno {
		t.Fatalf("seccomp = %+v, want Docker's default profile", s.Linux.Seccomp)
	}
	if s.Process.NoNewPrivileges {
		t.Error("no_new_privs set by default (Docker leaves it off)")
	}
	if s.Process.OOMScoreAdj == nil || *s.Process.OOMScoreAdj != 0 {
		t.Errorf("oomScoreAdj = %v", s.Process.OOMScoreAdj)
	}
	if s.Annotations[AnnotationStopSignal] != "SIGTERM" || s.Annotations[runtime.AnnotationInit] != "" {
		t.Errorf("annotations = %v", s.Annotations)
	}
	if !reflect.DeepEqual(s.Linux.Resources.Devices, runtime.DefaultDeviceRules()) {
		t.Errorf("device rules = %+v", s.Linux.Resources.Devices)
	}
	if d := s.Linux.Resources.Devices[0]; d.Allow || d.Access != "rwm" || d.Type != "" {
		t.Errorf("first device rule %+v, want deny all", d)
	}
	if got := s.Linux.Sysctl; got["net.ipv4.ip_unprivileged_port_start"] != "0" || got["net.ipv4.ping_group_range"] != "0 2147483647" {
		t.Errorf("sysctls = %v", got)
	}
	if r := s.Linux.Resources; r.CPU != nil || r.Memory != nil || r.Pids != nil {
		t.Errorf("resources set without limits: %+v", r)
	}
}

func TestDockerDefaultCapabilities(t *testing.T) {
	s, _ := convert(t, spec.Service{}, baseOpts())
	want := []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
		"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
		"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
	}
	c := s.Process.Capabilities
	for name, got := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted} {
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if len(c.Inheritable) != 0 || len(c.Ambient) != 0 {
		t.Errorf("inheritable %v ambient %v, want empty", c.Inheritable, c.Ambient)
	}
}

func TestCapabilities(t *testing.T) {
	all := AllCapabilities()
	without := func(list []string, drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(list), func(c string) bool { return slices.Contains(drop, c) })
	}
	cases := []struct {
		name       string
		add, drop  []string
		privileged bool
		want       []string
	}{
		{"add one", []string{"CAP_NET_ADMIN"}, nil, false, append(slices.Clone(runtime.DefaultCapabilities), "CAP_NET_ADMIN")},
		{"add lower case, no prefix", []string{"sys_ptrace"}, nil, false, append(slices.Clone(runtime.DefaultCapabilities), "CAP_SYS_PTRACE")},
		{"add a default again", []string{"CAP_CHOWN"}, nil, false, runtime.DefaultCapabilities},
		{"drop two", nil, []string{"CAP_NET_RAW", "MKNOD"}, false, without(runtime.DefaultCapabilities, "CAP_NET_RAW", "CAP_MKNOD")},
		{"drop ALL", nil, []string{"ALL"}, false, []string{}},
		{"drop ALL add one", []string{"CAP_NET_BIND_SERVICE"}, []string{"ALL"}, false, []string{"CAP_NET_BIND_SERVICE"}},
		{"add ALL", []string{"ALL"}, nil, false, all},
		{"add ALL drop one", []string{"ALL"}, []string{"CAP_SYS_ADMIN"}, false, without(all, "CAP_SYS_ADMIN")},
		{"add ALL drop ALL: add wins", []string{"ALL"}, []string{"ALL"}, false, all},
		{"drop and add the same: add wins", []string{"CAP_KILL"}, []string{"CAP_KILL"}, false, append(without(runtime.DefaultCapabilities, "CAP_KILL"), "CAP_KILL")},
		{"privileged", nil, []string{"ALL"}, true, all},
	}
	for _, c := range cases {
		s, _ := convert(t, spec.Service{CapAdd: c.add, CapDrop: c.drop, Privileged: c.privileged}, baseOpts())
		if got := s.Process.Capabilities.Bounding; !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: bounding = %v, want %v", c.name, got, c.want)
		}
	}
	if len(all) < 38 || all[0] != "CAP_CHOWN" || all[21] != "CAP_SYS_ADMIN" {
		t.Errorf("AllCapabilities = %v", all)
	}
}

func TestCommandPrecedence(t *testing.T) {
	img := ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"img-cmd"}}
	cases := []struct {
		name       string
		entry, cmd []string
		img        ImageConfig
		want       []string
	}{
		{"image only", nil, nil, img, []string{"/entry", "img-cmd"}},
		{"command replaces image cmd", nil, []string{"svc"}, img, []string{"/entry", "svc"}},
		{"entrypoint resets image cmd", []string{"/svc-entry"}, nil, img, []string{"/svc-entry"}},
		{"entrypoint and command", []string{"/svc-entry"}, []string{"a", "b"}, img, []string{"/svc-entry", "a", "b"}},
		{"empty entrypoint keeps command", []string{}, []string{"/bin/true"}, img, []string{"/bin/true"}},
		{"empty command keeps image entrypoint", nil, []string{}, img, []string{"/entry"}},
		{"image cmd only", nil, nil, ImageConfig{Cmd: []string{"/bin/sh", "-c", "x"}}, []string{"/bin/sh", "-c", "x"}},
	}
	for _, c := range cases {
		o := baseOpts()
		o.Image = c.img
		s, _ := convert(t, spec.Service{Entrypoint: c.entry, Command: c.cmd}, o)
		if !reflect.DeepEqual(s.Process.Args, c.want) {
			t.Errorf("%s: args = %q, want %q", c.name, s.Process.Args, c.want)
		}
	}
	o := baseOpts()
	o.Image = ImageConfig{Entrypoint: []string{"/entry"}}
	err := convertErr(t, spec.Service{Entrypoint: []string{}}, o)
	wantErr(t, err, `service "web": command: no command`)
}

func TestEnvironment(t *testing.T) {
	o := baseOpts()
	o.Image.Env = []string{"PATH=/opt/bin", "A=img", "B=img"}
	s, _ := convert(t, spec.Service{Environment: []string{"B=svc", "C=svc", "EMPTY="}, Hostname: "h1", Tty: true}, o)
	want := []string{"PATH=/opt/bin", "HOSTNAME=h1", "TERM=xterm", "A=img", "B=svc", "C=svc", "EMPTY="}
	if !reflect.DeepEqual(s.Process.Env, want) {
		t.Errorf("env = %q, want %q", s.Process.Env, want)
	}
	if !s.Process.Terminal {
		t.Error("tty not set")
	}
	wantErr(t, convertErr(t, spec.Service{Environment: []string{"NOVALUE"}}, baseOpts()), `service "web": environment: invalid variable "NOVALUE"`)
}

func TestWorkingDirUserHostname(t *testing.T) {
	o := baseOpts()
	o.Image.WorkingDir = "/img"
	o.Image.User = "nobody"
	s, _ := convert(t, spec.Service{}, o)
	if s.Process.Cwd != "/img" || s.Annotations[AnnotationUser] != "nobody" {
		t.Errorf("image defaults: cwd %q user annotation %q", s.Process.Cwd, s.Annotations[AnnotationUser])
	}
	cases := []struct {
		user     string
		uid, gid uint32
		annot    string
	}{
		{"1000:1001", 1000, 1001, ""},
		{"1000", 1000, 0, "1000"},
		{"www-data", 0, 0, "www-data"},
		{"www-data:adm", 0, 0, "www-data:adm"},
		{"0:adm", 0, 0, "0:adm"},
	}
	for _, c := range cases {
		s, _ := convert(t, spec.Service{User: c.user, WorkingDir: "/srv/app/"}, o)
		if s.Process.User.UID != c.uid || s.Process.User.GID != c.gid || s.Annotations[AnnotationUser] != c.annot || s.Process.User.Username != c.annot {
			t.Errorf("user %q: got %+v annotation %q", c.user, s.Process.User, s.Annotations[AnnotationUser])
		}
		if s.Process.Cwd != "/srv/app" {
			t.Errorf("cwd = %q", s.Process.Cwd)
		}
	}
	s, _ = convert(t, spec.Service{GroupAdd: []string{"20", "audio"}}, baseOpts())
	if !reflect.DeepEqual(s.Process.User.AdditionalGids, []uint32{20}) || s.Annotations[AnnotationGroupAdd] != "audio" {
		t.Errorf("group_add: gids %v annotation %q", s.Process.User.AdditionalGids, s.Annotations[AnnotationGroupAdd])
	}
	s, _ = convert(t, spec.Service{Hostname: "db", Domainname: "example.internal"}, baseOpts())
	if s.Hostname != "db" || s.Domainname != "example.internal" {
		t.Errorf("hostname %q domainname %q", s.Hostname, s.Domainname)
	}

	wantErr(t, convertErr(t, spec.Service{WorkingDir: "app"}, baseOpts()), `service "web": working_dir: "app" is not an absolute path`)
	wantErr(t, convertErr(t, spec.Service{User: "99999999999"}, baseOpts()), `service "web": user: "99999999999": invalid id`)
	wantErr(t, convertErr(t, spec.Service{User: ":1"}, baseOpts()), `service "web": user: ":1": empty user or group`)
	wantErr(t, convertErr(t, spec.Service{Hostname: "bad host"}, baseOpts()), `service "web": hostname: "bad host": invalid character`)
}

func TestPrivileged(t *testing.T) {
	s, _ := convert(t, spec.Service{Privileged: true, SecurityOpt: []string{"seccomp=unconfined"}}, baseOpts())
	if s.Linux.Seccomp != nil {
		t.Error("privileged has a seccomp profile")
	}
	if len(s.Linux.MaskedPaths) != 0 || len(s.Linux.ReadonlyPaths) != 0 {
		t.Errorf("privileged masks %v / %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	if !reflect.DeepEqual(s.Linux.Resources.Devices, []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}) {
		t.Errorf("device rules %+v, want allow all", s.Linux.Resources.Devices)
	}
	found := false
	for _, d := range s.Linux.Devices {
		if d.Path == "/dev/null" && d.Type == "c" && d.Major == 1 && d.Minor == 3 {
			found = true
		}
	}
	if !found {
		t.Errorf("host /dev/null not among privileged devices (%d devices)", len(s.Linux.Devices))
	}
	for _, m := range s.Mounts {
		if (m.Destination == "/sys" || m.Destination == "/sys/fs/cgroup") && slices.Contains(m.Options, "ro") {
			t.Errorf("%s is read-only in a privileged container", m.Destination)
		}
	}
	if !reflect.DeepEqual(s.Process.Capabilities.Bounding, AllCapabilities()) {
		t.Errorf("caps %v", s.Process.Capabilities.Bounding)
	}
}

func TestReadOnlyAndSecurityOpt(t *testing.T) {
	s, warns := convert(t, spec.Service{ReadOnly: true, SecurityOpt: []string{"no-new-privileges:true", "apparmor=unconfined", "label=disable", "systempaths=unconfined"}}, baseOpts())
	if !s.Root.Readonly || !s.Process.NoNewPrivileges {
		t.Errorf("readonly %v nnp %v", s.Root.Readonly, s.Process.NoNewPrivileges)
	}
	if len(s.Linux.MaskedPaths) != 0 || len(s.Linux.ReadonlyPaths) != 0 {
		t.Error("systempaths=unconfined left masked paths")
	}
	if s.Linux.Seccomp == nil {
		t.Error("systempaths=unconfined dropped seccomp")
	}
	if len(warns) != 2 || !strings.Contains(warns[0], `service "web": security_opt "apparmor=unconfined"`) || !strings.Contains(warns[1], "label=disable") {
		t.Errorf("warnings = %q", warns)
	}
	for opt, nnp := range map[string]bool{"no-new-privileges": true, "no-new-privileges=false": false, "no-new-privileges=true": true} {
		s, _ := convert(t, spec.Service{SecurityOpt: []string{opt}}, baseOpts())
		if s.Process.NoNewPrivileges != nnp {
			t.Errorf("%s: nnp = %v", opt, s.Process.NoNewPrivileges)
		}
	}
	s, _ = convert(t, spec.Service{SecurityOpt: []string{"seccomp=unconfined"}}, baseOpts())
	if s.Linux.Seccomp != nil {
		t.Error("seccomp=unconfined still has a profile")
	}
	s, _ = convert(t, spec.Service{SecurityOpt: []string{"writable-cgroups=true"}}, baseOpts())
	if slices.Contains(s.Mounts[4].Options, "ro") {
		t.Errorf("writable-cgroups: %+v", s.Mounts[4])
	}
	wantErr(t, convertErr(t, spec.Service{SecurityOpt: []string{"no-new-privileges=maybe"}}, baseOpts()), `service "web": security_opt: "no-new-privileges=maybe"`)
	wantErr(t, convertErr(t, spec.Service{SecurityOpt: []string{"systempaths=confined"}}, baseOpts()), `systempaths=unconfined`)
	wantErr(t, convertErr(t, spec.Service{SecurityOpt: []string{"seccomp"}}, baseOpts()), `want seccomp=unconfined or seccomp=PROFILE.json`)
	wantErr(t, convertErr(t, spec.Service{SecurityOpt: []string{"turbo=on"}}, baseOpts()), `service "web": security_opt: unknown option "turbo=on"`)
}

func TestSeccompProfiles(t *testing.T) {
	has := func(p *specs.LinuxSeccomp, name string) bool {
		for _, sc := range p.Syscalls {
			if slices.Contains(sc.Names, name) && sc.Action == specs.ActAllow && len(sc.Args) == 0 {
				return true
			}
		}
		return false
	}
	s, _ := convert(t, spec.Service{}, baseOpts())
	if has(s.Linux.Seccomp, "unshare") || has(s.Linux.Seccomp, "mount") {
		t.Error("default profile allows unshare/mount without CAP_SYS_ADMIN")
	}
	s, _ = convert(t, spec.Service{CapAdd: []string{"SYS_ADMIN"}}, baseOpts())
	if !has(s.Linux.Seccomp, "unshare") || !has(s.Linux.Seccomp, "mount") {
		t.Error("profile for CAP_SYS_ADMIN does not allow unshare/mount")
	}
	s, _ = convert(t, spec.Service{CapAdd: []string{"SYS_TIME"}}, baseOpts())
	if !has(s.Linux.Seccomp, "settimeofday") {
		t.Error("profile for CAP_SYS_TIME does not allow settimeofday")
	}

	// A custom profile, relative to the project directory.
	dir := t.TempDir()
	prof := `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":30},
	  {"names":["chroot"],"action":"SCMP_ACT_ERRNO","excludes":{"caps":["CAP_SYS_CHROOT"]}}]}`
	if err := os.WriteFile(filepath.Join(dir, "profile.json"), []byte(prof), 0o644); err != nil {
		t.Fatal(err)
	}
	svc := spec.Service{Name: "web", SecurityOpt: []string{"seccomp=profile.json"}}
	sp, _, err := ToOCI(&spec.Project{WorkingDir: dir}, &svc, baseOpts())
	if err != nil {
		t.Fatal(err)
	}
	got := sp.Linux.Seccomp
	if got.DefaultAction != specs.ActAllow || len(got.Syscalls) != 1 || got.Syscalls[0].Names[0] != "mkdir" || *got.Syscalls[0].ErrnoRet != 30 {
		t.Errorf("custom profile = %+v", got)
	}
	svc.SecurityOpt = []string{"seccomp=missing.json"}
	_, _, err = ToOCI(&spec.Project{WorkingDir: dir}, &svc, baseOpts())
	wantErr(t, err, `service "web": security_opt: seccomp profile: open `+filepath.Join(dir, "missing.json"))
	if err := os.WriteFile(filepath.Join(dir, "bad.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	svc.SecurityOpt = []string{"seccomp=" + filepath.Join(dir, "bad.json")}
	_, _, err = ToOCI(&spec.Project{WorkingDir: dir}, &svc, baseOpts())
	wantErr(t, err, `service "web": security_opt: seccomp profile `+filepath.Join(dir, "bad.json"))
}

func TestUlimits(t *testing.T) {
	s, _ := convert(t, spec.Service{Ulimits: []spec.Ulimit{{Name: "nofile", Soft: 1024, Hard: 4096}, {Name: "core", Soft: -1, Hard: -1}}}, baseOpts())
	want := []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 4096}, {Type: "RLIMIT_CORE", Soft: ^uint64(0), Hard: ^uint64(0)}}
	if !reflect.DeepEqual(s.Process.Rlimits, want) {
		t.Errorf("rlimits = %+v", s.Process.Rlimits)
	}
	wantErr(t, convertErr(t, spec.Service{Ulimits: []spec.Ulimit{{Name: "nofile", Soft: 10, Hard: 5}}}, baseOpts()), `service "web": ulimits: nofile: soft limit 10 is above hard limit 5`)
	wantErr(t, convertErr(t, spec.Service{Ulimits: []spec.Ulimit{{Name: "files", Soft: 1, Hard: 1}}}, baseOpts()), `service "web": ulimits: unknown limit "files"`)
}

func TestSysctls(t *testing.T) {
	s, _ := convert(t, spec.Service{Sysctls: map[string]string{"net.core.somaxconn": "1024", "kernel.shmmax": "1", "fs.mqueue.msg_max": "20", "net.ipv4.ip_unprivileged_port_start": "1024"}}, baseOpts())
	want := map[string]string{"net.core.somaxconn": "1024", "kernel.shmmax": "1", "fs.mqueue.msg_max": "20",
		"net.ipv4.ip_unprivileged_port_start": "1024", "net.ipv4.ping_group_range": "0 2147483647"}
	if !reflect.DeepEqual(s.Linux.Sysctl, want) {
		t.Errorf("sysctls = %v", s.Linux.Sysctl)
	}
	s, _ = convert(t, spec.Service{NetworkMode: "host"}, baseOpts())
	if len(s.Linux.Sysctl) != 0 {
		t.Errorf("host network got sysctls %v", s.Linux.Sysctl)
	}
	wantErr(t, convertErr(t, spec.Service{Sysctls: map[string]string{"vm.swappiness": "1"}}, baseOpts()), `service "web": sysctls: vm.swappiness is not namespaced`)
	wantErr(t, convertErr(t, spec.Service{NetworkMode: "host", Sysctls: map[string]string{"net.core.somaxconn": "1"}}, baseOpts()), `service "web": sysctls: net.core.somaxconn is not allowed with the host network`)
	wantErr(t, convertErr(t, spec.Service{IpcMode: "host", Sysctls: map[string]string{"kernel.sem": "1"}}, baseOpts()), `service "web": sysctls: kernel.sem is not allowed with ipc: host`)
	o := baseOpts()
	o.NetNSPath = "/proc/77/ns/net"
	wantErr(t, convertErr(t, spec.Service{NetworkMode: "service:db", Sysctls: map[string]string{"net.core.somaxconn": "1"}}, o), `service "web": sysctls: net.core.somaxconn is not allowed with network_mode service:db`)
	s, _ = convert(t, spec.Service{NetworkMode: "service:db"}, o)
	if len(s.Linux.Sysctl) != 0 {
		t.Errorf("shared network namespace got sysctls %v", s.Linux.Sysctl)
	}
}

func countMounts(s *specs.Spec, dest string) int {
	n := 0
	for _, m := range s.Mounts {
		if m.Destination == dest {
			n++
		}
	}
	return n
}

func TestShmTmpfsMounts(t *testing.T) {
	o := baseOpts()
	o.Mounts = []specs.Mount{
		{Destination: "/data/sub", Type: "bind", Source: "/srv/sub", Options: []string{"rbind"}},
		{Destination: "/etc/resolv.conf", Type: "bind", Source: "/run/berth/resolv.conf", Options: []string{"rbind", "ro"}},
		{Destination: "/data", Type: "bind", Source: "/srv/data", Options: []string{"rbind"}},
	}
	// The service's tmpfs: entries reach ToOCI once, as the mounts
	// volumes.Prepare made of them; ToOCI must not add them a second time
	// (it used to, and every service with tmpfs: failed with "two mounts").
	tmpfs := []string{"/run", "/cache:size=10m,mode=0700,exec,uid=1000"}
	for _, e := range tmpfs {
		m, err := volumes.ParseTmpfs(e)
		if err != nil {
			t.Fatal(err)
		}
		o.Mounts = append(o.Mounts, m)
	}
	s, _ := convert(t, spec.Service{ShmSize: 1 << 30, Tmpfs: tmpfs}, o)
	for _, d := range []string{"/run", "/cache"} {
		if n := countMounts(s, d); n != 1 {
			t.Errorf("%d mounts at %s, want 1", n, d)
		}
	}
	byDest := map[string]specs.Mount{}
	var order []string
	for _, m := range s.Mounts {
		byDest[m.Destination] = m
		order = append(order, m.Destination)
	}
	if shm := byDest["/dev/shm"]; !slices.Contains(shm.Options, "size=1073741824") {
		t.Errorf("/dev/shm = %+v", shm)
	}
	if run := byDest["/run"]; run.Type != "tmpfs" || !reflect.DeepEqual(run.Options, []string{"noexec", "nosuid", "nodev"}) {
		t.Errorf("/run = %+v", run)
	}
	if c := byDest["/cache"]; !reflect.DeepEqual(c.Options, []string{"nosuid", "nodev", "size=10m", "mode=0700", "exec", "uid=1000"}) {
		t.Errorf("/cache = %+v", c)
	}
	// A tmpfs: entry alone, without its mount in Options.Mounts, adds nothing.
	if s, _ := convert(t, spec.Service{Tmpfs: []string{"/run"}}, baseOpts()); countMounts(s, "/run") != 0 {
		t.Errorf("ToOCI converted tmpfs: itself: %+v", s.Mounts)
	}
	if slices.Index(order, "/data") > slices.Index(order, "/data/sub") {
		t.Errorf("mount order %v: /data must come before /data/sub", order)
	}
	if _, ok := byDest["/etc/resolv.conf"]; !ok {
		t.Error("caller's mount missing")
	}

	// A user /dev/shm replaces the default one.
	o.Mounts = []specs.Mount{{Destination: "/dev/shm", Type: "bind", Source: "/run/other/shm", Options: []string{"rbind"}}}
	s, _ = convert(t, spec.Service{}, o)
	for _, m := range s.Mounts {
		if m.Destination == "/dev/shm" && m.Source != "/run/other/shm" {
			t.Errorf("/dev/shm = %+v", m)
		}
	}
	if n := countMounts(s, "/dev/shm"); n != 1 {
		t.Errorf("%d mounts at /dev/shm", n)
	}
	// ipc: host shares the host's /dev/shm.
	s, _ = convert(t, spec.Service{IpcMode: "host"}, baseOpts())
	for _, m := range s.Mounts {
		if m.Destination == "/dev/shm" && (m.Type != "bind" || m.Source != "/dev/shm") {
			t.Errorf("ipc host /dev/shm = %+v", m)
		}
	}

	o = baseOpts()
	o.Mounts = []specs.Mount{{Destination: "/run", Type: "bind", Source: "/x"}, {Destination: "/run/", Type: "tmpfs", Source: "tmpfs"}}
	wantErr(t, convertErr(t, spec.Service{}, o), `service "web": volumes: two mounts at /run`)
	o.Mounts = []specs.Mount{{Destination: "data", Type: "bind", Source: "/x"}}
	wantErr(t, convertErr(t, spec.Service{}, o), `service "web": volumes: mount target "data" is not an absolute path`)
}

func TestInitStopSignal(t *testing.T) {
	s, _ := convert(t, spec.Service{Init: true, StopSignal: "SIGQUIT"}, baseOpts())
	if s.Annotations[runtime.AnnotationInit] != "true" || s.Annotations[AnnotationStopSignal] != "SIGQUIT" {
		t.Errorf("annotations %v", s.Annotations)
	}
	o := baseOpts()
	o.Image.StopSignal = "SIGWINCH"
	s, _ = convert(t, spec.Service{}, o)
	if s.Annotations[AnnotationStopSignal] != "SIGWINCH" {
		t.Errorf("image stop signal: %v", s.Annotations)
	}
	for in, want := range map[string]string{"TERM": "SIGTERM", "9": "SIGKILL", "sigusr1": "SIGUSR1", "SIGRTMIN+3": "SIGRTMIN+3", "37": "SIGRTMIN+3", "RTMAX-1": "SIGRTMIN+29", "SIGIOT": "SIGABRT"} {
		if got, err := ParseSignal(in); err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	wantErr(t, convertErr(t, spec.Service{StopSignal: "SIGNOPE"}, baseOpts()), `service "web": stop_signal: invalid signal "SIGNOPE"`)
	wantErr(t, convertErr(t, spec.Service{StopSignal: "65"}, baseOpts()), `invalid signal "65"`)
}

func TestResources(t *testing.T) {
	swap := int64(10)
	cases := []struct {
		name string
		r    spec.Resources
		want specs.LinuxResources
	}{
		{"cpus", spec.Resources{NanoCPUs: 1_500_000_000}, specs.LinuxResources{CPU: &specs.LinuxCPU{Period: u64(100000), Quota: i64(150000)}}},
		{"cpu_shares and cpuset", spec.Resources{CPUShares: 512, CpusetCPUs: "0-1,3"}, specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(512), Cpus: "0-1,3"}}},
		{"quota and period", spec.Resources{CPUQuota: 50000, CPUPeriod: 200000}, specs.LinuxResources{CPU: &specs.LinuxCPU{Period: u64(200000), Quota: i64(50000)}}},
		{"mem_limit: swap doubles", spec.Resources{MemoryLimit: 64 << 20}, specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(128 << 20)}}},
		{"memswap -1", spec.Resources{MemoryLimit: 64 << 20, MemorySwap: -1}, specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(-1)}}},
		{"memswap = mem: no swap", spec.Resources{MemoryLimit: 64 << 20, MemorySwap: 64 << 20}, specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(64 << 20)}}},
		{"reservation", spec.Resources{MemoryReservation: 32 << 20}, specs.LinuxResources{Memory: &specs.LinuxMemory{Reservation: i64(32 << 20)}}},
		{"swappiness", spec.Resources{MemSwappiness: &swap}, specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: u64(10)}}},
		{"pids", spec.Resources{PidsLimit: 100}, specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(100)}}},
		{"pids unlimited", spec.Resources{PidsLimit: -1}, specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(-1)}}},
	}
	for _, c := range cases {
		s, _ := convert(t, spec.Service{Resources: c.r}, baseOpts())
		got := *s.Linux.Resources
		got.Devices = nil
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: resources = %s, want %s", c.name, dump(got), dump(c.want))
		}
	}

	s, warns := convert(t, spec.Service{Resources: spec.Resources{OomKillDisable: true, OomScoreAdj: 500}}, baseOpts())
	if m := s.Linux.Resources.Memory; m == nil || m.DisableOOMKiller == nil || !*m.DisableOOMKiller {
		t.Errorf("oom_kill_disable: %+v", s.Linux.Resources.Memory)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "oom_kill_disable without mem_limit") {
		t.Errorf("warnings %q", warns)
	}
	if *s.Process.OOMScoreAdj != 500 {
		t.Errorf("oom_score_adj = %d", *s.Process.OOMScoreAdj)
	}

	errCases := []struct {
		r    spec.Resources
		want string
	}{
		{spec.Resources{NanoCPUs: 1e9, CPUQuota: 1000}, `service "web": cpus: cannot be combined with cpu_quota/cpu_period`},
		{spec.Resources{NanoCPUs: 1e6}, `service "web": cpus: 0.001 is below the minimum of 0.01`},
		{spec.Resources{NanoCPUs: 100000e9}, `service "web": cpus: 100000.00 is more than the`},
		{spec.Resources{CPUPeriod: 10}, `service "web": cpu_period: 10 µs is outside 1000-1000000`},
		{spec.Resources{CpusetCPUs: "0-"}, `service "web": cpuset: invalid CPU list "0-"`},
		{spec.Resources{CpusetCPUs: "3-1"}, `invalid CPU list "3-1"`},
		{spec.Resources{MemoryLimit: 1024}, `service "web": mem_limit: 1024 bytes is below the minimum of 6MB`},
		{spec.Resources{MemorySwap: 1 << 30}, `service "web": memswap_limit: needs mem_limit too`},
		{spec.Resources{MemoryLimit: 64 << 20, MemorySwap: 32 << 20}, `service "web": memswap_limit: 33554432 is below mem_limit 67108864`},
		{spec.Resources{MemoryLimit: 64 << 20, MemoryReservation: 128 << 20}, `service "web": mem_reservation: 134217728 is above mem_limit 67108864`},
		{spec.Resources{PidsLimit: -5}, `service "web": pids_limit: -5 is invalid`},
		{spec.Resources{OomScoreAdj: 1001}, `service "web": oom_score_adj: 1001 is outside -1000..1000`},
		{spec.Resources{CPUShares: -1}, `service "web": cpu_shares: -1 is negative`},
	}
	for _, c := range errCases {
		wantErr(t, convertErr(t, spec.Service{Resources: c.r}, baseOpts()), c.want)
	}
}

func TestDevices(t *testing.T) {
	s, _ := convert(t, spec.Service{Devices: []spec.Device{{Source: "/dev/null", Target: "/dev/mynull", Permissions: "rw"}}}, baseOpts())
	if len(s.Linux.Devices) != 1 {
		t.Fatalf("devices = %+v", s.Linux.Devices)
	}
	d := s.Linux.Devices[0]
	if d.Path != "/dev/mynull" || d.Type != "c" || d.Major != 1 || d.Minor != 3 {
		t.Errorf("device = %+v", d)
	}
	rules := s.Linux.Resources.Devices
	last := rules[len(rules)-1]
	if !last.Allow || last.Type != "c" || *last.Major != 1 || *last.Minor != 3 || last.Access != "rw" {
		t.Errorf("last rule = %+v", last)
	}
	wantErr(t, convertErr(t, spec.Service{Devices: []spec.Device{{Source: "/dev/null", Target: "/dev/x", Permissions: "rwx"}}}, baseOpts()), `service "web": devices: /dev/null: invalid permissions "rwx"`)
	wantErr(t, convertErr(t, spec.Service{Devices: []spec.Device{{Source: "/dev/does-not-exist-berth", Target: "/dev/x"}}}, baseOpts()), `service "web": devices: stat /dev/does-not-exist-berth`)
	wantErr(t, convertErr(t, spec.Service{Devices: []spec.Device{{Source: "/etc/hostname", Target: "/dev/x"}}}, baseOpts()), `service "web": devices: /etc/hostname is not a device node`)
}

func TestNamespaces(t *testing.T) {
	find := func(s *specs.Spec, typ specs.LinuxNamespaceType) (specs.LinuxNamespace, bool) {
		for _, n := range s.Linux.Namespaces {
			if n.Type == typ {
				return n, true
			}
		}
		return specs.LinuxNamespace{}, false
	}
	o := baseOpts()
	o.NetNSPath = "/run/berth/netns/p-web-1"
	s, _ := convert(t, spec.Service{}, o)
	if n, _ := find(s, specs.NetworkNamespace); n.Path != "/run/berth/netns/p-web-1" {
		t.Errorf("net ns = %+v", n)
	}
	s, _ = convert(t, spec.Service{NetworkMode: "host", PidMode: "host", IpcMode: "host"}, baseOpts())
	for _, typ := range []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.PIDNamespace, specs.IPCNamespace} {
		if _, ok := find(s, typ); ok {
			t.Errorf("host mode still makes a %s namespace", typ)
		}
	}
	o = baseOpts()
	o.NetNSPath = NetHost
	s, _ = convert(t, spec.Service{}, o)
	if _, ok := find(s, specs.NetworkNamespace); ok {
		t.Error("NetHost still makes a network namespace")
	}
	o = baseOpts()
	o.PIDNSPath = "/proc/42/ns/pid"
	s, _ = convert(t, spec.Service{PidMode: "service:db"}, o)
	if n, _ := find(s, specs.PIDNamespace); n.Path != "/proc/42/ns/pid" {
		t.Errorf("pid ns = %+v", n)
	}
	wantErr(t, convertErr(t, spec.Service{NetworkMode: "service:db"}, baseOpts()), `service "web": network_mode: "service:db" needs the namespace path`)
	wantErr(t, convertErr(t, spec.Service{PidMode: "weird"}, baseOpts()), `service "web": pid: invalid mode "weird"`)
	wantErr(t, convertErr(t, spec.Service{UsernsMode: "auto"}, baseOpts()), `service "web": userns_mode: "auto" is not supported`)
	o = baseOpts()
	o.NetNSPath = "/run/x"
	wantErr(t, convertErr(t, spec.Service{NetworkMode: "host"}, o), `service "web": network_mode: host network mode but a network namespace path "/run/x" was given`)
}

func TestInvalidCapabilities(t *testing.T) {
	err := convertErr(t, spec.Service{CapAdd: []string{"CAP_FLY"}}, baseOpts())
	wantErr(t, err, `service "web": cap_add: unknown capability "CAP_FLY"`)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Service != "web" || fe.Field != "cap_add" {
		t.Errorf("error %v is not a FieldError for web/cap_add", err)
	}
	wantErr(t, convertErr(t, spec.Service{CapDrop: []string{"NOPE"}}, baseOpts()), `service "web": cap_drop: unknown capability "NOPE"`)
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v, want it to contain %q", err, want)
	}
}

func dump(r specs.LinuxResources) string {
	var b strings.Builder
	if r.CPU != nil {
		c := r.CPU
		b.WriteString("cpu{")
		if c.Period != nil {
			b.WriteString(" period=" + itoa(int64(*c.Period)))
		}
		if c.Quota != nil {
			b.WriteString(" quota=" + itoa(*c.Quota))
		}
		if c.Shares != nil {
			b.WriteString(" shares=" + itoa(int64(*c.Shares)))
		}
		b.WriteString(" cpus=" + c.Cpus + "}")
	}
	if m := r.Memory; m != nil {
		b.WriteString("mem{")
		for n, p := range map[string]*int64{"limit": m.Limit, "swap": m.Swap, "reservation": m.Reservation} {
			if p != nil {
				b.WriteString(" " + n + "=" + itoa(*p))
			}
		}
		b.WriteString("}")
	}
	if r.Pids != nil && r.Pids.Limit != nil {
		b.WriteString("pids=" + itoa(*r.Pids.Limit))
	}
	return b.String()
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
