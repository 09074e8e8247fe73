package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/berth-dev/berth/supervisor/runtime"
	"github.com/berth-dev/berth/supervisor/specconv"
)

func init() { register(newExecCmd) }

// exec, top and stats work on the containers directly through the runtime
// (no daemon needed): a container's runtime id is its name, and its spec
// carries the project and service as annotations.

// rtContainer is a service container as the runtime knows it.
type rtContainer struct {
	Name    string
	Project string
	Service string
	Number  int
	State   runtime.State
}

func openRuntime(g *globalOptions) (*runtime.Runtime, error) {
	return runtime.New(filepath.Join(g.Root, "runtime"))
}

// runtimeContainers lists the project's service containers (not one-off
// `run` containers) of services (all when empty), sorted by service and
// replica number.
func runtimeContainers(rt *runtime.Runtime, project string, services []string) ([]rtContainer, error) {
	states, err := rt.List()
	if err != nil {
		return nil, err
	}
	var out []rtContainer
	for _, s := range states {
		if s.Annotations[specconv.AnnotationProject] != project {
			continue
		}
		svc := s.Annotations[specconv.AnnotationService]
		if len(services) > 0 && !contains(services, svc) {
			continue
		}
		if strings.HasPrefix(s.ID, project+"-"+svc+"-run-") {
			continue // a one-off container
		}
		c := rtContainer{Name: s.ID, Project: project, Service: svc, Number: 1, State: s}
		if rest, ok := strings.CutPrefix(s.ID, project+"-"+svc+"-"); ok {
			if n, err := strconv.Atoi(rest); err == nil {
				c.Number = n
			}
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		if out[i].Number != out[j].Number {
			return out[i].Number < out[j].Number
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// runningContainer finds replica index of service and checks it runs.
func runningContainer(rt *runtime.Runtime, project, service string, index int) (*runtime.Container, error) {
	cs, err := runtimeContainers(rt, project, []string{service})
	if err != nil {
		return nil, err
	}
	if len(cs) == 0 {
		return nil, fmt.Errorf("service %q is not running", service)
	}
	for _, c := range cs {
		if c.Number != index {
			continue
		}
		if c.State.Status != specs.StateRunning {
			return nil, fmt.Errorf("container %s of service %q is not running (%s)", c.Name, service, c.State.Status)
		}
		return rt.Load(c.Name)
	}
	return nil, fmt.Errorf("service %q has no container with index %d", service, index)
}

// envArgs turns -e flags into KEY=VALUE entries; "-e KEY" takes KEY's
// value from our environment (and is dropped when it is unset), as
// Docker does.
func envArgs(flags []string) ([]string, error) {
	var out []string
	for _, e := range flags {
		k, _, hasValue := strings.Cut(e, "=")
		if k == "" {
			return nil, fmt.Errorf("-e %q: want KEY=VALUE or KEY", e)
		}
		if hasValue {
			out = append(out, e)
		} else if v, ok := os.LookupEnv(k); ok {
			out = append(out, k+"="+v)
		}
	}
	return out, nil
}

// setEnv sets KEY=VALUE entries in env, replacing earlier values.
func setEnv(env, add []string) []string {
	out := append([]string(nil), env...)
	for _, kv := range add {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, old := range out {
			if ok, _, _ := strings.Cut(old, "="); ok == k {
				out[i], replaced = kv, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

func newExecCmd(g *globalOptions) *cobra.Command {
	var (
		po         projectOptions
		noTTY      bool
		tty        bool
		user       string
		workdir    string
		envs       []string
		detach     bool
		index      int
		privileged bool
	)
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] SERVICE COMMAND [ARG...]",
		Short: "Run a command in a running container of a service",
		Long: `Run a command in a running container of a service. With a terminal on stdin
(and no -T) the command gets a pty. berth exits with the command's exit code.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if index < 1 {
				return fmt.Errorf("--index: %d is not a replica number (1, 2, ...)", index)
			}
			if privileged {
				return fmt.Errorf("--privileged is not supported: the command runs with the container's own privileges")
			}
			env, err := envArgs(envs)
			if err != nil {
				return err
			}
			service := args[0]
			st, err := po.resolveServices(cmd.Context(), []string{service})
			if err != nil {
				return err
			}
			rt, err := openRuntime(g)
			if err != nil {
				return err
			}
			ct, err := runningContainer(rt, st.Name, service, index)
			if err != nil {
				return err
			}
			p := ct.ExecProcess(args[1:]...)
			p.Env = setEnv(p.Env, env)
			if workdir != "" {
				p.Cwd = workdir
			}
			if user != "" {
				p.User = specs.User{Username: user}
			}
			stdinTTY := term.IsTerminal(int(os.Stdin.Fd()))
			p.Terminal = !noTTY && !detach && (stdinTTY || tty)
			if detach {
				proc, err := ct.Exec(context.Background(), p, runtime.ExecOpts{})
				if err != nil {
					return fmt.Errorf("service %q: exec: %w", service, err)
				}
				_ = proc // runs on without us
				return nil
			}
			code, err := execForeground(ct, p, service)
			if err != nil {
				return err
			}
			if code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	cmd.Flags().SetInterspersed(false)
	po.addFlags(cmd.Flags())
	f := cmd.Flags()
	f.BoolVarP(&noTTY, "no-TTY", "T", false, "do not allocate a pty (the default when stdin is not a terminal)")
	f.BoolVarP(&tty, "tty", "t", false, "allocate a pty even when stdin is not a terminal")
	f.StringVarP(&user, "user", "u", "", "run as this user[:group] (names from the image)")
	f.StringVarP(&workdir, "workdir", "w", "", "working directory in the container")
	f.StringArrayVarP(&envs, "env", "e", nil, "set an environment variable (KEY=VALUE, or KEY to pass ours); repeatable")
	f.BoolVarP(&detach, "detach", "d", false, "run the command in the background")
	f.IntVar(&index, "index", 1, "the replica of the service, when it has several")
	f.BoolVar(&privileged, "privileged", false, "not supported (the command gets the container's privileges)")
	return cmd
}

// execForeground runs p in ct attached to our stdio and returns its exit
// code. With p.Terminal, stdin is put in raw mode and copied to the pty,
// the pty to stdout, and window size changes follow; otherwise the
// process gets our stdio files and our signals are forwarded to it.
func execForeground(ct *runtime.Container, p *specs.Process, service string) (int, error) {
	opts := runtime.ExecOpts{IO: runtime.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}}
	proc, err := ct.Exec(context.Background(), p, opts)
	if err != nil {
		return 0, fmt.Errorf("service %q: exec: %w", service, err)
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs)
	defer signal.Stop(sigs)

	var pty *ptySession
	if console := proc.Console(); console != nil {
		pty = startPty(console, true)
	}
	go func() {
		for s := range sigs {
			switch s {
			case unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE, unix.SIGWINCH:
			default:
				if pty == nil {
					_ = proc.Signal(s.(syscall.Signal))
				}
			}
		}
	}()
	es, err := proc.Wait(context.Background())
	if pty != nil {
		pty.end(time.Second)
	}
	if err != nil {
		return 0, fmt.Errorf("service %q: exec: %w", service, err)
	}
	return es.Code, nil
}
