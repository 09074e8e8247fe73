package spec

import (
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
)

// knownCaps are the Linux capabilities (capability.h, up to
// CAP_CHECKPOINT_RESTORE).
var knownCaps = map[string]bool{}

func init() {
	for _, c := range strings.Fields(`CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID
		SETPCAP LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER
		SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE
		SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN
		SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE`) {
		knownCaps["CAP_"+c] = true
	}
}

func supportedMountType(t string) bool {
	return t == types.VolumeTypeBind || t == types.VolumeTypeVolume || t == types.VolumeTypeTmpfs
}

// convert maps compose-go's normalized project into berth's model and
// collects the warnings for fields berth does not act on.
func (l *load) convert(cp *types.Project) (*Project, error) {
	l.name = cp.Name
	p := &Project{
		Name:         cp.Name,
		WorkingDir:   l.projectDir,
		ComposeFiles: append([]string(nil), l.files...),
	}
	profiles := map[string]bool{}
	for _, s := range cp.Services {
		for _, pr := range s.Profiles {
			profiles[pr] = true
		}
	}
	for _, s := range cp.DisabledServices {
		for _, pr := range s.Profiles {
			profiles[pr] = true
		}
		p.DisabledServices = append(p.DisabledServices, s.Name)
	}
	sort.Strings(p.DisabledServices)
	p.Profiles = sortedKeys(profiles)

	for _, name := range sortedKeys(cp.Services) {
		s := cp.Services[name]
		svc, err := l.convertService(cp, &s)
		if err != nil {
			return nil, err
		}
		p.Services = append(p.Services, svc)
	}
	if p.Services == nil {
		p.Services = []Service{}
	}

	if _, ok := cp.Networks["default"]; ok && !l.declared("networks", "default") {
		// compose-go adds the implicit default network when any service,
		// even one disabled by profiles, would use it: keep it only when
		// an active service does.
		used := false
		for _, s := range cp.Services {
			if _, ok := s.Networks["default"]; ok {
				used = true
			}
		}
		if !used {
			delete(cp.Networks, "default")
		}
	}
	for _, name := range sortedKeys(cp.Networks) {
		n := cp.Networks[name]
		net := Network{
			Name:       name,
			ActualName: n.Name,
			Driver:     n.Driver,
			DriverOpts: nonEmptyMap(n.DriverOpts),
			Internal:   n.Internal,
			External:   bool(n.External),
			Labels:     nonEmptyMap(n.Labels),
		}
		if net.ActualName == "" {
			net.ActualName = cp.Name + "_" + name
		}
		if n.EnableIPv6 != nil {
			net.EnableIPv6 = *n.EnableIPv6
		}
		for _, c := range n.Ipam.Config {
			if c != nil {
				net.IPAM = append(net.IPAM, IPAMConfig{Subnet: c.Subnet, IPRange: c.IPRange, Gateway: c.Gateway})
			}
		}
		p.Networks = append(p.Networks, net)
	}
	for _, name := range sortedKeys(cp.Volumes) {
		v := cp.Volumes[name]
		vol := Volume{
			Name:       name,
			ActualName: v.Name,
			Driver:     v.Driver,
			DriverOpts: nonEmptyMap(v.DriverOpts),
			External:   bool(v.External),
			Labels:     nonEmptyMap(v.Labels),
		}
		if vol.ActualName == "" {
			vol.ActualName = cp.Name + "_" + name
		}
		if vol.Driver != "" && vol.Driver != "local" {
			l.warn("volume %q: ignoring \"driver: %s\" (only local volumes are supported)", name, vol.Driver)
		}
		p.Volumes = append(p.Volumes, vol)
	}
	used := usedFiles(cp)
	for _, name := range sortedKeys(cp.Secrets) {
		f, err := l.convertFile("secrets", name, types.FileObjectConfig(cp.Secrets[name]), used["secrets."+name])
		if err != nil {
			return nil, err
		}
		p.Secrets = append(p.Secrets, f)
	}
	for _, name := range sortedKeys(cp.Configs) {
		f, err := l.convertFile("configs", name, types.FileObjectConfig(cp.Configs[name]), used["configs."+name])
		if err != nil {
			return nil, err
		}
		p.Configs = append(p.Configs, f)
	}

	for _, u := range unsupportedTopLevel {
		var names []string
		switch u.kind {
		case "network":
			names = sortedKeys(cp.Networks)
		case "secret":
			names = sortedKeys(cp.Secrets)
		case "config":
			names = sortedKeys(cp.Configs)
		}
		for _, n := range names {
			if u.set(cp, n) {
				l.warn("%s %q: ignoring %q (not supported)", u.kind, n, u.field)
			}
		}
	}
	for _, u := range unsupportedProjectKeys {
		if u.set(cp) {
			l.warn("ignoring top-level %q (not supported)", u.field)
		}
	}
	for _, f := range l.parsed {
		for _, d := range f.Docs {
			if k, _ := mapGet(d, "version"); k != nil {
				l.warn("%s: ignoring top-level \"version\" (obsolete)", f.Display)
			}
		}
	}
	p.Warnings = sortedKeys(l.warnings)
	return p, nil
}

