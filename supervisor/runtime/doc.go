// Package runtime is berth's own OCI container runtime: it takes an OCI
// runtime spec (github.com/opencontainers/runtime-spec/specs-go) and a root
// filesystem and runs the container with Linux namespaces, pivot_root,
// cgroups, capabilities, seccomp and rlimits. The supervisor calls it
// in-process; cmd/berth's `berth runtime ...` (an OCI runtime command line)
// drives it too.
//
// Lifecycle (runtime-spec states):
//
//	Create ──► created ──Start──► running ──(exit / Kill)──► stopped ──Delete──► (gone)
//	   │          │                                                ▲
//	   └─(error: rolled back)     └────────── Kill / Delete(force) ─┘
//
// Create re-executes the berth binary (from a sealed memfd copy, so the
// container can never overwrite the host binary) as the container's init
// inside new namespaces. The init builds the root filesystem, then blocks
// on an exec fifo in the state directory. Start opens the fifo, which
// releases the init; it drops privileges and execve()s the user command,
// which therefore IS pid 1 of the container (no extra process), unless the
// spec carries the annotation "berth.init"="true", in which case a small
// reaper stays pid 1, forwards signals and reaps zombies.
//
// Binaries that create containers must let the package's init() run
// before main: it is what turns the re-executed binary into the container
// init (importing the package is enough). Joining the namespaces of a
// running container (Exec) needs the cgo constructor in ./nsenter; a
// CGO_ENABLED=0 build can create containers but Exec reports
// ErrNotSupported.
//
// State lives in <root>/<id>/state.json, written atomically. It records
// the init pid together with its start time from /proc/<pid>/stat, so a
// reused pid is never mistaken for the container.
package runtime
