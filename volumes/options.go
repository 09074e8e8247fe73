package volumes

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// driverOpts is a local-driver volume's driver_opts, parsed.
type driverOpts struct {
	Type   string   // filesystem type; "" or "none" for bind
	Device string   // host path (bind), device or "tmpfs"
	Opts   []string // o: split on commas
}

// mounts reports whether the volume is a mount of something else (bind,
// tmpfs, a device) rather than a plain directory.
func (d driverOpts) mounts() bool { return d.Type != "" || d.Device != "" || len(d.Opts) > 0 }

func (d driverOpts) isBind() bool {
	return slices.Contains(d.Opts, "bind") || slices.Contains(d.Opts, "rbind")
}

// parseDriverOpts validates driver_opts of the local driver: type, device
// and o, in the bind form (o: bind, device: an absolute host directory) or
// a filesystem form (type: tmpfs, o: size=...; or a device with a type).
func parseDriverOpts(o map[string]string) (driverOpts, error) {
	var d driverOpts
	for _, k := range sortedKeys(o) {
		switch k {
		case "type":
			d.Type = o[k]
		case "device":
			d.Device = o[k]
		case "o":
			for _, s := range strings.Split(o[k], ",") {
				if s = strings.TrimSpace(s); s != "" {
					d.Opts = append(d.Opts, s)
				}
			}
		default:
			return d, fmt.Errorf("%w: driver_opts: unknown option %q (want type, device, o)", ErrInvalid, k)
		}
	}
	if !d.mounts() {
		return d, nil
	}
	if d.Type == "none" {
		d.Type = ""
	}
	switch {
	case d.isBind():
		if d.Type != "" {
			return d, fmt.Errorf("%w: driver_opts: o: bind with type %q (want none)", ErrInvalid, d.Type)
		}
		if !filepath.IsAbs(d.Device) {
			return d, fmt.Errorf("%w: driver_opts: bind device %q must be an absolute host path", ErrInvalid, d.Device)
		}
	case d.Type == "":
		return d, fmt.Errorf("%w: driver_opts: type is required unless o has bind", ErrInvalid)
	case d.Type == "tmpfs":
		if d.Device == "" {
			d.Device = "tmpfs"
		}
	case d.Device == "":
		return d, fmt.Errorf("%w: driver_opts: type %q needs a device", ErrInvalid, d.Type)
	}
	for _, s := range d.Opts {
		if s == "remount" || s == "move" || strings.ContainsAny(s, "\x00") {
			return d, fmt.Errorf("%w: driver_opts: option %q is not allowed", ErrInvalid, s)
		}
	}
	return d, nil
}

// ExpandHome expands a leading "~" or "~/" in p with the home directory.
func ExpandHome(p string) (string, error) {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("expanding %q: %w", p, err)
	}
	return filepath.Join(home, strings.TrimPrefix(p, "~")), nil
}

// ResolveBindSource returns the absolute host path of a bind mount source:
// "~" is expanded, a relative path is taken from projectDir, and the path
// is cleaned. When the source does not exist it is created as a directory
// if create is set (create_host_path, the short syntax's default), else it
// is an error that names the path.
func ResolveBindSource(src, projectDir string, create bool) (string, error) {
	if src == "" {
		return "", fmt.Errorf("%w: bind mount without a source", ErrInvalid)
	}
	if strings.ContainsRune(src, 0) {
		return "", fmt.Errorf("%w: bind source %q contains a NUL byte", ErrInvalid, src)
	}
	p, err := ExpandHome(src)
	if err != nil {
		return "", err
	}
	if !filepath.IsAbs(p) {
		if !filepath.IsAbs(projectDir) {
			return "", fmt.Errorf("%w: relative bind source %q needs an absolute project directory (have %q)", ErrInvalid, src, projectDir)
		}
		p = filepath.Join(projectDir, p)
	}
	p = filepath.Clean(p)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("bind source %q: %w", src, err)
	}
	if !create {
		return "", fmt.Errorf("%w: bind source path %q does not exist (set bind.create_host_path: true to create it)", ErrInvalid, p)
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return "", fmt.Errorf("creating bind source: %w", err)
	}
	return p, nil
}

