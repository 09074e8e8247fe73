package cgroups

import (
	"fmt"
	"io"
	"os"
)

// Detect reports the host's cgroup layout from /proc/self/mountinfo.
func Detect() (Version, error) {
	l, err := readLayout("")
	if err != nil {
		return 0, err
	}
	return l.Version, nil
}

// New returns the Manager for the cgroup at path, an OCI
// linux.cgroupsPath such as "/berth/ID" (absolute below each
// hierarchy's root), for the host's cgroup layout (v1, hybrid or unified
// v2), detected from /proc/self/mountinfo. It touches nothing; Create
// does.
func New(path string) (Manager, error) {
	return newWithPrefix("", path)
}

// newWithPrefix is New with every mountpoint prefixed by prefix.
func newWithPrefix(prefix, path string) (Manager, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	defer f.Close()
	return newFromMountinfo(f, prefix, path)
}

// newFromMountinfo builds the Manager from a mountinfo text; tests use
// it with a prefix to run the file-writing code on a fake tree.
func newFromMountinfo(mountinfo io.Reader, prefix, path string) (Manager, error) {
	clean, err := validatePath(path)
	if err != nil {
		return nil, err
	}
	l, err := parseMountinfo(mountinfo, prefix)
	if err != nil {
		return nil, err
	}
	if l.Version == V2 {
		return newV2(l, clean)
	}
	return newV1(l, clean)
}

func readLayout(prefix string) (*layout, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	defer f.Close()
	return parseMountinfo(f, prefix)
}
