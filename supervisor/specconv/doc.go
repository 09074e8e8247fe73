// Package specconv turns a compose service into an OCI runtime spec
// (github.com/opencontainers/runtime-spec/specs-go) with Docker's
// defaults: the 14 default capabilities (runtime.DefaultCapabilities), Docker's default seccomp profile
// resolved for the final capability set, its masked and read-only paths,
// default mounts (/proc, a tmpfs /dev, devpts, /dev/shm, mqueue, a
// read-only sysfs and cgroup), the default device cgroup rules, and new
// pid, ipc, uts, mount, cgroup and network namespaces. The default
// capabilities, masked and read-only paths and device rules are the
// runtime's (supervisor/runtime), so both layers agree on one set.
//
// ToOCI only computes; it touches nothing except reading a custom seccomp
// profile file, the host's device nodes (devices: and privileged) and
// /proc/sys/kernel/cap_last_cap. What comes from elsewhere (the image's
// config, the rootfs path, the network namespace netstack made, the cgroup
// path, and every mount of the service) arrives in Options. The service's
// storage (volumes:, tmpfs:, secrets, configs) is the volumes package's:
// volumes.Manager.Prepare turns it into mounts, which arrive in
// Options.Mounts; ToOCI does not read spec.Service.Tmpfs or Mounts itself.
//
// Contract with the runtime (supervisor/runtime), beyond the OCI fields:
//
//   - Process.User.Username and AnnotationUser hold the user: value
//     ("name", "uid", "name:group", "uid:gid") unless it is a numeric
//     "uid:gid"; the runtime resolves it
//     from the rootfs's /etc/passwd and /etc/group and fills Process.User
//     (for a bare "uid", the primary group from /etc/passwd, 0 when the uid
//     has no entry, like Docker). Process.User already holds the numeric
//     parts. AnnotationGroupAdd holds group_add names, comma-separated
//     (numeric ones are already in AdditionalGids).
//   - Domainname is set in the spec; the runtime calls setdomainname(2).
//   - HOME is not set here: like Docker, the runtime sets HOME from the
//     user's passwd entry (default "/") when the environment has none.
//   - runtime.AnnotationInit = "true" asks for a minimal reaper as pid 1 in front of
//     the command (init: true).
//   - AnnotationStopSignal holds the signal that stops the container
//     (stop_signal, else the image's StopSignal, else SIGTERM), as a name
//     like "SIGTERM" or "SIGRTMIN+3".
//   - Privileged lists every capability up to the host's cap_last_cap.
//   - Linux.Seccomp is nil when unconfined (seccomp=unconfined, privileged);
//     the runtime passes it to seccomp.Load as it is.
package specconv
