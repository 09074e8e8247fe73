package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-dev/berth/supervisor/api"
)

func init() { register(newRunCmd) }

func newRunCmd(g *globalOptions) *cobra.Command {
	var (
		po           projectOptions
		rm           bool
		detach       bool
		envs         []string
		noDeps       bool
		noTTY        bool
		tty          bool
		interactive  bool
		user         string
		workdir      string
		name         string
		entrypoint   string
		servicePorts bool
		build        bool
	)
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] SERVICE [COMMAND] [ARG...]",
		Short: "Run a one-off command in a new container of a service",
		Long: `Run a one-off command in a new container of a service, starting the
services it depends on first (unless --no-deps). berth exits with the
command's exit code.

When stdin and stdout are terminals (and no -T), or with -t, the command
gets a pty joined to the terminal (raw meanwhile), its size following the
terminal's: berth run web sh gives a shell. That output does not go to
the container's log. Without a pty, berth's stdin is the command's (-i,
the default; its end of file reaches the command), and the command's
output is printed as it comes and logged (berth logs). With -d the
container runs in the background, its stdin not connected.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if detach && rm {
				return errors.New("--rm and --detach are incompatible")
			}
			env, err := envArgs(envs)
			if err != nil {
				return err
			}
			service := args[0]
			p, err := po.load(cmd.Context(), []string{service})
			if err != nil {
				return err
			}
			st := &stack{Name: p.Name, Project: p}
			if err := st.checkServices([]string{service}); err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			errw := cmd.ErrOrStderr()
			// A build: service's image is built first when missing (or
			// always with --build), as up does.
			if p, err = ensureImages(ctx, g, p, []string{service}, noDeps, ensureOptions{force: build, progress: errw, status: errw}); err != nil {
				if ctx.Err() != nil {
					return &exitError{code: 130, err: errors.New("interrupted")}
				}
				return err
			}
			c, err := dial(g)
			if err != nil {
				return err
			}
			defer c.Close()
			req := api.RunRequest{Project: p, Service: service, Env: env, User: user, Workdir: workdir,
				Name: name, Remove: rm, NoDeps: noDeps, Detach: detach, ServicePorts: servicePorts}
			if len(args) > 1 {
				req.Command = args[1:]
			}
			if cmd.Flags().Changed("entrypoint") {
				req.Entrypoint = []string{}
				if entrypoint != "" {
					req.Entrypoint = []string{entrypoint}
				}
			}
			if !detach {
				req.Interactive = interactive
				req.TTY = wantTTY(noTTY, tty, term.IsTerminal(int(os.Stdin.Fd())), term.IsTerminal(int(os.Stdout.Fd())))
				if req.TTY {
					if ws, err := terminalSize(); err == nil {
						req.ConsoleSize = &api.ConsoleSize{Rows: ws.Row, Cols: ws.Col}
					}
				}
			}
			prog := newProgress(errw, isTerminal(errw), "Running")
			r := &runOutput{prog: prog, stdin: cmd.InOrStdin(), stdout: cmd.OutOrStdout(), stderr: errw}
			var res *api.Result
			if req.Attached() {
				res, err = c.RunAttached(ctx, req, r.event, r.log, r.attach(req.Interactive))
			} else {
				res, err = c.Run(ctx, req, r.event, r.log)
			}
			r.progressDone()
			if err != nil && errors.Is(err, api.ErrNoResult) && r.attached() && ctx.Err() == nil {
				// The daemon went away (it was restarted): the
				// container runs on, and so does our pty or stdin.
				res, err = r.reattach(ctx, g, p.Name, rm)
			}
			r.end()
			if err != nil {
				if ctx.Err() != nil {
					return &exitError{code: 130, err: errors.New("interrupted")}
				}
				return err
			}
			if err := res.Err(); err != nil {
				return err
			}
			if detach {
				for _, n := range res.Containers {
					fmt.Fprintln(cmd.OutOrStdout(), n)
				}
				return nil
			}
			if res.ExitCode != 0 {
				return &exitError{code: res.ExitCode}
			}
			return nil
		},
	}
	cmd.Flags().SetInterspersed(false)
	po.addFlags(cmd.Flags())
	f := cmd.Flags()
	f.BoolVar(&rm, "rm", false, "remove the container when it exits")
	f.BoolVarP(&detach, "detach", "d", false, "run in the background and print the container name")
	f.StringArrayVarP(&envs, "env", "e", nil, "set an environment variable (KEY=VALUE, or KEY to pass ours); repeatable")
	f.BoolVar(&noDeps, "no-deps", false, "do not start the services it depends on")
	f.BoolVarP(&noTTY, "no-TTY", "T", false, "no pty (the default unless stdin and stdout are terminals)")
	f.BoolVarP(&tty, "tty", "t", false, "a pty even when stdin or stdout is not a terminal")
	f.StringVarP(&user, "user", "u", "", "run as this user[:group]")
	f.StringVarP(&workdir, "workdir", "w", "", "working directory in the container")
	f.StringVar(&name, "name", "", "container name (default PROJECT-SERVICE-run-ID)")
	f.StringVar(&entrypoint, "entrypoint", "", "override the image's entrypoint")
	f.BoolVarP(&servicePorts, "service-ports", "P", false, "publish the service's ports")
	f.BoolVar(&build, "build", false, "build the service's image (build: section) before running")
	f.BoolVarP(&interactive, "interactive", "i", true, "connect stdin (--interactive=false: /dev/null)")
	return cmd
}

// wantTTY decides whether run gives the command a pty: as Compose's
// run, when stdin and stdout are terminals unless -T, or with -t
// (-T wins).
func wantTTY(noTTY, tty, stdinTerm, stdoutTerm bool) bool {
	return !noTTY && (tty || stdinTerm && stdoutTerm)
}

// runOutput shows an attached or streamed run: progress until the
// container's output starts, its log lines, and its pty or stdin.
type runOutput struct {
	prog           progress
	stdin          io.Reader // copied to the stdin pipe (a pty takes os.Stdin)
	stdout, stderr io.Writer

	mu        sync.Mutex // guards the fields below
	progDone  bool
	container string      // the one-off container, once known
	lastLog   time.Time   // time of the last log line printed
	pty       *ptySession // the pty session, when there is one
}

func (r *runOutput) event(ev api.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.progDone {
		r.prog.Event(ev)
	}
}

func (r *runOutput) progressDone() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.progressDoneLocked()
}

func (r *runOutput) progressDoneLocked() {
	if !r.progDone {
		r.prog.Done()
		r.progDone = true
	}
}

func (r *runOutput) log(l api.LogLine) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.progressDoneLocked()
	w := r.stdout
	if l.Stream == "stderr" {
		w = r.stderr
	}
	fmt.Fprintln(w, l.Log)
	r.lastLog = l.Time
}

// attach returns what takes the files of an attached run: the pty master
// is joined to our terminal, our stdin copied into the stdin pipe (whose
// closing, once our stdin ends, is the container's end of file).
func (r *runOutput) attach(copyStdin bool) func(api.Attach, *os.File) {
	return func(a api.Attach, f *os.File) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.container = a.Container
		switch a.Kind {
		case api.AttachConsole:
			r.progressDoneLocked()
			r.pty = startPty(f, copyStdin)
		case api.AttachStdin:
			go func() {
				_, _ = io.Copy(f, r.stdin)
				f.Close()
			}()
		default:
			f.Close()
		}
	}
}

// attached reports whether the daemon passed us the pty or stdin.
func (r *runOutput) attached() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.container != ""
}

// end ends the pty session, if any: its last output is printed and our
// terminal restored.
func (r *runOutput) end() {
	r.mu.Lock()
	pty := r.pty
	r.pty = nil
	r.mu.Unlock()
	if pty != nil {
		pty.end(time.Second)
	}
}

// reattach learns how the container ended when the daemon went away in
// the middle of the run: once the pty's output ends (the container's
// side closed), or at once without a pty, it waits for a daemon (the
// keeper restarts it), then for the container to exit; it prints the
// output logged since the last line printed, and removes the container
// with --rm. The Result carries the exit code.
func (r *runOutput) reattach(ctx context.Context, g *globalOptions, project string, rm bool) (*api.Result, error) {
	r.mu.Lock()
	name, pty, since := r.container, r.pty, r.lastLog
	r.mu.Unlock()
	c, err := dial(g)
	if err != nil {
		return nil, fmt.Errorf("the daemon went away during the run, and: %w", err)
	}
	defer c.Close()
	// A container the daemon did not get to start never will: don't
	// wait for it.
	all, err := c.Ps(ctx, project, true)
	if err != nil {
		return nil, err
	}
	for _, s := range all {
		if s.Name == name && s.State == "created" {
			_, _ = c.Container(ctx, name, api.ActionRemove, api.ContainerRequest{Force: true, Volumes: true})
			return nil, fmt.Errorf("the daemon went away before %s started", name)
		}
	}
	if pty != nil {
		select {
		case <-pty.done():
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	sum, err := c.Container(ctx, name, api.ActionWait, api.ContainerRequest{})
	if err != nil {
		return nil, fmt.Errorf("the daemon went away during the run; waiting for %s: %w", name, err)
	}
	if pty == nil {
		var lines []api.LogLine
		_ = c.Logs(ctx, api.LogsRequest{Containers: []string{name}, Tail: -1, Since: since}, func(l api.LogLine) error {
			if l.Time.After(since) {
				lines = append(lines, l)
			}
			return nil
		})
		for _, l := range lines {
			r.log(l)
		}
	}
	if sum.Error != "" {
		// e.g. the exit status was lost with a daemon and keeper that
		// both stopped while the container ran.
		fmt.Fprintf(r.stderr, "berth: %s: %s\n", name, sum.Error)
	}
	if rm {
		if _, err := c.Container(ctx, name, api.ActionRemove, api.ContainerRequest{Force: true, Volumes: true}); err != nil {
			return nil, err
		}
	}
	return &api.Result{ExitCode: sum.ExitCode, Containers: []string{name}}, nil
}
