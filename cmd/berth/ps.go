package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/supervisor/api"
)

func init() { register(newPsCmd) }

var containerStates = []string{"created", "restarting", "running", "paused", "exited", "dead"}

func newPsCmd(g *globalOptions) *cobra.Command {
	var (
		po       projectOptions
		all      bool
		quiet    bool
		services bool
		format   string
		status   []string
	)
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS] [SERVICE...]",
		Short: "List the containers of a project",
		RunE: func(cmd *cobra.Command, args []string) error {
			switch format {
			case "", "table", "json":
			default:
				return fmt.Errorf("--format: unknown format %q (want table or json)", format)
			}
			for _, s := range status {
				if !slices.Contains(containerStates, s) {
					return fmt.Errorf("--status: unknown state %q (want one of %s)", s, strings.Join(containerStates, ", "))
				}
			}
			st, c, err := dialProject(cmd.Context(), g, &po, args)
			if err != nil {
				return err
			}
			defer c.Close()
			cs, err := c.Ps(cmd.Context(), st.Name, all || len(status) > 0)
			if err != nil {
				return err
			}
			cs = filterPs(cs, args, status)
			out := cmd.OutOrStdout()
			switch {
			case services:
				for _, s := range servicesIn(cs) {
					fmt.Fprintln(out, s)
				}
				return nil
			case quiet:
				for _, c := range cs {
					fmt.Fprintln(out, c.ID)
				}
				return nil
			case format == "json":
				enc := json.NewEncoder(out)
				for _, c := range cs {
					if err := enc.Encode(psJSONOf(c)); err != nil {
						return err
					}
				}
				return nil
			}
			return writePsTable(out, cs)
		},
	}
	po.addFlags(cmd.Flags())
	cmd.Flags().BoolVarP(&all, "all", "a", false, "show stopped containers too")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only container IDs")
	cmd.Flags().BoolVar(&services, "services", false, "print only service names")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json (one object per line)")
	cmd.Flags().StringArrayVar(&status, "status", nil, "only containers in this state: "+strings.Join(containerStates, ", ")+"; repeatable")
	return cmd
}

// filterPs keeps the containers of services (all when empty) in one of
// states (any when empty), sorted like Compose.
func filterPs(cs []api.ContainerSummary, services, states []string) []api.ContainerSummary {
	var out []api.ContainerSummary
	for _, c := range cs {
		if len(services) > 0 && !slices.Contains(services, c.Service) {
			continue
		}
		if len(states) > 0 && !slices.Contains(states, c.State) {
			continue
		}
		out = append(out, c)
	}
	sortContainers(out)
	return out
}
