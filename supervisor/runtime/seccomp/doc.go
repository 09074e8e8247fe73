// Package seccomp compiles an OCI seccomp profile (specs.LinuxSeccomp) into
// a classic BPF program and installs it on the calling process, right
// before the container init execs the service's command.
//
// The compiler is pure Go (no cgo, no libseccomp), so berth stays a static
// binary. It covers what runc does with libseccomp for the profiles berth
// uses, Docker's default profile (github.com/moby/profiles/seccomp) above
// all:
//
//   - architectures: the host's own (x86_64, x86, aarch64 or arm) plus,
//     on x86_64, x86 and x32 and, on aarch64, arm when the profile lists
//     them; a syscall made through an architecture the profile does not
//     list gets SECCOMP_RET_KILL_PROCESS, as libseccomp's default
//     bad-architecture action kills;
//   - syscall names the tables do not know for an architecture are skipped,
//     like runc;
//   - argument comparisons: SCMP_CMP_NE, LT, LE, EQ, GE, GT and MASKED_EQ
//     (value = mask, valueTwo = expected), on all 64 bits for 64-bit
//     architectures and on the low 32 bits for x86 and arm;
//   - all comparisons of one rule must hold (AND), except that a rule naming
//     the same argument index twice is split into one rule per comparison
//     (OR), which is what runc does;
//   - actions SCMP_ACT_KILL (= KILL_THREAD), KILL_PROCESS, KILL_THREAD,
//     TRAP, ERRNO (errnoRet, default EPERM), TRACE (errnoRet as the
//     tracer's message, default EPERM), LOG and ALLOW; SCMP_ACT_NOTIFY is
//     refused (berth runs no seccomp agent);
//   - when several rules match one call, the most restrictive action wins
//     (the kernel's order: KILL_PROCESS, KILL_THREAD, TRAP, ERRNO, TRACE,
//     LOG, ALLOW);
//   - the syscall number is dispatched by a binary search (about nine
//     comparisons for Docker's profile), and the kernel's action cache
//     skips the filter altogether for calls that are always allowed;
//   - with an ERRNO default action, a syscall numbered above every syscall
//     the profile names returns ENOSYS instead, as runc does, so that libcs
//     fall back from calls newer than the profile.
//
// Load needs the calling thread to have no_new_privs set
// (prctl(PR_SET_NO_NEW_PRIVS)) or CAP_SYS_ADMIN in its user namespace;
// otherwise it fails with EACCES. Both are per-thread in Linux, so lock the
// goroutine to its thread (runtime.LockOSThread) across setting them and
// Load. The order in the container init follows runc:
//
//   - process.noNewPrivileges true: set no_new_privs, drop capabilities and
//     switch user, then Load as the very last step before execve(2);
//   - process.noNewPrivileges false (Docker's default): Load while the
//     thread still holds CAP_SYS_ADMIN, then drop capabilities, switch
//     user and execve. The filter then also judges those calls (capset,
//     prctl, setgroups, setresuid/setresgid, execve): Docker's default
//     profile allows them; a custom profile must too.
//
// Load installs the filter with SECCOMP_FILTER_FLAG_TSYNC, so every thread
// of the Go process gets it and whichever thread later calls execve is
// filtered. The profile must allow what the Go runtime does until then
// (futex, mmap, rt_sigreturn, ...), which any profile that lets ordinary
// programs run does. Compile is pure and can run before clone(2), in the
// parent; Filter.Install is then all the init has to do.
//
// A nil profile means unconfined: Load installs nothing.
package seccomp
