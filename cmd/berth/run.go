package main

import (
	"errors"
	"fmt"
	"os"

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
command's exit code. The container's stdin is not connected (berth run is
not interactive); its output is printed as it comes.`,
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
			if !detach && !noTTY && term.IsTerminal(int(os.Stdin.Fd())) {
				fmt.Fprintln(errw, "berth: note: run is not interactive: the container's stdin is not connected (use -T to silence this)")
			}
			prog := newProgress(errw, isTerminal(errw), "Running")
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			progDone := false
			res, err := c.Run(ctx, req, func(ev api.Event) {
				if !progDone {
					prog.Event(ev)
				}
			}, func(l api.LogLine) {
				if !progDone {
					prog.Done()
					progDone = true
				}
				w := stdout
				if l.Stream == "stderr" {
					w = stderr
				}
				fmt.Fprintln(w, l.Log)
			})
			if !progDone {
				prog.Done()
			}
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
					fmt.Fprintln(stdout, n)
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
	f.BoolVarP(&noTTY, "no-TTY", "T", false, "no pty (berth run never allocates one)")
	f.StringVarP(&user, "user", "u", "", "run as this user[:group]")
	f.StringVarP(&workdir, "workdir", "w", "", "working directory in the container")
	f.StringVar(&name, "name", "", "container name (default PROJECT-SERVICE-run-ID)")
	f.StringVar(&entrypoint, "entrypoint", "", "override the image's entrypoint")
	f.BoolVarP(&servicePorts, "service-ports", "P", false, "publish the service's ports")
	f.BoolVar(&build, "build", false, "build the service's image (build: section) before running")
	f.BoolP("interactive", "i", true, "accepted for Compose compatibility (stdin is not connected)")
	return cmd
}
