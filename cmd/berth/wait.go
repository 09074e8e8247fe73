package main

import (
	"fmt"
	"sync"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/supervisor/api"
)

func init() { register(newWaitCmd) }

func newWaitCmd(g *globalOptions) *cobra.Command {
	var (
		po          projectOptions
		downProject bool
	)
	cmd := &cobra.Command{
		Use:   "wait SERVICE...",
		Short: "Wait until the containers of services stop, and print their exit codes",
		Long: `Wait until the containers of the services stop, printing each exit code as
it comes. berth exits with the exit code of the first container that stopped.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, c, err := dialProject(cmd.Context(), g, &po, args)
			if err != nil {
				return err
			}
			defer c.Close()
			cs, err := serviceContainers(cmd.Context(), c, st.Name, args)
			if err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			out := cmd.OutOrStdout()
			var (
				mu    sync.Mutex
				first = -1
				errs  []error
				wg    sync.WaitGroup
			)
			for _, ct := range cs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := c.Container(ctx, ct.Name, api.ActionWait, api.ContainerRequest{})
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						if ctx.Err() == nil {
							errs = append(errs, fmt.Errorf("container %s: %w", ct.Name, err))
						}
						return
					}
					fmt.Fprintln(out, res.ExitCode)
					if first < 0 {
						first = res.ExitCode
					}
				}()
			}
			wg.Wait()
			if ctx.Err() != nil {
				return &exitError{code: 130}
			}
			if len(errs) > 0 {
				return errs[0]
			}
			if downProject {
				errw := cmd.ErrOrStderr()
				prog := newProgress(errw, isTerminal(errw), "Running")
				res, err := c.Down(cmd.Context(), api.DownRequest{ProjectName: st.Name, Project: st.Project}, prog.Event)
				prog.Done()
				if err != nil {
					return err
				}
				if err := res.Err(); err != nil {
					return err
				}
			}
			if first > 0 {
				return &exitError{code: first}
			}
			return nil
		},
	}
	po.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&downProject, "down-project", false, "run down on the project once the containers stopped")
	return cmd
}
