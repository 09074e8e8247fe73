package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/supervisor/api"
)

func init() { register(newDownCmd) }

func newDownCmd(g *globalOptions) *cobra.Command {
	var (
		po            projectOptions
		volumes       bool
		removeOrphans bool
		timeout       int
		rmi           string
	)
	cmd := &cobra.Command{
		Use:   "down [OPTIONS]",
		Short: "Stop and remove a project's containers and networks",
		Long: `Stop and remove a project's containers and networks, in reverse dependency
order. Named volumes are kept unless -v. Works from the project as berth last
applied it, so -p NAME is enough when the stack files are gone.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch rmi {
			case "", "local", "all":
			default:
				return fmt.Errorf("--rmi: unknown value %q (want local or all)", rmi)
			}
			st, err := po.resolve(cmd.Context(), nil)
			if err != nil {
				return err
			}
			c, err := dial(g)
			if err != nil {
				return err
			}
			defer c.Close()
			req := api.DownRequest{ProjectName: st.Name, Project: st.Project, RemoveOrphans: removeOrphans, Volumes: volumes, RMI: rmi}
			if timeout >= 0 {
				d := time.Duration(timeout) * time.Second
				req.Timeout = &d
			}
			errw := cmd.ErrOrStderr()
			prog := newProgress(errw, isTerminal(errw), "Running")
			res, err := c.Down(cmd.Context(), req, prog.Event)
			prog.Done()
			if err != nil {
				return err
			}
			for _, w := range res.Warnings {
				fmt.Fprintln(errw, "berth: warning:", w)
			}
			return res.Err()
		},
	}
	po.addFlags(cmd.Flags())
	cmd.Flags().BoolVarP(&volumes, "volumes", "v", false, "also remove named volumes of the stack and anonymous volumes")
	cmd.Flags().BoolVar(&removeOrphans, "remove-orphans", false, "also remove containers of services no longer in the stack files")
	cmd.Flags().IntVarP(&timeout, "timeout", "t", -1, "seconds to wait for each container to stop (default: its stop_grace_period)")
	cmd.Flags().StringVar(&rmi, "rmi", "", "remove images the services use: local (no custom tag) or all")
	return cmd
}
