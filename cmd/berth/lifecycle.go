package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/supervisor/api"
)

// start, stop, restart, kill, rm, pause and unpause act on the existing
// containers of a project, through the daemon.

func init() {
	register(newStartCmd)
	register(newStopCmd)
	register(newRestartCmd)
	register(newKillCmd)
	register(newRmCmd)
	register(newPauseCmd)
	register(newUnpauseCmd)
}

// lifecycleSpec describes one of those commands.
type lifecycleSpec struct {
	use, short string
	action     string
	// project: the daemon acts on the project as a whole, walking its
	// dependency graph (start, stop, restart). Otherwise the CLI acts on
	// each container in one of states (nil: any), all at once.
	project bool
	states  []string
}

// runLifecycle acts on the containers of services (all when empty), with
// progress on stderr.
func runLifecycle(cmd *cobra.Command, g *globalOptions, po *projectOptions, services []string, ls lifecycleSpec, req api.ContainerRequest) error {
	st, c, err := dialProject(cmd.Context(), g, po, services)
	if err != nil {
		return err
	}
	defer c.Close()
	errw := cmd.ErrOrStderr()
	prog := newProgress(errw, isTerminal(errw), "Running")
	defer prog.Done()
	if ls.project {
		return projectAction(cmd.Context(), c, st.Name, ls.action, api.ProjectRequest{Services: services, Timeout: req.Timeout}, prog, errw)
	}
	cs, err := serviceContainers(cmd.Context(), c, st.Name, services)
	if err != nil {
		return err
	}
	cs = filterPs(cs, nil, ls.states)
	return containerAction(cmd.Context(), c, cs, ls.action, req, prog)
}

// projectAction has the daemon start, stop or restart a project's
// containers in dependency order, with progress; it prints the warnings
// and returns every error.
func projectAction(ctx context.Context, c *api.Client, project, action string, req api.ProjectRequest, prog progress, errw io.Writer) error {
	res, err := c.ProjectAction(ctx, project, action, req, prog.Event)
	if err != nil {
		return err
	}
	prog.Done()
	for _, w := range res.Warnings {
		fmt.Fprintln(errw, "berth: warning:", w)
	}
	return res.Err()
}

func lifecycleCmd(g *globalOptions, ls lifecycleSpec, flags func(*cobra.Command) func() (api.ContainerRequest, error)) *cobra.Command {
	var po projectOptions
	cmd := &cobra.Command{Use: ls.use, Short: ls.short}
	var build func() (api.ContainerRequest, error)
	if flags != nil {
		build = flags(cmd)
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var req api.ContainerRequest
		if build != nil {
			var err error
			if req, err = build(); err != nil {
				return err
			}
		}
		return runLifecycle(cmd, g, &po, args, ls, req)
	}
	po.addFlags(cmd.Flags())
	return cmd
}

// timeoutFlag adds -t/--timeout (seconds; default the service's
// stop_grace_period).
func timeoutFlag(cmd *cobra.Command) func() (api.ContainerRequest, error) {
	var t secondsFlag
	cmd.Flags().VarP(&t, "timeout", "t", "seconds to wait for the container to stop before killing it (default: stop_grace_period)")
	return func() (api.ContainerRequest, error) {
		return api.ContainerRequest{Timeout: t.d}, nil
	}
}

func newStartCmd(g *globalOptions) *cobra.Command {
	return lifecycleCmd(g, lifecycleSpec{use: "start [SERVICE...]", short: "Start a project's existing containers",
		action: api.ActionStart, project: true}, nil)
}

func newStopCmd(g *globalOptions) *cobra.Command {
	return lifecycleCmd(g, lifecycleSpec{use: "stop [SERVICE...]", short: "Stop a project's containers without removing them",
		action: api.ActionStop, project: true}, timeoutFlag)
}