func usedFiles(cp *types.Project) map[string]bool {
	used := map[string]bool{}
	for _, s := range cp.Services {
		for _, r := range s.Secrets {
			used["secrets."+r.Source] = true
		}
		for _, r := range s.Configs {
			used["configs."+r.Source] = true
		}
	}
	return used
}

func (l *load) convertFile(kind, name string, f types.FileObjectConfig, used bool) (File, error) {
	out := File{
		Name:        name,
		File:        f.File,
		Environment: f.Environment,
		Content:     f.Content,
		External:    bool(f.External),
		Labels:      nonEmptyMap(f.Labels),
	}
	if f.Name != "" && f.Name != l.projectNameFor(name) {
		out.ExternalName = f.Name
	}
	if f.Environment != "" {
		// compose-go copies the variable's value into content; keep it
		// out of the printable model.
		out.Content = ""
		v, ok := l.env[f.Environment]
		if !ok && used {
			return File{}, l.at(keyPath{kind, name, "environment"}, fmt.Sprintf("environment variable %q is not set", f.Environment))
		}
		out.EnvironmentValue = v
	}
	if !out.External && out.File == "" && out.Environment == "" && out.Content == "" && used {
		return File{}, l.at(keyPath{kind, name}, "needs one of file, environment, content or external")
	}
	return out, nil
}

// declared reports whether any loaded file declares section.name.
func (l *load) declared(section, name string) bool {
	for _, f := range l.parsed {
		if _, ok := f.lookup(keyPath{section, name}); ok {
			return true
		}
	}
	return false
}

// projectNameFor is the name compose-go gives a resource that has no
// name: of its own.
func (l *load) projectNameFor(key string) string { return l.name + "_" + key }

func nonEmptyMap[M ~map[string]string](m M) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func copyStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string{}, s...)
}

func mappingList(m types.MappingWithEquals) []string {
	var out []string
	for k, v := range m {
		if v != nil {
			out = append(out, k+"="+*v)
		}
	}
	sort.Strings(out)
	return out
}

func durPtr(d *types.Duration) *Duration {
	if d == nil {
		return nil
	}
	v := Duration(*d)
	return &v
}

func normalizeCap(c string) string {
	c = strings.ToUpper(c)
	if c == "ALL" || strings.HasPrefix(c, "CAP_") {
		return c
	}
	return "CAP_" + c
}

