// Package seccomp compiles an OCI seccomp profile (specs.LinuxSeccomp) into
// a classic BPF program and installs it on the calling process, right
// before the container init execs the service's command.
//
// The compiler is pure Go (no cgo, no libseccomp), so berth stays a static
// binary. It covers what runc does with libseccomp for the profiles berth
// uses, Docker's default profile (github.com/moby/profiles/seccomp) above
// all:
//
//   - architectures: x86_64 (native), x86 and x32 when the profile lists
//     them; a syscall made through an architecture the profile does not
//     list gets SECCOMP_RET_KILL_PROCESS, as libseccomp's default
//     bad-architecture action kills;
//   - syscall names the tables do not know for an architecture are skipped,
//     like runc;
//   - argument comparisons: SCMP_CMP_NE, LT, LE, EQ, GE, GT and MASKED_EQ
//     (value = mask, valueTwo = expected), on all 64 bits for 64-bit
//     architectures and on the low 32 bits for x86;
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
//   - with an ERRNO default action, a syscall numbered above every syscall
//     the profile names returns ENOSYS instead, as runc does, so that libcs
//     fall back from calls newer than the profile.
//
// Load needs the calling thread to have no_new_privs set
// (prctl(PR_SET_NO_NEW_PRIVS)) or CAP_SYS_ADMIN in its user namespace.
// no_new_privs is a per-thread flag in Linux: set it on the same OS thread
// that calls Load (runtime.LockOSThread). Load installs the filter with
// SECCOMP_FILTER_FLAG_TSYNC, so every thread of the Go process gets it and
// the thread that later calls execve(2) is filtered whichever it is.
// The profile must allow what the caller does between Load and execve
// (futex, execve itself...), so Load should be the last step before exec.
package seccomp
