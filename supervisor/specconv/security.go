package specconv

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/berth-dev/berth/supervisor/runtime"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// thermalThrottlePaths lists the host's per-CPU thermal_throttle
// directories, which Docker masks too. The glob walks every CPU's sysfs
// directory, so its result is kept while the set of online CPUs (one
// small sysfs file) stays the same.
var thermalThrottlePaths = func() []string {
	online, _ := os.ReadFile("/sys/devices/system/cpu/online")
	thermal.mu.Lock()
	defer thermal.mu.Unlock()
	if thermal.paths == nil || string(online) != thermal.online {
		m, _ := filepath.Glob("/sys/devices/system/cpu/cpu[0-9]*/thermal_throttle")
		thermal.paths, thermal.online = append([]string{}, m...), string(online)
	}
	return thermal.paths
}

var thermal struct {
	mu     sync.Mutex
	online string
	paths  []string // non-nil once globbed
}

// securityOpts is a parsed security_opt list.
type securityOpts struct {
	noNewPrivs      bool
	seccomp         string // "", "unconfined" or a profile path
	systemPathsOpen bool
	writableCgroups *bool
}

func (c *conv) parseSecurityOpts() (securityOpts, error) {
	var o securityOpts
	for _, opt := range c.svc.SecurityOpt {
		// Docker takes "key=value" and the legacy "key:value".
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			k, v, ok = strings.Cut(opt, ":")
		}
		switch k {
		case "no-new-privileges":
			if !ok {
				o.noNewPrivs = true
				continue
			}
			b, err := strconv.ParseBool(v)
			if err != nil {
				return o, c.errf("security_opt", "%q: want no-new-privileges, no-new-privileges=true or no-new-privileges=false", opt)
			}
			o.noNewPrivs = b
		case "seccomp":
			if !ok || v == "" {
				return o, c.errf("security_opt", "%q: want seccomp=unconfined or seccomp=PROFILE.json", opt)
			}
			o.seccomp = v
		case "systempaths":
			if v != "unconfined" {
				return o, c.errf("security_opt", "%q: the only value is systempaths=unconfined", opt)
			}
			o.systemPathsOpen = true
		case "writable-cgroups":
			b, err := strconv.ParseBool(v)
			if !ok || err != nil {
				return o, c.errf("security_opt", "%q: want writable-cgroups=true or false", opt)
			}
			o.writableCgroups = &b
		case "apparmor":
			c.warnf("security_opt %q: AppArmor is not supported, ignored", opt)
		case "label":
			c.warnf("security_opt %q: SELinux labels are not supported, ignored", opt)
		default:
			return o, c.errf("security_opt", "unknown option %q (want no-new-privileges, seccomp, systempaths, writable-cgroups, apparmor or label)", opt)
		}
	}
	return o, nil
}

func (c *conv) security() error {
	svc := c.svc
	opts, err := c.parseSecurityOpts()
	if err != nil {
		return err
	}
	c.sec = opts
	caps, err := Capabilities(svc.CapAdd, svc.CapDrop, svc.Privileged)
	if err != nil {
		field, rest, _ := strings.Cut(err.Error(), ": ")
		return c.errf(field, "%s", rest)
	}
	if caps == nil {
		caps = []string{}
	}
	// Docker leaves Inheritable and Ambient empty (CVE-2022-24769).
	c.s.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding:  caps,
		Effective: append([]string(nil), caps...),
		Permitted: append([]string(nil), caps...),
	}
	c.s.Process.NoNewPrivileges = opts.noNewPrivs

	if !svc.Privileged && !opts.systemPathsOpen {
		c.s.Linux.MaskedPaths = append(append([]string(nil), runtime.DefaultMaskedPaths...), thermalThrottlePaths()...)
		c.s.Linux.ReadonlyPaths = append([]string(nil), runtime.DefaultReadonlyPaths...)
	}

	// Seccomp: Docker's default profile resolved for these
	// capabilities, unless unconfined or privileged.
	switch {
	case svc.Privileged:
		if opts.seccomp != "" && opts.seccomp != "unconfined" {
			c.warnf("security_opt seccomp=%s: privileged containers run without seccomp, ignored", opts.seccomp)
		}
	case opts.seccomp == "unconfined":
	case opts.seccomp == "":
		prof, err := defaultSeccomp(c.s)
		if err != nil {
			return c.errf("security_opt", "default seccomp profile: %v", err)
		}
		c.s.Linux.Seccomp = prof
	default:
		file := opts.seccomp
		if !filepath.IsAbs(file) {
			file = filepath.Join(c.p.WorkingDir, file)
		}
		body, err := os.ReadFile(file)
		if err != nil {
			return c.errf("security_opt", "seccomp profile: %v", err)
		}
		prof, err := loadSeccomp(body, c.s)
		if err != nil {
			return c.errf("security_opt", "seccomp profile %s: %v", file, err)
		}
		c.s.Linux.Seccomp = prof
	}
	return nil
}

// ParseSignal returns the canonical name ("SIGTERM", "SIGRTMIN+3") of a
// signal given as a name with or without "SIG" or as a number.
func ParseSignal(s string) (string, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	if n, err := strconv.Atoi(u); err == nil {
		return signalName(n, s)
	}
	if !strings.HasPrefix(u, "SIG") {
		u = "SIG" + u
	}
	for _, base := range []struct {
		name string
		num  int
	}{{"SIGRTMIN", sigRTMin}, {"SIGRTMAX", sigRTMax}} {
		if rest, ok := strings.CutPrefix(u, base.name); ok {
			if rest == "" {
				return base.name, nil
			}
			off, err := strconv.Atoi(rest)
			if err != nil || rest[0] != '+' && rest[0] != '-' {
				return "", fmt.Errorf("invalid signal %q", s)
			}
			return signalName(base.num+off, s)
		}
	}
	for n, name := range signalNames {
		if name == u {
			return signalName(n, s)
		}
	}
	switch u { // aliases
	case "SIGIOT":
		return "SIGABRT", nil
	case "SIGPOLL":
		return "SIGIO", nil
	case "SIGCLD":
		return "SIGCHLD", nil
	}
	return "", fmt.Errorf("invalid signal %q", s)
}

// Linux signal numbers (x86 and most architectures).
var signalNames = map[int]string{
	1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS",
	8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE",
	14: "SIGALRM", 15: "SIGTERM", 16: "SIGSTKFLT", 17: "SIGCHLD", 18: "SIGCONT", 19: "SIGSTOP",
	20: "SIGTSTP", 21: "SIGTTIN", 22: "SIGTTOU", 23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ",
	26: "SIGVTALRM", 27: "SIGPROF", 28: "SIGWINCH", 29: "SIGIO", 30: "SIGPWR", 31: "SIGSYS",
}

const (
	sigRTMin = 34
	sigRTMax = 64
)

func signalName(n int, orig string) (string, error) {
	switch {
	case signalNames[n] != "":
		return signalNames[n], nil
	case n == sigRTMin:
		return "SIGRTMIN", nil
	case n > sigRTMin && n <= sigRTMax:
		return fmt.Sprintf("SIGRTMIN+%d", n-sigRTMin), nil
	}
	return "", fmt.Errorf("invalid signal %q", orig)
}