func (l *load) convertService(cp *types.Project, s *types.ServiceConfig) (Service, error) {
	sp := keyPath{"services", s.Name}
	for _, u := range unsupportedServiceFields {
		if u.set(s) {
			l.warn("service %q: ignoring %q (not supported)", s.Name, u.field)
		}
	}
	out := Service{
		Name:          s.Name,
		Image:         s.Image,
		PullPolicy:    s.PullPolicy,
		Platform:      s.Platform,
		WorkingDir:    s.WorkingDir,
		User:          s.User,
		GroupAdd:      copyStrings(s.GroupAdd),
		Hostname:      s.Hostname,
		Domainname:    s.DomainName,
		Labels:        nonEmptyMap(s.Labels),
		Tty:           s.Tty,
		StdinOpen:     s.StdinOpen,
		ContainerName: s.ContainerName,
		Replicas:      1,
		Links:         copyStrings(s.Links),
		VolumesFrom:   copyStrings(s.VolumesFrom),
		NetworkMode:   s.NetworkMode,
		DNS:           copyStrings(s.DNS),
		DNSSearch:     copyStrings(s.DNSSearch),
		DNSOpt:        copyStrings(s.DNSOpts),
		MacAddress:    s.MacAddress,
		Tmpfs:         copyStrings(s.Tmpfs),
		StopSignal:    s.StopSignal,
		Privileged:    s.Privileged,
		ReadOnly:      s.ReadOnly,
		SecurityOpt:   copyStrings(s.SecurityOpt),
		UsernsMode:    s.UserNSMode,
		PidMode:       s.Pid,
		IpcMode:       s.Ipc,
		Sysctls:       nonEmptyMap(s.Sysctls),
		ShmSize:       int64(s.ShmSize),
	}
	if s.Command != nil {
		out.Command = append([]string{}, s.Command...)
	}
	if s.Entrypoint != nil {
		out.Entrypoint = append([]string{}, s.Entrypoint...)
	}
	out.Environment = mappingList(s.Environment)
	for _, ef := range s.EnvFiles {
		out.EnvFiles = append(out.EnvFiles, ef.Path)
	}
	if len(s.Profiles) > 0 {
		out.Profiles = append([]string{}, s.Profiles...)
		sort.Strings(out.Profiles)
	}
	if s.Build != nil {
		b := &Build{
			Context:            s.Build.Context,
			Dockerfile:         s.Build.Dockerfile,
			DockerfileInline:   s.Build.DockerfileInline,
			Target:             s.Build.Target,
			Labels:             nonEmptyMap(s.Build.Labels),
			Tags:               copyStrings(s.Build.Tags),
			NoCache:            s.Build.NoCache,
			Pull:               s.Build.Pull,
			AdditionalContexts: nonEmptyMap(s.Build.AdditionalContexts),
			ShmSize:            int64(s.Build.ShmSize),
			Network:            s.Build.Network,
		}
		if len(s.Build.Args) > 0 {
			b.Args = map[string]string{}
			for k, v := range s.Build.Args {
				if v != nil {
					b.Args[k] = *v
				}
			}
		}
		out.Build = b
	}

	// Replicas: deploy.replicas, else scale, else 1.
	if s.Scale != nil {
		out.Replicas = *s.Scale
	}
	if s.Deploy != nil && s.Deploy.Replicas != nil {
		out.Replicas = *s.Deploy.Replicas
	}
	if out.Replicas < 0 {
		return Service{}, l.at(sp.key("scale"), fmt.Sprintf("invalid number of replicas %d", out.Replicas))
	}

	for _, dep := range sortedKeys(s.DependsOn) {
		d := s.DependsOn[dep]
		cond := d.Condition
		if cond == "" {
			cond = ConditionStarted
		}
		out.DependsOn = append(out.DependsOn, Dependency{Service: dep, Condition: cond, Required: d.Required, Restart: d.Restart})
	}

	if s.NetworkMode == "" || s.NetworkMode == "bridge" {
		for _, n := range sortedKeys(s.Networks) {
			sn := ServiceNetwork{Name: n}
			if c := s.Networks[n]; c != nil {
				sn.Aliases = copyStrings(c.Aliases)
				sn.IPv4Address = c.Ipv4Address
				sn.IPv6Address = c.Ipv6Address
				sn.MacAddress = c.MacAddress
				sn.Priority = c.Priority
				sn.GwPriority = c.GatewayPriority
			}
			out.Networks = append(out.Networks, sn)
		}
	}
	for _, pc := range s.Ports {
		if pc.Target == 0 || pc.Target > 65535 {
			return Service{}, l.at(sp.key("ports"), fmt.Sprintf("invalid container port %d", pc.Target))
		}
		proto := pc.Protocol
		if proto == "" {
			proto = "tcp"
		}
		out.Ports = append(out.Ports, Port{
			Name: pc.Name, Target: uint16(pc.Target), Published: pc.Published,
			HostIP: pc.HostIP, Protocol: proto, Mode: pc.Mode,
		})
	}
	out.Expose = copyStrings(s.Expose)
	for _, h := range sortedKeys(s.ExtraHosts) {
		for _, ip := range s.ExtraHosts[h] {
			out.ExtraHosts = append(out.ExtraHosts, h+"="+ip)
		}
	}

	for i, v := range s.Volumes {
		if !supportedMountType(v.Type) {
			continue
		}
		m := Mount{Type: v.Type, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly}
		if !path.IsAbs(m.Target) {
			return Service{}, l.at(sp.key("volumes").index(i), fmt.Sprintf("mount target %q is not an absolute path", m.Target))
		}
		switch v.Type {
		case types.VolumeTypeBind:
			if v.Bind != nil {
				m.CreateHostPath = bool(v.Bind.CreateHostPath)
				m.Propagation = v.Bind.Propagation
				m.SELinux = v.Bind.SELinux
			}
		case types.VolumeTypeVolume:
			if v.Volume != nil {
				m.NoCopy = v.Volume.NoCopy
				m.Subpath = v.Volume.Subpath
			}
		case types.VolumeTypeTmpfs:
			m.Source = ""
			if v.Tmpfs != nil {
				m.TmpfsSize = int64(v.Tmpfs.Size)
				m.TmpfsMode = v.Tmpfs.Mode
			}
		}
		out.Mounts = append(out.Mounts, m)
	}
	out.Secrets = convertRefs(secretRefs(s.Secrets), "/run/secrets/")
	out.Configs = convertRefs(configRefs(s.Configs), "/")

	// Restart: restart: (Compose's precedence), with deploy.restart_policy
	// supplying what restart: cannot say (delay, window).
	out.Restart = RestartPolicy{Condition: "no"}
	var rp *types.RestartPolicy
	if s.Deploy != nil {
		rp = s.Deploy.RestartPolicy
	}
	if rp != nil {
		switch rp.Condition {
		case "none":
			out.Restart.Condition = "no"
		case "any", "":
			out.Restart.Condition = "always"
		default:
			out.Restart.Condition = rp.Condition
		}
		if rp.MaxAttempts != nil {
			out.Restart.MaxAttempts = int(*rp.MaxAttempts)
		}
		out.Restart.Delay = durPtr(rp.Delay)
		out.Restart.Window = durPtr(rp.Window)
	}
	if s.Restart != "" {
		cond, n, _ := strings.Cut(s.Restart, ":")
		out.Restart.Condition = cond
		out.Restart.MaxAttempts = 0
		if n != "" {
			out.Restart.MaxAttempts, _ = strconv.Atoi(n)
		}
	}

	if hc := s.HealthCheck; hc != nil {
		h := &Healthcheck{
			Test:          copyStrings(hc.Test),
			Disable:       hc.Disable,
			Interval:      durPtr(hc.Interval),
			Timeout:       durPtr(hc.Timeout),
			StartPeriod:   durPtr(hc.StartPeriod),
			StartInterval: durPtr(hc.StartInterval),
		}
		if len(h.Test) > 0 && h.Test[0] != "CMD" && h.Test[0] != "CMD-SHELL" && h.Test[0] != "NONE" {
			return Service{}, l.at(sp.key("healthcheck").key("test"),
				fmt.Sprintf("test must start with CMD, CMD-SHELL or NONE, not %q (or be a string, run by the shell)", h.Test[0]))
		}
		if len(h.Test) == 1 && h.Test[0] == "NONE" {
			h.Disable = true
		}
		if hc.Retries != nil {
			r := int(*hc.Retries)
			h.Retries = &r
		}
		out.Healthcheck = h
	}
	out.StopGracePeriod = durPtr(s.StopGracePeriod)
	if s.Init != nil {
		out.Init = *s.Init
	}
	out.PostStart = convertHooks(s.PostStart)
	out.PreStop = convertHooks(s.PreStop)
	switch {
	case s.Logging != nil:
		out.Logging = &Logging{Driver: s.Logging.Driver, Options: nonEmptyMap(s.Logging.Options)}
	case s.LogDriver != "" || len(s.LogOpt) > 0:
		out.Logging = &Logging{Driver: s.LogDriver, Options: nonEmptyMap(s.LogOpt)}
	}
	for _, list := range []struct {
		key string
		in  []string
		out *[]string
	}{{"cap_add", s.CapAdd, &out.CapAdd}, {"cap_drop", s.CapDrop, &out.CapDrop}} {
		for _, c := range list.in {
			nc := normalizeCap(c)
			if nc != "ALL" && !knownCaps[nc] {
				return Service{}, l.atItem(sp.key(list.key), func(n *yaml.Node) bool { return n.Value == c },
					fmt.Sprintf("unknown capability %q", c))
			}
			*list.out = append(*list.out, nc)
		}
	}
	for _, t := range s.Tmpfs {
		if p, _, _ := strings.Cut(t, ":"); !path.IsAbs(p) {
			return Service{}, l.atItem(sp.key("tmpfs"), func(n *yaml.Node) bool { return n.Value == t },
				fmt.Sprintf("tmpfs target %q is not an absolute path", p))
		}
	}

	r := Resources{
		NanoCPUs:          int64(float64(s.CPUS)*1e9 + 0.5),
		CPUShares:         s.CPUShares,
		CPUPeriod:         s.CPUPeriod,
		CPUQuota:          s.CPUQuota,
		CpusetCPUs:        s.CPUSet,
		MemoryLimit:       int64(s.MemLimit),
		MemorySwap:        int64(s.MemSwapLimit),
		MemoryReservation: int64(s.MemReservation),
		PidsLimit:         s.PidsLimit,
		OomKillDisable:    s.OomKillDisable,
		OomScoreAdj:       int(s.OomScoreAdj),
	}
	if s.MemSwappiness != 0 {
		v := int64(s.MemSwappiness)
		r.MemSwappiness = &v
	}
	if s.Deploy != nil {
		if lim := s.Deploy.Resources.Limits; lim != nil {
			if lim.NanoCPUs != 0 {
				r.NanoCPUs = int64(float64(lim.NanoCPUs)*1e9 + 0.5)
			}
			if lim.MemoryBytes != 0 {
				r.MemoryLimit = int64(lim.MemoryBytes)
			}
			if lim.Pids != 0 {
				r.PidsLimit = lim.Pids
			}
		}
		if res := s.Deploy.Resources.Reservations; res != nil && res.MemoryBytes != 0 {
			r.MemoryReservation = int64(res.MemoryBytes)
		}
	}
	out.Resources = r

	for _, name := range sortedKeys(s.Ulimits) {
		u := s.Ulimits[name]
		if u == nil {
			continue
		}
		soft, hard := int64(u.Soft), int64(u.Hard)
		if u.Single != 0 {
			soft, hard = int64(u.Single), int64(u.Single)
		}
		if soft > hard {
			return Service{}, l.at(sp.key("ulimits").key(name), fmt.Sprintf("soft limit %d is above hard limit %d", soft, hard))
		}
		out.Ulimits = append(out.Ulimits, Ulimit{Name: name, Soft: soft, Hard: hard})
	}
	for _, d := range s.Devices {
		dev := Device{Source: d.Source, Target: d.Target, Permissions: d.Permissions}
		if dev.Target == "" {
			dev.Target = dev.Source
		}
		if dev.Permissions == "" {
			dev.Permissions = "rwm"
		}
		out.Devices = append(out.Devices, dev)
	}
	if s.Develop != nil && len(s.Develop.Watch) > 0 {
		d := &Develop{}
		for _, w := range s.Develop.Watch {
			d.Watch = append(d.Watch, WatchRule{
				Path: w.Path, Target: w.Target, Action: string(w.Action),
				Ignore: copyStrings(w.Ignore), Include: copyStrings(w.Include),
				InitialSync: w.InitialSync, ExecCommand: copyStrings(w.Exec.Command),
			})
		}
		out.Develop = d
	}
	if raw, ok := s.Extensions["x-berth"]; ok && raw != nil {
		b, err := json.Marshal(raw)
		if err != nil {
			return Service{}, l.at(sp.key("x-berth"), err.Error())
		}
		var ext BerthExtension
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ext); err != nil {
			return Service{}, l.at(sp.key("x-berth"), "invalid x-berth extension: "+strings.TrimPrefix(err.Error(), "json: "))
		}
		if ext.UnhealthyRestartLimit < 0 {
			return Service{}, l.at(sp.key("x-berth").key("unhealthy_restart_limit"), "must not be negative")
		}
		out.Extensions = &ext
	}
	return out, nil
}

