package specconv

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/spec"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultShmSize is Docker's default /dev/shm size (64 MiB).
const DefaultShmSize = 64 << 20

// defaultMounts are Docker's default mounts.
func (c *conv) defaultMounts() []specs.Mount {
	shm := c.svc.ShmSize
	if shm <= 0 {
		shm = DefaultShmSize
	}
	sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
	cgOpts := []string{"ro", "nosuid", "noexec", "nodev"}
	if c.svc.Privileged {
		sysOpts = []string{"nosuid", "noexec", "nodev", "rw"}
	}
	if c.svc.Privileged || c.sec.writableCgroups != nil && *c.sec.writableCgroups {
		cgOpts = []string{"rw", "nosuid", "noexec", "nodev"}
	}
	ms := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: cgOpts},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
	}
	if c.hostIPC {
		// Docker shares the host's /dev/shm with ipc: host.
		ms = append(ms, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "nosuid", "noexec", "nodev"}})
	} else {
		ms = append(ms, specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm",
			Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + strconv.FormatInt(shm, 10)}})
	}
	return ms
}

func (c *conv) mounts() error {
	var user []specs.Mount
	dests := map[string]bool{}
	add := func(field string, m specs.Mount) error {
		m.Destination = path.Clean(m.Destination)
		if dests[m.Destination] {
			return c.errf(field, "two mounts at %s", m.Destination)
		}
		dests[m.Destination] = true
		user = append(user, m)
		return nil
	}
	for _, t := range c.svc.Tmpfs {
		m, err := parseTmpfs(t)
		if err != nil {
			return c.errf("tmpfs", "%v", err)
		}
		if err := add("tmpfs", m); err != nil {
			return err
		}
	}
	for _, m := range c.opts.Mounts {
		if !path.IsAbs(m.Destination) {
			return c.errf("volumes", "mount target %q is not an absolute path", m.Destination)
		}
		if err := add("volumes", m); err != nil {
			return err
		}
	}
	// Defaults at a user mount's destination give way to it; a user /dev
	// replaces every default below /dev too (Docker's rule).
	var out []specs.Mount
	for _, m := range c.defaultMounts() {
		if dests[m.Destination] || dests["/dev"] && strings.HasPrefix(m.Destination, "/dev/") {
			continue
		}
		out = append(out, m)
	}
	// Parents before children.
	sort.SliceStable(user, func(i, j int) bool {
		return depth(user[i].Destination) < depth(user[j].Destination)
	})
	c.s.Mounts = append(out, user...)
	return nil
}

func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// defaultTmpfsOptions are Docker's options for tmpfs: mounts.
var defaultTmpfsOptions = []string{"noexec", "nosuid", "nodev"}

// tmpfsFlagPairs maps each boolean tmpfs option to its opposite.
var tmpfsFlagPairs = map[string]string{
	"rw": "ro", "ro": "rw", "exec": "noexec", "noexec": "exec", "suid": "nosuid", "nosuid": "suid",
	"dev": "nodev", "nodev": "dev", "atime": "noatime", "noatime": "atime", "diratime": "nodiratime",
	"nodiratime": "diratime", "relatime": "norelatime", "norelatime": "relatime",
	"strictatime": "nostrictatime", "nostrictatime": "strictatime", "sync": "async", "async": "sync",
	"dirsync": "", "noswap": "",
}

var (
	tmpfsSizeRE = regexp.MustCompile(`^[0-9]+[kKmMgGtTpPeE%]?$`)
	tmpfsNumRE  = regexp.MustCompile(`^[0-9]+[kKmMgG]?$`)
)

// parseTmpfs parses one tmpfs: entry, "PATH[:OPTIONS]", merging the
// options over Docker's defaults (noexec,nosuid,nodev).
func parseTmpfs(entry string) (specs.Mount, error) {
	dst, optStr, _ := strings.Cut(entry, ":")
	if !path.IsAbs(dst) {
		return specs.Mount{}, fmt.Errorf("%q: the path must be absolute", entry)
	}
	opts := slices.Clone(defaultTmpfsOptions)
	if optStr != "" {
		for _, o := range strings.Split(optStr, ",") {
			var err error
			if opts, err = mergeTmpfsOption(opts, o); err != nil {
				return specs.Mount{}, fmt.Errorf("%q: %v", entry, err)
			}
		}
	}
	return specs.Mount{Destination: path.Clean(dst), Type: "tmpfs", Source: "tmpfs", Options: opts}, nil
}

func mergeTmpfsOption(opts []string, o string) ([]string, error) {
	k, v, hasValue := strings.Cut(o, "=")
	if !hasValue {
		opp, ok := tmpfsFlagPairs[k]
		if !ok {
			return nil, fmt.Errorf("unknown tmpfs option %q", o)
		}
		opts = slices.DeleteFunc(opts, func(x string) bool { return x == k || x == opp && opp != "" })
		return append(opts, k), nil
	}
	switch k {
	case "size":
		if !tmpfsSizeRE.MatchString(v) {
			return nil, fmt.Errorf("invalid size %q (want bytes with an optional k, m, g suffix or %%)", v)
		}
	case "mode":
		m, err := strconv.ParseUint(v, 8, 32)
		if err != nil || m > 0o7777 {
			return nil, fmt.Errorf("invalid mode %q (want octal, at most 7777)", v)
		}
	case "uid", "gid":
		if _, err := strconv.ParseUint(v, 10, 32); err != nil {
			return nil, fmt.Errorf("invalid %s %q", k, v)
		}
	case "nr_inodes", "nr_blocks":
		if !tmpfsNumRE.MatchString(v) {
			return nil, fmt.Errorf("invalid %s %q", k, v)
		}
	case "huge", "mpol":
	default:
		return nil, fmt.Errorf("unknown tmpfs option %q", o)
	}
	opts = slices.DeleteFunc(opts, func(x string) bool { return strings.HasPrefix(x, k+"=") })
	return append(opts, o), nil
}

// TmpfsMount converts a volumes: entry of type tmpfs (with tmpfs.size and
// tmpfs.mode) into an OCI mount with Docker's options, for callers that
// resolve spec.Service.Mounts.
func TmpfsMount(m spec.Mount) (specs.Mount, error) {
	if m.Type != spec.MountTmpfs {
		return specs.Mount{}, fmt.Errorf("mount at %s is of type %q, not tmpfs", m.Target, m.Type)
	}
	if !path.IsAbs(m.Target) {
		return specs.Mount{}, fmt.Errorf("tmpfs target %q is not an absolute path", m.Target)
	}
	opts := []string{"nosuid", "nodev", "noexec"}
	if m.ReadOnly {
		opts = append(opts, "ro")
	}
	if m.TmpfsSize < 0 {
		return specs.Mount{}, fmt.Errorf("tmpfs at %s: negative size", m.Target)
	}
	if m.TmpfsSize > 0 {
		opts = append(opts, "size="+strconv.FormatInt(m.TmpfsSize, 10))
	}
	mode := m.TmpfsMode
	if mode == 0 {
		mode = 0o1777
	}
	if mode > 0o7777 {
		return specs.Mount{}, fmt.Errorf("tmpfs at %s: invalid mode %o", m.Target, mode)
	}
	opts = append(opts, fmt.Sprintf("mode=%o", mode))
	return specs.Mount{Destination: path.Clean(m.Target), Type: "tmpfs", Source: "tmpfs", Options: opts}, nil
}