// CleanTarget validates a mount target in the container: absolute, no NUL,
// not "/"; returned cleaned.
func CleanTarget(t string) (string, error) {
	if t == "" || !path.IsAbs(t) || strings.ContainsRune(t, 0) {
		return "", fmt.Errorf("%w: mount target %q must be an absolute path", ErrInvalid, t)
	}
	t = path.Clean(t)
	if t == "/" {
		return "", fmt.Errorf("%w: cannot mount over the container's root /", ErrInvalid)
	}
	return t, nil
}

var propagations = []string{"private", "rprivate", "shared", "rshared", "slave", "rslave"}

// BindOptions returns the OCI mount options of a bind mount (and of a
// volume, which is a bind of its _data): recursive, read-only or
// read-write, and the propagation ("" means rprivate, Docker's default).
func BindOptions(readOnly bool, propagation string) ([]string, error) {
	if propagation == "" {
		propagation = "rprivate"
	}
	if !slices.Contains(propagations, propagation) {
		return nil, fmt.Errorf("%w: bind propagation %q (want one of %s)", ErrInvalid, propagation, strings.Join(propagations, ", "))
	}
	rw := "rw"
	if readOnly {
		rw = "ro"
	}
	return []string{"rbind", rw, propagation}, nil
}

// tmpfsSizeRE is what the kernel's tmpfs accepts for size=: a number with
// an optional k, m, g, t, p, e suffix, or a percentage of RAM.
var tmpfsSizeRE = regexp.MustCompile(`^[0-9]+([kKmMgGtTpPeE%])?$`)

// TmpfsMount returns the OCI mount of a tmpfs at target with a size limit
// in bytes (0 = the kernel default, half of RAM) and a mode (0 = 01777).
// The kernel enforces both: writes past size fail with ENOSPC.
func TmpfsMount(target string, size int64, mode uint32, readOnly bool) (specs.Mount, error) {
	t, err := CleanTarget(target)
	if err != nil {
		return specs.Mount{}, err
	}
	if size < 0 {
		return specs.Mount{}, fmt.Errorf("%w: tmpfs %s: negative size %d", ErrInvalid, t, size)
	}
	if mode == 0 {
		mode = 0o1777
	}
	if mode&^0o7777 != 0 {
		return specs.Mount{}, fmt.Errorf("%w: tmpfs %s: mode %o", ErrInvalid, t, mode)
	}
	opts := []string{"nosuid", "nodev"}
	if readOnly {
		opts = append(opts, "ro")
	} else {
		opts = append(opts, "rw")
	}
	if size > 0 {
		opts = append(opts, "size="+strconv.FormatInt(size, 10))
	}
	opts = append(opts, fmt.Sprintf("mode=%o", mode))
	return specs.Mount{Destination: t, Type: "tmpfs", Source: "tmpfs", Options: opts}, nil
}

var (
	tmpfsModeRE = regexp.MustCompile(`^[0-7]{1,4}$`)
	tmpfsNumRE  = regexp.MustCompile(`^[0-9]+[kKmMgG]?$`)
)

// tmpfsFlags are the tmpfs: short-syntax flags berth passes on.
var tmpfsFlags = []string{"ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev",
	"sync", "async", "dirsync", "atime", "noatime", "diratime", "nodiratime", "relatime",
	"norelatime", "strictatime", "nostrictatime"}

