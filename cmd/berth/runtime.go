package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/supervisor/runtime"
)

func init() { register(newRuntimeCmd) }

// newRuntimeCmd is `berth runtime ...`: an OCI runtime command line with
// runc's verbs and flags, over supervisor/runtime. State lives in
// <root>/runtime.
func newRuntimeCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runtime",
		Short: "OCI runtime command line (create, start, state, kill, delete, run, list, exec, pause, resume, update)",
	}
	rt := func() (*runtime.Runtime, error) { return runtime.New(filepath.Join(g.Root, "runtime")) }
	load := func(id string) (*runtime.Container, error) {
		r, err := rt()
		if err != nil {
			return nil, err
		}
		return r.Load(id)
	}

	var bundle, pidFile, consoleSocket string
	addCreateFlags := func(c *cobra.Command) {
		c.Flags().StringVarP(&bundle, "bundle", "b", ".", "path to the OCI bundle")
		c.Flags().StringVar(&pidFile, "pid-file", "", "file to write the container's init pid to")
		c.Flags().StringVar(&consoleSocket, "console-socket", "", "unix socket that receives the pty master (process.terminal)")
	}
	create := func(ctx context.Context, id string) (*runtime.Container, error) {
		r, err := rt()
		if err != nil {
			return nil, err
		}
		spec, err := runtime.LoadSpec(bundle)
		if err != nil {
			return nil, err
		}
		if spec.Process != nil && spec.Process.Terminal && consoleSocket == "" && !isRun {
			return nil, errors.New("process.terminal needs --console-socket")
		}
		return r.Create(ctx, id, runtime.CreateOpts{
			Bundle: bundle, Spec: spec, PidFile: pidFile, ConsoleSocket: consoleSocket,
			IO: runtime.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr},
		})
	}

	createCmd := &cobra.Command{
		Use:   "create [flags] ID",
		Short: "create a container; its init waits for start",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			_, err := create(c.Context(), args[0])
			return err
		},
	}
	addCreateFlags(createCmd)

	startCmd := &cobra.Command{
		Use: "start ID", Short: "start a created container", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ct, err := load(args[0])
			if err != nil {
				return err
			}
			return ct.Start()
		},
	}

	stateCmd := &cobra.Command{
		Use: "state ID", Short: "print the runtime-spec state of a container as JSON", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ct, err := load(args[0])
			if err != nil {
				return err
			}
			st, err := ct.State()
			if err != nil {
				return err
			}
			return printJSON(c.OutOrStdout(), st.State)
		},
	}

	var killAll bool
	killCmd := &cobra.Command{
		Use: "kill ID [SIGNAL]", Short: "send a signal (default SIGTERM) to the container's init", Args: cobra.RangeArgs(1, 2),
		RunE: func(c *cobra.Command, args []string) error {
			sig := unix.SIGTERM
			if len(args) == 2 {
				s, err := parseSignal(args[1])
				if err != nil {
					return err
				}
				sig = s
			}
			ct, err := load(args[0])
			if err != nil {
				return err
			}
			return ct.Kill(sig)
		},
	}
	killCmd.Flags().BoolVarP(&killAll, "all", "a", false, "accepted for runc compatibility (the init is pid 1: killing it ends the container)")

	var force bool
	deleteCmd := &cobra.Command{
		Use: "delete [--force] ID", Short: "delete a stopped container (--force kills a running one)", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ct, err := load(args[0])
			if err != nil {
				if force && errors.Is(err, runtime.ErrNotExist) {
					return nil
				}
				return err
			}
			return ct.Delete(c.Context(), force)
		},
	}
	deleteCmd.Flags().BoolVarP(&force, "force", "f", false, "kill the container first if it runs")

	var detach bool
	runCmd := &cobra.Command{
		Use: "run [flags] ID", Short: "create and start a container, wait for it and delete it", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			isRun = !detach
			ct, err := create(c.Context(), args[0])
			if err != nil {
				return err
			}
			if err := ct.Start(); err != nil {
				_ = ct.Delete(context.Background(), true)
				return err
			}
			if detach {
				return nil
			}
			code := waitForeground(c.Context(), ct.Console(), func(s syscall.Signal) { _ = ct.Kill(s) }, func(ctx context.Context) (runtime.ExitStatus, error) { return ct.Wait(ctx) })
			if err := ct.Delete(context.Background(), true); err != nil {
				return err
			}
			if code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	addCreateFlags(runCmd)
	runCmd.Flags().BoolVarP(&detach, "detach", "d", false, "return after start")

	var listFormat string
	listCmd := &cobra.Command{
		Use: "list", Aliases: []string{"ls"}, Short: "list containers", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			r, err := rt()
			if err != nil {
				return err
			}
			list, err := r.List()
			if err != nil {
				return err
			}
			if listFormat == "json" {
				out := make([]specs.State, 0, len(list))
				for _, s := range list {
					out = append(out, s.State)
				}
				return printJSON(c.OutOrStdout(), out)
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tPID\tSTATUS\tBUNDLE\tCREATED")
			for _, s := range list {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	listCmd.Flags().StringVarP(&listFormat, "format", "f", "table", "table or json")

	var (
		tty                              bool
		cwd, user, processFile, xPidFile string
		envs                             []string
		xConsole                         string
		xDetach, noNewPrivs              bool
		addCaps                          []string
		addGids                          []uint
	)
	execCmd := &cobra.Command{
		Use: "exec [flags] ID [COMMAND [ARG...]]", Short: "run a process in a running container", Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ct, err := load(args[0])
			if err != nil {
				return err
			}
			var p *specs.Process
			if processFile != "" {
				b, err := os.ReadFile(processFile)
				if err != nil {
					return err
				}
				p = &specs.Process{}
				if err := json.Unmarshal(b, p); err != nil {
					return fmt.Errorf("--process %s: %w", processFile, err)
				}
			} else {
				if len(args) < 2 {
					return errors.New("exec: a command (or --process) is required")
				}
				p = ct.ExecProcess(args[1:]...)
				p.Terminal = tty
			}
			if p.Terminal {
				if ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil {
					p.ConsoleSize = &specs.Box{Height: uint(ws.Row), Width: uint(ws.Col)}
				}
			}
			if cwd != "" {
				p.Cwd = cwd
			}
			p.Env = append(p.Env, envs...)
			if user != "" {
				p.User = specs.User{Username: user}
			}
			for _, g := range addGids {
				p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(g))
			}
			if noNewPrivs {
				p.NoNewPrivileges = true
			}
			if len(addCaps) > 0 {
				var caps specs.LinuxCapabilities
				if p.Capabilities != nil {
					caps = *p.Capabilities
				}
				for _, c := range addCaps {
					c = strings.ToUpper(c)
					if !strings.HasPrefix(c, "CAP_") {
						c = "CAP_" + c
					}
					caps.Bounding = append(caps.Bounding, c)
					caps.Effective = append(caps.Effective, c)
					caps.Permitted = append(caps.Permitted, c)
				}
				p.Capabilities = &caps
			}
			if p.Terminal && xDetach && xConsole == "" {
				return errors.New("exec --detach with a terminal needs --console-socket")
			}
			proc, err := ct.Exec(c.Context(), p, runtime.ExecOpts{
				IO:            runtime.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr},
				ConsoleSocket: xConsole,
			})
			if err != nil {
				return err
			}
			if xPidFile != "" {
				if err := os.WriteFile(xPidFile, []byte(strconv.Itoa(proc.Pid)), 0o644); err != nil {
					return err
				}
			}
			if xDetach {
				return nil
			}
			code := waitForeground(c.Context(), proc.Console(), func(s syscall.Signal) { _ = proc.Signal(s) }, proc.Wait)
			if code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	execCmd.Flags().SetInterspersed(false)
	execCmd.Flags().BoolVarP(&tty, "tty", "t", false, "allocate a pty")
	execCmd.Flags().StringVar(&cwd, "cwd", "", "working directory in the container")
	execCmd.Flags().StringArrayVarP(&envs, "env", "e", nil, "set an environment variable (KEY=VALUE)")
	execCmd.Flags().StringVarP(&user, "user", "u", "", "user[:group], names resolved in the image")
	execCmd.Flags().StringVarP(&processFile, "process", "p", "", "process.json to run instead of COMMAND")
	execCmd.Flags().StringVar(&xPidFile, "pid-file", "", "file to write the process pid to")
	execCmd.Flags().StringVar(&xConsole, "console-socket", "", "unix socket that receives the pty master")
	execCmd.Flags().BoolVarP(&xDetach, "detach", "d", false, "do not wait for the process")
	execCmd.Flags().BoolVar(&noNewPrivs, "no-new-privs", false, "set no_new_privs for the process")
	execCmd.Flags().StringArrayVarP(&addCaps, "cap", "c", nil, "add a capability (bounding, effective, permitted)")
	execCmd.Flags().UintSliceVarP(&addGids, "additional-gids", "g", nil, "additional gids")

	specCmd := &cobra.Command{
		Use: "spec", Short: "write a default config.json (rootfs ./rootfs, running sh) to the bundle", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			s := runtime.DefaultSpec("rootfs", "sh")
			s.Process.Terminal = true
			b, err := json.MarshalIndent(s, "", "  ")
			if err != nil {
				return err
			}
			p := filepath.Join(bundle, "config.json")
			f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			_, err = f.Write(append(b, '\n'))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return err
		},
	}
	specCmd.Flags().StringVarP(&bundle, "bundle", "b", ".", "bundle directory")

	simple := func(use, short string, f func(*runtime.Container) error) *cobra.Command {
		return &cobra.Command{
			Use: use + " ID", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(c *cobra.Command, args []string) error {
				ct, err := load(args[0])
				if err != nil {
					return err
				}
				return f(ct)
			},
		}
	}
	pauseCmd := simple("pause", "freeze every process of a container", (*runtime.Container).Pause)
	resumeCmd := simple("resume", "thaw a paused container", (*runtime.Container).Resume)
	var resourcesFile string
	updateCmd := &cobra.Command{
		Use: "update -r FILE ID", Short: "change a container's resources (linux.resources JSON; - for stdin)", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			var b []byte
			var err error
			if resourcesFile == "-" {
				b, err = io.ReadAll(os.Stdin)
			} else {
				b, err = os.ReadFile(resourcesFile)
			}
			if err != nil {
				return err
			}
			var r specs.LinuxResources
			if err := json.Unmarshal(b, &r); err != nil {
				return fmt.Errorf("resources: %w", err)
			}
			ct, err := load(args[0])
			if err != nil {
				return err
			}
			return ct.Update(&r)
		},
	}
	updateCmd.Flags().StringVarP(&resourcesFile, "resources", "r", "", "linux.resources JSON file")
	_ = updateCmd.MarkFlagRequired("resources")

	cmd.AddCommand(createCmd, startCmd, stateCmd, killCmd, deleteCmd, runCmd, listCmd, execCmd, specCmd, pauseCmd, resumeCmd, updateCmd)
	return cmd
}

// isRun: `run` in the foreground may use a terminal without a console
// socket (it copies the pty itself).
var isRun bool

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// parseSignal accepts "TERM", "SIGTERM" or "15".
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// waitForeground forwards our signals to the process, copies a pty if
// there is one, and returns the exit code.
func waitForeground(ctx context.Context, console *os.File, forward func(syscall.Signal), wait func(context.Context) (runtime.ExitStatus, error)) int {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs)
	defer signal.Stop(sigs)
	go func() {
		for s := range sigs {
			if s == unix.SIGCHLD || s == unix.SIGURG || s == unix.SIGWINCH || s == unix.SIGPIPE {
				continue
			}
			forward(s.(syscall.Signal))
		}
	}()
	if console != nil {
		pty := startPty(console, true)
		defer pty.end(time.Second)
	}
	es, err := wait(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth:", err)
		return 1
	}
	return es.Code
}
