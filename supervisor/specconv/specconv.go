package specconv

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/runtime"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// Annotations berth sets on the spec for its own runtime.
const (
	AnnotationStopSignal = "berth.stop_signal"
	AnnotationUser       = "berth.user"
	AnnotationGroupAdd   = "berth.group_add"
	AnnotationService    = "berth.service"
	AnnotationProject    = "berth.project"
)

// DefaultPath is the PATH a container gets when its image sets none.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ImageConfig is what the image's config contributes to the container.
type ImageConfig struct {
	Entrypoint []string
	Cmd        []string
	Env        []string // KEY=VALUE
	WorkingDir string
	User       string
	StopSignal string
}

// Namespace modes for Options.NetNSPath.
const (
	NetHost = "host" // share the host's network namespace
	NetNone = "none" // a new network namespace with only loopback
)

// Options holds what the service does not say itself.
type Options struct {
	// Image is the image's config.
	Image ImageConfig
	// Rootfs is the container's root filesystem (spec.Root.Path).
	Rootfs string
	// Hostname is the hostname when the service sets none (Compose uses
	// the container id's short form; the caller chooses).
	Hostname string
	// NetNSPath is the network namespace: a path to join (netstack's
	// namespace, or another container's for network_mode service:/container:),
	// NetHost, NetNone, or "" for a new one (none when the service says
	// network_mode: host).
	NetNSPath string
	// PIDNSPath and IPCNSPath are namespaces to join for pid:/ipc:
	// service:X and container:X. Joining an IPC namespace does not share
	// the other container's /dev/shm: pass its shm as a mount at /dev/shm
	// in Mounts (it replaces the default one), as Docker does.
	PIDNSPath string
	IPCNSPath string
	// CgroupsPath is linux.cgroupsPath.
	CgroupsPath string
	// Mounts are every mount of the service, as volumes.Prepare returns
	// them (volumes:, tmpfs:, secrets and configs), plus what else the
	// caller adds (/etc/resolv.conf, /etc/hosts, /etc/hostname). They
	// override default mounts at the same destination. ToOCI reads
	// neither spec.Service.Mounts nor spec.Service.Tmpfs: volumes owns
	// the service's storage.
	Mounts []specs.Mount
}

// FieldError is an invalid service field.
type FieldError struct {
	Service string
	Field   string
	Err     error
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("service %q: %s: %v", e.Service, e.Field, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// conv carries one conversion.
type conv struct {
	p         *spec.Project
	svc       *spec.Service
	opts      Options
	s         *specs.Spec
	warnings  []string
	hostNet   bool
	sharedNet bool // joins another container's network namespace
	hostIPC   bool
	sec       securityOpts
}

func (c *conv) errf(field, format string, args ...any) error {
	return &FieldError{Service: c.svc.Name, Field: field, Err: fmt.Errorf(format, args...)}
}

func (c *conv) warnf(format string, args ...any) {
	c.warnings = append(c.warnings, fmt.Sprintf("service %q: ", c.svc.Name)+fmt.Sprintf(format, args...))
}

// ToOCI returns the OCI runtime spec for one container of svc, and
// warnings about settings accepted but not acted on. Invalid input is a
// *FieldError naming the service and field.
func ToOCI(p *spec.Project, svc *spec.Service, opts Options) (*specs.Spec, []string, error) {
	if svc == nil {
		return nil, nil, errors.New("specconv: nil service")
	}
	if p == nil {
		p = &spec.Project{}
	}
	c := &conv{p: p, svc: svc, opts: opts}
	c.s = &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: opts.Rootfs, Readonly: svc.ReadOnly},
		Process: &specs.Process{},
		Linux: &specs.Linux{
			CgroupsPath: opts.CgroupsPath,
			Resources:   &specs.LinuxResources{},
		},
		Annotations: map[string]string{},
	}
	if svc.Name != "" {
		c.s.Annotations[AnnotationService] = svc.Name
	}
	if p.Name != "" {
		c.s.Annotations[AnnotationProject] = p.Name
	}
	steps := []func() error{
		c.namespaces,
		c.hostname,
		c.process,
		c.user,
		c.security, // capabilities, security_opt, seccomp, masked paths
		c.rlimits,
		c.sysctls,
		c.resources,
		c.devices,
		c.mounts,
		c.lifecycle,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, nil, err
		}
	}
	return c.s, c.warnings, nil
}