// ParseTmpfs turns a tmpfs: entry ("/run" or "/run:rw,size=64m,mode=1770")
// into an OCI mount. Like Docker's --tmpfs, noexec, nosuid and nodev are
// on unless the entry says otherwise.
func ParseTmpfs(entry string) (specs.Mount, error) {
	target, optStr, _ := strings.Cut(entry, ":")
	t, err := CleanTarget(target)
	if err != nil {
		return specs.Mount{}, fmt.Errorf("tmpfs %q: %w", entry, err)
	}
	given := map[string]bool{}
	var opts []string
	for _, o := range strings.Split(optStr, ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		k, v, hasV := strings.Cut(o, "=")
		switch {
		case !hasV && slices.Contains(tmpfsFlags, k):
		case k == "size" && tmpfsSizeRE.MatchString(v):
		case k == "mode" && tmpfsModeRE.MatchString(v):
		case (k == "uid" || k == "gid" || k == "nr_inodes" || k == "nr_blocks") && tmpfsNumRE.MatchString(v):
		default:
			return specs.Mount{}, fmt.Errorf("%w: tmpfs %q: option %q", ErrInvalid, entry, o)
		}
		given[strings.TrimPrefix(k, "no")] = true
		opts = append(opts, o)
	}
	var def []string
	for _, d := range []string{"noexec", "nosuid", "nodev"} {
		if !given[strings.TrimPrefix(d, "no")] {
			def = append(def, d)
		}
	}
	return specs.Mount{Destination: t, Type: "tmpfs", Source: "tmpfs", Options: append(def, opts...)}, nil
}

// VolumesFrom is a parsed volumes_from entry.
type VolumesFrom struct {
	Service   string // set for "service[:ro|:rw]"
	Container string // set for "container:name[:ro|:rw]"
	ReadOnly  bool
}

// ParseVolumesFrom parses "service", "service:ro", "container:name" and
// "container:name:ro" (":rw" is accepted too).
func ParseVolumesFrom(entry string) (VolumesFrom, error) {
	var vf VolumesFrom
	rest := entry
	isContainer := false
	if after, ok := strings.CutPrefix(rest, "container:"); ok {
		isContainer, rest = true, after
	}
	name, mode, hasMode := strings.Cut(rest, ":")
	if hasMode {
		switch mode {
		case "ro":
			vf.ReadOnly = true
		case "rw":
		default:
			return vf, fmt.Errorf("%w: volumes_from %q: mode %q (want ro or rw)", ErrInvalid, entry, mode)
		}
	}
	if name == "" {
		return vf, fmt.Errorf("%w: volumes_from %q: empty name", ErrInvalid, entry)
	}
	if isContainer {
		vf.Container = name
	} else {
		vf.Service = name
	}
	return vf, nil
}

// InheritMounts returns the mounts a container gets from a volumes_from
// entry, given the mounts Prepare made for the source container: its
// volumes and bind mounts, read-only when the entry says :ro (a mount that
// is read-only in the source stays read-only). tmpfs mounts and the
// source's secrets and configs are not inherited, as in Docker.
func (m *Manager) InheritMounts(entry string, src []specs.Mount) ([]specs.Mount, error) {
	vf, err := ParseVolumesFrom(entry)
	if err != nil {
		return nil, err
	}
	var out []specs.Mount
	for _, mt := range src {
		if mt.Type != "bind" || m.isFilesPath(mt.Source) {
			continue
		}
		c := mt
		c.Options = slices.Clone(mt.Options)
		if vf.ReadOnly {
			for i, o := range c.Options {
				if o == "rw" {
					c.Options[i] = "ro"
				}
			}
			if !slices.Contains(c.Options, "ro") {
				c.Options = append(c.Options, "ro")
			}
		}
		out = append(out, c)
	}
	return out, nil
}

func (m *Manager) isFilesPath(p string) bool {
	return p == m.filesDir || strings.HasPrefix(p, m.filesDir+string(filepath.Separator))
}

// validateSubpath checks a volume subpath: relative, and with no ".."
// element, so that it names something inside the volume.
func validateSubpath(sp string) (string, error) {
	if strings.ContainsRune(sp, 0) || path.IsAbs(sp) {
		return "", fmt.Errorf("%w: subpath %q must be a relative path inside the volume", ErrInvalid, sp)
	}
	for _, e := range strings.Split(sp, "/") {
		if e == ".." {
			return "", fmt.Errorf("%w: subpath %q escapes the volume", ErrInvalid, sp)
		}
	}
	c := path.Clean(sp)
	if c == "." {
		return "", nil
	}
	return c, nil
}
