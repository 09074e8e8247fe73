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
//	   │          │                 │  ▲                          ▲
//	   │          │           Pause │  │ Resume                   │
//	   │          │                 ▼  │                          │
//	   │          │                paused ── Delete(force) ───────┤
//	   └─(error: rolled back)     └────────── Kill / Delete(force) ┘
//
// OCI hooks run where the runtime spec says: prestart and createRuntime
// in the runtime's namespaces while the init waits after its mounts,
// createContainer in the container's namespaces before pivot_root,
// startContainer in the container after Start, poststart after Start and
// poststop after Delete.
//
// Create executes the container's init inside new namespaces, from a
// sealed memfd copy (so the container can never overwrite a host binary):
// for the common container the C init embedded by `make build` (./cinit,
// see cinit_linux.go), else the small pure-Go init embedded too
// (./initbin), or else the berth binary itself. The init builds the root
// filesystem, then blocks
// on an exec fifo in the state directory. Start opens the fifo, which
// releases the init; it drops privileges and execve()s the user command,
// which therefore IS pid 1 of the container (no extra process), unless the
// spec carries the annotation "berth.init"="true", in which case a small
// reaper stays pid 1, forwards signals and reaps zombies.
//
// The package's init() turns the re-executed binary into the container
// init (when the environment variable _BERTH_INIT is set), so importing
// the package is all a binary (berth, or a test binary) needs. Exec
// joins the namespaces of a running container through the cgo
// constructor in ./nsenter, which must run before the Go runtime starts
// threads; a CGO_ENABLED=0 build can create containers but Exec reports
// ErrNotSupported. Build berth statically with
// CGO_ENABLED=1 go build -tags netgo,osusergo -ldflags '-extldflags=-static'.
//
// Ownership: the Container from Create is the init's parent; its Wait
// reaps the init and records the exit code (and OOMKilled, from the
// cgroup) in the state file. A Container from Load (another process, the
// CLI) can do everything else; its Wait waits through a pidfd and reports
// the recorded exit, or ErrNotParent. A Process from Exec is a child of
// the caller (the nsenter helper forks it with CLONE_PARENT).
//
// stdio: the init gets the caller's files as they are (a pipe stays open
// as long as the container runs), or a pty whose master goes to the
// caller (Container.Console / Process.Console) or to a console socket.
//
// Security: seccomp (package ./seccomp), capabilities of all five sets,
// no_new_privs, rlimits and the identity are applied on the one locked
// thread that calls execve. Every mount target is resolved inside the
// rootfs (openat2 RESOLVE_IN_ROOT after a securejoin-style walk that
// creates missing directories) and mounted through /proc/self/fd/N of an
// O_PATH fd; bind sources are host paths chosen by the caller, opened
// once with O_PATH and mounted from that fd. /proc and /sys must not be
// symlinks in the image. Every fd above stdio (and the caller's extra
// files) is close-on-exec before execve, and a cwd outside the root is
// refused.
//
// State lives in <root>/<id>/state.json, written atomically. It records
// the init pid together with its start time from /proc/<pid>/stat, so a
// reused pid is never mistaken for the container.
package runtime