func (c *conv) namespaces() error {
	svc := c.svc
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}}

	// Network.
	switch mode := svc.NetworkMode; {
	case mode == "host" || c.opts.NetNSPath == NetHost:
		if mode != "" && mode != "host" {
			return c.errf("network_mode", "%q conflicts with the host network namespace given by the caller", mode)
		}
		if c.opts.NetNSPath != "" && c.opts.NetNSPath != NetHost {
			return c.errf("network_mode", "host network mode but a network namespace path %q was given", c.opts.NetNSPath)
		}
		c.hostNet = true
	case c.opts.NetNSPath == "" || c.opts.NetNSPath == NetNone:
		if strings.HasPrefix(mode, "service:") || strings.HasPrefix(mode, "container:") {
			return c.errf("network_mode", "%q needs the namespace path of that container", mode)
		}
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	default:
		c.sharedNet = strings.HasPrefix(mode, "service:") || strings.HasPrefix(mode, "container:")
		if !path.IsAbs(c.opts.NetNSPath) {
			return c.errf("network_mode", "network namespace path %q is not absolute", c.opts.NetNSPath)
		}
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: c.opts.NetNSPath})
	}

	ns = append(ns, specs.LinuxNamespace{Type: specs.UTSNamespace})

	// PID.
	switch mode := svc.PidMode; {
	case mode == "host":
	case mode == "":
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace})
	case strings.HasPrefix(mode, "service:") || strings.HasPrefix(mode, "container:"):
		if c.opts.PIDNSPath == "" {
			return c.errf("pid", "%q needs the namespace path of that container", mode)
		}
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: c.opts.PIDNSPath})
	default:
		return c.errf("pid", "invalid mode %q (want host, service:NAME or container:NAME)", mode)
	}

	// IPC.
	switch mode := svc.IpcMode; {
	case mode == "host":
		c.hostIPC = true
	case mode == "" || mode == "private" || mode == "shareable":
		ns = append(ns, specs.LinuxNamespace{Type: specs.IPCNamespace})
	case strings.HasPrefix(mode, "service:") || strings.HasPrefix(mode, "container:"):
		if c.opts.IPCNSPath == "" {
			return c.errf("ipc", "%q needs the namespace path of that container", mode)
		}
		ns = append(ns, specs.LinuxNamespace{Type: specs.IPCNamespace, Path: c.opts.IPCNSPath})
	default:
		return c.errf("ipc", "invalid mode %q (want private, shareable, host, service:NAME or container:NAME)", mode)
	}

	ns = append(ns, specs.LinuxNamespace{Type: specs.CgroupNamespace})

	switch svc.UsernsMode {
	case "", "host":
	default:
		return c.errf("userns_mode", "%q is not supported", svc.UsernsMode)
	}
	c.s.Linux.Namespaces = ns
	return nil
}

func (c *conv) hostname() error {
	h := c.svc.Hostname
	if h == "" {
		h = c.opts.Hostname
	}
	if err := validHostname(h); err != nil {
		return c.errf("hostname", "%v", err)
	}
	if err := validHostname(c.svc.Domainname); err != nil {
		return c.errf("domainname", "%v", err)
	}
	c.s.Hostname = h
	c.s.Domainname = c.svc.Domainname
	return nil
}

// validHostname accepts what sethostname(2) takes and DNS can carry.
func validHostname(h string) error {
	if len(h) > 64 {
		return fmt.Errorf("%q is longer than 64 bytes", h)
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return fmt.Errorf("%q: invalid character %q", h, r)
		}
	}
	return nil
}

