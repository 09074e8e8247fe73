package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/supervisor/api"
)

func init() { register(newLsCmd) }

// lsJSON is one project in `ls --format json`, Compose's fields.
type lsJSON struct {
	Name        string
	Status      string
	ConfigFiles string
}

func newLsCmd(g *globalOptions) *cobra.Command {
	var (
		all    bool
		quiet  bool
		format string
	)
	cmd := &cobra.Command{
		Use:   "ls [OPTIONS]",
		Short: "List projects",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch format {
			case "", "table", "json":
			default:
				return fmt.Errorf("--format: unknown format %q (want table or json)", format)
			}
			c, err := dial(g)
			if err != nil {
				return err
			}
			defer c.Close()
			ps, err := c.Projects(cmd.Context(), all)
			if err != nil {
				return err
			}
			return writeProjects(cmd.OutOrStdout(), ps, format, quiet)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "show stopped projects too")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only project names")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	return cmd
}

func writeProjects(w io.Writer, ps []api.ProjectSummary, format string, quiet bool) error {
	switch {
	case quiet:
		for _, p := range ps {
			fmt.Fprintln(w, p.Name)
		}
		return nil
	case format == "json":
		out := make([]lsJSON, 0, len(ps))
		for _, p := range ps {
			out = append(out, lsJSON{Name: p.Name, Status: p.Status, ConfigFiles: strings.Join(p.ConfigFiles, ",")})
		}
		return json.NewEncoder(w).Encode(out)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATUS\tCONFIG FILES")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Name, p.Status, strings.Join(p.ConfigFiles, ","))
	}
	return tw.Flush()
}
