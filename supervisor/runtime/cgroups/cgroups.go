// Package cgroups manages the cgroups of berth's containers on cgroup v1,
// cgroup v2 and hybrid hosts.
//
// berth only ever creates, changes and removes cgroups it made itself:
// every path it touches lies below a parent named by the caller (by
// default "berth"), and Destroy removes exactly the directories that
// Create made, intermediate ones included, in every hierarchy.
package cgroups

import (
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Manager controls one container's cgroup.
//
// Lifecycle:
//
//	New ──► Create ──► Apply(pid) ──► Set ... Stats ... Freeze/Thaw ──► Destroy
//
// Create is idempotent. Destroy is idempotent and removes every directory
// Create made, in every hierarchy, after killing any process still inside.
type Manager interface {
	// Create makes the cgroup directories (and any missing parents,
	// remembering which it made) and applies r, before any process joins.
	Create(r *specs.LinuxResources) error
	// Apply moves pid into the cgroup in every hierarchy.
	Apply(pid int) error
	// Set changes the resources of an existing cgroup.
	Set(r *specs.LinuxResources) error
	// Stats reads cpu, memory, pids and io usage.
	Stats() (*Stats, error)
	// OOMKilled reports whether the kernel's OOM killer killed a process
	// of this cgroup since Create.
	OOMKilled() (bool, error)
	// Procs lists the pids in the cgroup.
	Procs() ([]int, error)
	// Freeze and Thaw pause and resume every process in the cgroup.
	Freeze() error
	Thaw() error
	// Destroy kills what is left inside and removes the directories.
	Destroy() error
	// Paths maps controller (or "" for the unified v2 path) to the
	// absolute cgroup directory, for state files and for joining (exec).
	Paths() map[string]string
}

// CloneTarget is a Manager whose cgroup a new process can be born in:
// cgroup v2, with clone3's CLONE_INTO_CGROUP and a descriptor of the
// directory (OpenDir). Nothing migrates, so none of the locks that
// moving a process takes (see JoinThread) is taken at all.
type CloneTarget interface {
	OpenDir() (*os.File, error)
}

// Stats is a point-in-time usage sample.
type Stats struct {
	CPUUsageNanos  uint64 `json:"cpu_usage_ns"`
	CPUUserNanos   uint64 `json:"cpu_user_ns"`
	CPUSystemNanos uint64 `json:"cpu_system_ns"`
	CPUThrottled   uint64 `json:"cpu_throttled_periods"`
	MemoryUsage    uint64 `json:"memory_usage"`
	MemoryLimit    uint64 `json:"memory_limit"`
	MemoryMaxUsage uint64 `json:"memory_max_usage,omitempty"`
	MemoryCache    uint64 `json:"memory_cache"`
	Pids           uint64 `json:"pids"`
	PidsLimit      uint64 `json:"pids_limit,omitempty"`
	IOReadBytes    uint64 `json:"io_read_bytes"`
	IOWriteBytes   uint64 `json:"io_write_bytes"`
	OOMKills       uint64 `json:"oom_kills"`
}

// New returns the Manager for the cgroup at path, an OCI
// linux.cgroupsPath ("/berth/ID": absolute below each hierarchy's root),
// for the host's cgroup layout (v1, hybrid or unified v2), detected from
// /proc/self/mountinfo. It touches nothing; Create does.
//
// It is implemented per layout in this package; see v1.go and v2.go.

// Version reports the host's cgroup layout.
type Version int

const (
	V1 Version = 1 // v1 hierarchies (hybrid hosts included: the v2 mount holds no controllers berth uses)
	V2 Version = 2 // unified hierarchy only
)

// (func New(path string) (Manager, error) and func Detect() (Version, error)
// are provided by the drivers.)