func (c *conv) process() error {
	svc, img := c.svc, c.opts.Image
	// Compose: a service entrypoint replaces the image's and drops the
	// image's Cmd unless the service also gives a command.
	entrypoint := img.Entrypoint
	cmd := img.Cmd
	if svc.Entrypoint != nil {
		entrypoint = svc.Entrypoint
		cmd = nil
	}
	if svc.Command != nil {
		cmd = svc.Command
	}
	args := append(slices.Clone(entrypoint), cmd...)
	if len(args) == 0 {
		return c.errf("command", "no command: neither the service nor its image sets an entrypoint or a command")
	}
	if args[0] == "" {
		return c.errf("command", "empty program name")
	}
	c.s.Process.Args = args
	c.s.Process.Terminal = svc.Tty

	// Environment: Docker's daemon defaults, then the image's, then the
	// service's, each replacing earlier values of the same key.
	env := []string{DefaultPath, "HOSTNAME=" + c.s.Hostname}
	if svc.Tty {
		env = append(env, "TERM=xterm")
	}
	for _, field := range []struct {
		name string
		vars []string
	}{{"image env", img.Env}, {"environment", svc.Environment}} {
		for _, kv := range field.vars {
			k, _, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return c.errf(field.name, "invalid variable %q (want KEY=VALUE)", kv)
			}
			if strings.ContainsRune(kv, 0) {
				return c.errf(field.name, "variable %q contains a NUL byte", k)
			}
			env = setEnv(env, k, kv)
		}
	}
	c.s.Process.Env = env

	cwd := svc.WorkingDir
	field := "working_dir"
	if cwd == "" {
		cwd, field = img.WorkingDir, "image WorkingDir"
	}
	if cwd == "" {
		cwd = "/"
	}
	if !path.IsAbs(cwd) {
		return c.errf(field, "%q is not an absolute path", cwd)
	}
	c.s.Process.Cwd = path.Clean(cwd)
	return nil
}

// setEnv replaces the variable k in env or appends kv.
func setEnv(env []string, k, kv string) []string {
	for i, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			env[i] = kv
			return env
		}
	}
	return append(env, kv)
}

func (c *conv) user() error {
	u := c.svc.User
	field := "user"
	if u == "" {
		u, field = c.opts.Image.User, "image User"
	}
	if u != "" {
		name, group, hasGroup := strings.Cut(u, ":")
		uid, uerr := parseID(name)
		gid, gerr := uint32(0), error(nil)
		if hasGroup {
			gid, gerr = parseID(group)
		}
		for _, err := range []error{uerr, gerr} {
			if err != nil && err != errNeedsLookup {
				return c.errf(field, "%q: %v", u, err)
			}
		}
		c.s.Process.User = specs.User{UID: uid, GID: gid}
		// A name needs the image's /etc/passwd or /etc/group, and so
		// does a numeric user without a group (its primary group).
		if uerr != nil || gerr != nil || !hasGroup {
			c.s.Annotations[AnnotationUser] = u
			// The runtime resolves process.user.username against
			// the image (runtime-spec calls the field Windows-only;
			// berth's runtime reads it on Linux too).
			c.s.Process.User.Username = u
		}
	}
	var named []string
	for _, g := range c.svc.GroupAdd {
		id, err := parseID(g)
		switch {
		case err == errNeedsLookup:
			named = append(named, g)
		case err != nil:
			return c.errf("group_add", "%q: %v", g, err)
		default:
			c.s.Process.User.AdditionalGids = append(c.s.Process.User.AdditionalGids, id)
		}
	}
	if len(named) > 0 {
		c.s.Annotations[AnnotationGroupAdd] = strings.Join(named, ",")
	}
	return nil
}

var errNeedsLookup = errors.New("needs lookup")

// parseID parses a numeric uid/gid; a name returns errNeedsLookup.
func parseID(s string) (uint32, error) {
	if s == "" {
		return 0, errors.New("empty user or group")
	}
	if s[0] >= '0' && s[0] <= '9' {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("invalid id %q", s)
		}
		return uint32(n), nil
	}
	for _, r := range s {
		if r == ':' || r == '/' || r == 0 || r == '\n' {
			return 0, fmt.Errorf("invalid name %q", s)
		}
	}
	return 0, errNeedsLookup
}

func (c *conv) lifecycle() error {
	if c.svc.Init {
		c.s.Annotations[runtime.AnnotationInit] = "true"
	}
	sig := c.svc.StopSignal
	field := "stop_signal"
	if sig == "" {
		sig, field = c.opts.Image.StopSignal, "image StopSignal"
	}
	if sig == "" {
		sig = "SIGTERM"
	}
	name, err := ParseSignal(sig)
	if err != nil {
		return c.errf(field, "%v", err)
	}
	c.s.Annotations[AnnotationStopSignal] = name
	return nil
}
