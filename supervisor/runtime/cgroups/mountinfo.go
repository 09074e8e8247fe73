package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
)

// ErrNoCgroups is returned when /proc/self/mountinfo shows no usable cgroup
// mount.
var ErrNoCgroups = errors.New("no cgroup filesystem mounted")

// hierarchy is one mounted cgroup hierarchy: a v1 mount with its
// controllers, or the unified cgroup2 mount.
type hierarchy struct {
	// Mountpoint is where the hierarchy is mounted.
	Mountpoint string
	// Root is the path inside the hierarchy that is visible at
	// Mountpoint (field 4 of mountinfo; "/" unless bind-mounted or
	// mounted inside a cgroup namespace).
	Root string
	// Controllers are the v1 controllers of this mount (empty for
	// cgroup2 and for named hierarchies such as name=systemd).
	Controllers []string
	// Unified is true for a cgroup2 mount.
	Unified bool
}

// dir returns the directory of the absolute in-hierarchy path p on this
// mount, or an error when p is not visible through the mount.
func (h hierarchy) dir(p string) (string, error) {
	p = filepath.Clean("/" + p)
	root := filepath.Clean(h.Root)
	if root == "/" {
		return filepath.Join(h.Mountpoint, p), nil
	}
	if p == root {
		return h.Mountpoint, nil
	}
	if !strings.HasPrefix(p, root+"/") {
		return "", fmt.Errorf("cgroup path %q is outside the hierarchy root %q mounted at %s", p, root, h.Mountpoint)
	}
	return filepath.Join(h.Mountpoint, strings.TrimPrefix(p, root)), nil
}

// layout is the host's cgroup layout as seen in mountinfo.
type layout struct {
	Version Version
	// V1 maps each v1 controller to its hierarchy (several controllers
	// may share one mount, e.g. "cpu,cpuacct"). Empty on pure v2.
	V1 map[string]hierarchy
	// Unified is the cgroup2 mount: the only one on pure v2, the
	// controller-less one (if any) on hybrid hosts.
	Unified *hierarchy
	// Mounts are the cgroup filesystems mounted at or below
	// /sys/fs/cgroup, named hierarchies (name=systemd) included.
	Mounts []Mount
}

// Mount is a cgroup filesystem mounted on the host, with the options
// that mount its hierarchy again (a container's /sys/fs/cgroup).
type Mount struct {
	Mountpoint string
	FSType     string // cgroup or cgroup2
	Options    string // the hierarchy's: controllers, name=...
}

// parseMountinfo reads mountinfo (proc(5)) and returns the cgroup layout.
// prefix, when not empty, is prepended to every mountpoint, so tests can
// point the package at a fake tree.
//
// The host is pure v2 when a cgroup2 filesystem is mounted and no v1
// hierarchy carries a controller; otherwise it is v1 (hybrid included):
// berth then uses the v1 hierarchies for every controller and leaves the
// cgroup2 mount (at /sys/fs/cgroup/unified on hybrid hosts) alone.
func parseMountinfo(r io.Reader, prefix string) (*layout, error) {
	l := &layout{V1: map[string]hierarchy{}}
	var unified []hierarchy
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		pf := strings.Fields(pre)
		qf := strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 {
			continue
		}
		fstype := qf[0]
		if fstype != "cgroup" && fstype != "cgroup2" {
			continue
		}
		h := hierarchy{
			Root:       unescapeMount(pf[3]),
			Mountpoint: filepath.Join(prefix, unescapeMount(pf[4])),
		}
		if mp := unescapeMount(pf[4]); mp == "/sys/fs/cgroup" || strings.HasPrefix(mp, "/sys/fs/cgroup/") {
			l.Mounts = append(l.Mounts, Mount{Mountpoint: h.Mountpoint, FSType: fstype, Options: hierarchyOptions(fstype, qf[2])})
		}
		if fstype == "cgroup2" {
			h.Unified = true
			unified = append(unified, h)
			continue
		}
		for _, opt := range strings.Split(qf[2], ",") {
			if knownV1Controller[opt] {
				h.Controllers = append(h.Controllers, opt)
			}
		}
		for _, c := range h.Controllers {
			if _, dup := l.V1[c]; !dup {
				l.V1[c] = h
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading mountinfo: %w", err)
	}
	if len(unified) > 0 {
		// Prefer the canonical mountpoint when cgroup2 is mounted twice.
		sort.SliceStable(unified, func(i, j int) bool {
			return len(unified[i].Mountpoint) < len(unified[j].Mountpoint)
		})
		u := unified[0]
		l.Unified = &u
	}
	switch {
	case len(l.V1) > 0:
		l.Version = V1
	case l.Unified != nil:
		l.Version = V2
	default:
		return nil, ErrNoCgroups
	}
	return l, nil
}

// hierarchyOptions keeps of a cgroup mount's super options those that
// pick its hierarchy (cgroup2 has one, and takes none).
func hierarchyOptions(fstype, super string) string {
	if fstype != "cgroup" {
		return ""
	}
	var keep []string
	for _, o := range strings.Split(super, ",") {
		if o == "rw" || o == "ro" || strings.HasPrefix(o, "release_agent=") || o == "clone_children" {
			continue
		}
		keep = append(keep, o)
	}
	return strings.Join(keep, ",")
}

// knownV1Controller lists the v1 controllers; other super options of a
// cgroup mount (rw, name=..., clone_children, ...) are not controllers.
var knownV1Controller = map[string]bool{
	"cpu": true, "cpuacct": true, "cpuset": true, "memory": true,
	"devices": true, "freezer": true, "blkio": true, "pids": true,
	"hugetlb": true, "net_cls": true, "net_prio": true, "perf_event": true,
	"rdma": true, "misc": true,
}

// unescapeMount undoes the octal escapes (\040 for space and so on) that
// the kernel uses in mountinfo paths.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
