package seccomp

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func requirePrivileged(t testing.TB) {
	t.Helper()
	if os.Getenv("BERTH_PRIVILEGED") != "1" {
		if os.Getenv("CI") != "" {
			t.Fatal("privileged test: CI must set BERTH_PRIVILEGED=1")
		}
		t.Skip("privileged test: set BERTH_PRIVILEGED=1 and run as root")
	}
	if os.Geteuid() != 0 {
		t.Fatal("BERTH_PRIVILEGED=1 needs root")
	}
}

const childEnv = "BERTH_SECCOMP_TEST_CHILD"

// TestMain lets the test binary act as the child that installs a filter:
// a filter cannot be removed, so each scenario runs in its own process.
func TestMain(m *testing.M) {
	if sc := os.Getenv(childEnv); sc != "" {
		if err := child(sc); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child sets no_new_privs, loads a profile and reports what it sees as
// JSON on stdout: probe name -> errno name ("ok" for success).
func child(scenario string) error {
	runtime.LockOSThread() // no_new_privs is per thread
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return err
	}
	var cfg *specs.LinuxSeccomp
	switch scenario {
	case "default", "exec":
		var err error
		if cfg, err = resolveDefault(dockerCaps); err != nil {
			return err
		}
	case "custom":
		cfg = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EROFS))},
				{Names: []string{"getpriority"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 1, Value: 4242, Op: specs.OpEqualTo}}},
			},
		}
	case "unconfined":
		cfg = nil
	default:
		return fmt.Errorf("unknown scenario %q", scenario)
	}
	if err := Load(cfg); err != nil {
		return err
	}
	if scenario == "exec" {
		// What the container init does: exec straight after Load.
		return syscall.Exec("/bin/busybox", []string{"busybox", "grep", "^Seccomp", "/proc/self/status"}, nil)
	}
	res := map[string]string{}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err
	}
	for _, l := range strings.Split(string(status), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == "Seccomp" {
			res["status"] = strings.TrimSpace(v)
		}
	}
	probe := func(name string, nr uintptr, args ...uintptr) {
		var a [6]uintptr
		copy(a[:], args)
		r, _, e := unix.Syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
		if e != 0 {
			res[name] = unix.ErrnoName(e)
			return
		}
		res[name] = "ok"
		if name == "socket_inet" || name == "socket_vsock" {
			unix.Close(int(r))
		}
	}
	probe("unshare_user", unix.SYS_UNSHARE, unix.CLONE_NEWUSER)
	probe("keyctl", unix.SYS_KEYCTL, 0 /* KEYCTL_GET_KEYRING_ID */, ^uintptr(0) /* thread keyring */, 0)
	probe("add_key", unix.SYS_ADD_KEY, 0, 0, 0, 0, 0)
	probe("personality_query", unix.SYS_PERSONALITY, 0xffffffff)
	probe("personality_linux", unix.SYS_PERSONALITY, 0)
	probe("personality_norandom", unix.SYS_PERSONALITY, 0x0040000)
	// CLONE_NEWUSER|CLONE_FS is refused by the kernel with EINVAL, so no
	// process is made even when the filter lets it through.
	probe("clone_newuser", unix.SYS_CLONE, unix.CLONE_NEWUSER|unix.CLONE_FS)
	// CLONE_THREAD without CLONE_SIGHAND: EINVAL from the kernel, i.e.
	// the filter allowed it.
	probe("clone_thread_bad", unix.SYS_CLONE, unix.CLONE_THREAD)
	probe("clone3", unix.SYS_CLONE3, 0, 0)
	probe("socket_inet", unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_DGRAM, 0)
	probe("socket_vsock", unix.SYS_SOCKET, unix.AF_VSOCK, unix.SOCK_STREAM, 0)
	probe("getpid", unix.SYS_GETPID)
	probe("getpriority_4242", unix.SYS_GETPRIORITY, unix.PRIO_PROCESS, 4242)
	probe("getpriority_self", unix.SYS_GETPRIORITY, unix.PRIO_PROCESS, 0)
	dir, err := os.MkdirTemp("", "seccomp-child-")
	if err != nil {
		var en syscall.Errno
		if errors.As(err, &en) {
			res["mkdir"] = unix.ErrnoName(en)
		} else {
			res["mkdir"] = err.Error()
		}
	} else {
		res["mkdir"] = "ok"
		os.Remove(dir)
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

func runChild(t *testing.T, scenario string) (map[string]string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+scenario)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child %s: %v\nstderr: %s", scenario, err, stderr.String())
	}
	if scenario == "exec" {
		return nil, string(out)
	}
	res := map[string]string{}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("child %s output %q: %v", scenario, out, err)
	}
	return res, ""
}

func check(t *testing.T, res map[string]string, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if got := res[k]; got != w {
			t.Errorf("%s: got %q, want %q", k, got, w)
		}
	}
}

func TestLoadDefaultProfile(t *testing.T) {
	requirePrivileged(t)
	res, _ := runChild(t, "default")
	check(t, res, map[string]string{
		"status":               "2",
		"unshare_user":         "EPERM",
		"keyctl":               "EPERM",
		"add_key":              "EPERM",
		"personality_query":    "ok",
		"personality_linux":    "ok",
		"personality_norandom": "EPERM",
		"clone_newuser":        "EPERM",
		"clone_thread_bad":     "EINVAL",
		"clone3":               "ENOSYS",
		"socket_inet":          "ok",
		"socket_vsock":         "EPERM",
		"getpid":               "ok",
		"mkdir":                "ok",
	})
}

func TestLoadCustomProfile(t *testing.T) {
	requirePrivileged(t)
	res, _ := runChild(t, "custom")
	check(t, res, map[string]string{
		"status":               "2",
		"mkdir":                "EROFS",
		"getpriority_4242":     "EPERM",
		"getpriority_self":     "ok",
		"keyctl":               "ENOKEY", // the kernel's answer: no thread keyring
		"personality_norandom": "ok",
	})
}

func TestLoadUnconfined(t *testing.T) {
	requirePrivileged(t)
	res, _ := runChild(t, "unconfined")
	check(t, res, map[string]string{
		"status":        "0",
		"mkdir":         "ok",
		"clone_newuser": "EINVAL", // the kernel's answer, no filter in the way
	})
}

func TestLoadThenExec(t *testing.T) {
	requirePrivileged(t)
	_, out := runChild(t, "exec")
	if !strings.Contains(out, "Seccomp:\t2") || !strings.Contains(out, "Seccomp_filters:\t1") {
		t.Errorf("exec'd process status: %q, want Seccomp 2 with one filter", out)
	}
}