func newRestartCmd(g *globalOptions) *cobra.Command {
	return lifecycleCmd(g, lifecycleSpec{use: "restart [SERVICE...]", short: "Restart a project's containers",
		action: api.ActionRestart, project: true}, timeoutFlag)
}

func newPauseCmd(g *globalOptions) *cobra.Command {
	return lifecycleCmd(g, lifecycleSpec{use: "pause [SERVICE...]", short: "Pause a project's running containers",
		action: api.ActionPause, states: []string{"running"}}, nil)
}

func newUnpauseCmd(g *globalOptions) *cobra.Command {
	return lifecycleCmd(g, lifecycleSpec{use: "unpause [SERVICE...]", short: "Resume a project's paused containers",
		action: api.ActionUnpause, states: []string{"paused"}}, nil)
}

func newKillCmd(g *globalOptions) *cobra.Command {
	return lifecycleCmd(g, lifecycleSpec{use: "kill [SERVICE...]", short: "Send a signal (default SIGKILL) to a project's containers",
		action: api.ActionKill, states: []string{"running", "restarting", "paused"}},
		func(cmd *cobra.Command) func() (api.ContainerRequest, error) {
			sig := cmd.Flags().StringP("signal", "s", "SIGKILL", "signal to send: a name (SIGTERM, TERM) or a number")
			return func() (api.ContainerRequest, error) {
				if _, err := parseSignal(*sig); err != nil {
					return api.ContainerRequest{}, fmt.Errorf("--signal: %w", err)
				}
				return api.ContainerRequest{Signal: *sig}, nil
			}
		})
}

func newRmCmd(g *globalOptions) *cobra.Command {
	var (
		po                   projectOptions
		force, stop, volumes bool
	)
	cmd := &cobra.Command{
		Use:   "rm [OPTIONS] [SERVICE...]",
		Short: "Remove a project's stopped containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			st, c, err := dialProject(cmd.Context(), g, &po, args)
			if err != nil {
				return err
			}
			defer c.Close()
			errw := cmd.ErrOrStderr()
			cs, err := serviceContainers(cmd.Context(), c, st.Name, args)
			if err != nil {
				return err
			}
			if stop {
				running := filterPs(cs, nil, []string{"running", "restarting", "paused"})
				if len(running) > 0 {
					prog := newProgress(errw, isTerminal(errw), "Running")
					err := projectAction(cmd.Context(), c, st.Name, api.ActionStop, api.ProjectRequest{Services: servicesIn(running)}, prog, errw)
					prog.Done()
					if err != nil {
						return err
					}
					if cs, err = serviceContainers(cmd.Context(), c, st.Name, args); err != nil {
						return err
					}
				}
			}
			stopped := filterPs(cs, nil, []string{"created", "exited", "dead"})
			if len(stopped) == 0 {
				fmt.Fprintln(errw, "No stopped containers")
				return nil
			}
			if !force {
				names := make([]string, len(stopped))
				for i, c := range stopped {
					names[i] = c.Name
				}
				if !confirm(cmd.InOrStdin(), errw, fmt.Sprintf("Going to remove %s\n? Are you sure? [yN] ", strings.Join(names, ", "))) {
					return nil
				}
			}
			prog := newProgress(errw, isTerminal(errw), "Running")
			defer prog.Done()
			return containerAction(cmd.Context(), c, stopped, api.ActionRemove, api.ContainerRequest{Volumes: volumes}, prog)
		},
	}
	addProjectFlagsNoF(cmd.Flags(), &po)
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	cmd.Flags().BoolVarP(&stop, "stop", "s", false, "stop the containers first if needed")
	cmd.Flags().BoolVarP(&volumes, "volumes", "v", false, "remove the containers' anonymous volumes too")
	return cmd
}

// confirm asks question on w and reads a y/yes answer from r.
func confirm(r io.Reader, w io.Writer, question string) bool {
	fmt.Fprint(w, question)
	line, _ := bufio.NewReader(r).ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(line))
	return slices.Contains([]string{"y", "yes"}, a)
}