func secretRefs(c []types.ServiceSecretConfig) []types.FileReferenceConfig {
	out := make([]types.FileReferenceConfig, len(c))
	for i := range c {
		out[i] = types.FileReferenceConfig(c[i])
	}
	return out
}

func configRefs(c []types.ServiceConfigObjConfig) []types.FileReferenceConfig {
	out := make([]types.FileReferenceConfig, len(c))
	for i := range c {
		out[i] = types.FileReferenceConfig(c[i])
	}
	return out
}

func convertRefs(refs []types.FileReferenceConfig, base string) []FileRef {
	var out []FileRef
	for _, r := range refs {
		f := FileRef{Source: r.Source, Target: r.Target, UID: r.UID, GID: r.GID}
		if f.Target == "" {
			f.Target = base + r.Source
		} else if !path.IsAbs(f.Target) {
			f.Target = base + f.Target
		}
		if r.Mode != nil {
			m := uint32(*r.Mode)
			f.Mode = &m
		}
		out = append(out, f)
	}
	return out
}

func convertHooks(hs []types.ServiceHook) []Hook {
	var out []Hook
	for _, h := range hs {
		out = append(out, Hook{
			Command: copyStrings(h.Command), User: h.User, Privileged: h.Privileged,
			WorkingDir: h.WorkingDir, Environment: mappingList(h.Environment),
		})
	}
	return out
}
