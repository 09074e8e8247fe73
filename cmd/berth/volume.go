package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/volumes"
)

func init() { register(newVolumeCmd) }

func newVolumeCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "volume",
		Short: "Manage volumes",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	manager := func() (*volumes.Manager, error) { return volumes.NewForRoot(g.Root) }
	cmd.AddCommand(
		newVolumeCreateCmd(manager),
		newVolumeLsCmd(manager),
		newVolumeInspectCmd(manager),
		newVolumeRmCmd(manager),
		newVolumePruneCmd(manager),
	)
	return cmd
}

// parseKeyValues turns repeated "k=v" flags into a map.
func parseKeyValues(flag string, kvs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--%s %q: want KEY=VALUE", flag, kv)
		}
		out[k] = v
	}
	return out, nil
}

func newVolumeCreateCmd(manager func() (*volumes.Manager, error)) *cobra.Command {
	var labels, opts []string
	var driver string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a volume (for example one a stack declares external)",
		Long: `Create a named volume. Driver options of the local driver:
  --driver-opt type=none --driver-opt o=bind --driver-opt device=/host/dir   a host directory
  --driver-opt type=tmpfs --driver-opt o=size=100m                           a tmpfs
Creating a volume that exists with the same labels and options is not an error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := parseKeyValues("label", labels)
			if err != nil {
				return err
			}
			o, err := parseKeyValues("driver-opt", opts)
			if err != nil {
				return err
			}
			m, err := manager()
			if err != nil {
				return err
			}
			name := args[0]
			_, err = m.Create(name, volumes.CreateOptions{Driver: driver, Labels: l, DriverOpts: o})
			if errors.Is(err, volumes.ErrExists) {
				old, ierr := m.Inspect(name)
				if ierr != nil || !maps.Equal(old.Labels, l) || !maps.Equal(old.Options, o) {
					return fmt.Errorf("volume %q already exists with other labels or options", name)
				}
				err = nil
			}
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), name)
			return err
		},
	}
	cmd.Flags().StringArrayVar(&labels, "label", nil, "set a label KEY=VALUE (repeatable)")
	cmd.Flags().StringArrayVarP(&opts, "driver-opt", "o", nil, "set a driver option KEY=VALUE: type, device, o (repeatable)")
	cmd.Flags().StringVarP(&driver, "driver", "d", volumes.DriverLocal, "volume driver (only local)")
	return cmd
}

// volumeFilter is `volume ls --filter`: name=SUBSTRING, label=KEY or
// label=KEY=VALUE, dangling=true|false (dangling: no container uses it).
func volumeFilter(filters []string) (func(*volumes.Volume) bool, error) {
	var preds []func(*volumes.Volume) bool
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("--filter %q: want KEY=VALUE", f)
		}
		switch k {
		case "name":
			preds = append(preds, func(vol *volumes.Volume) bool { return strings.Contains(vol.Name, v) })
		case "label":
			lk, lv, hasV := strings.Cut(v, "=")
			preds = append(preds, func(vol *volumes.Volume) bool {
				have, ok := vol.Labels[lk]
				return ok && (!hasV || have == lv)
			})
		case "dangling":
			if v != "true" && v != "false" {
				return nil, fmt.Errorf("--filter %q: dangling is true or false", f)
			}
			want := v == "true"
			preds = append(preds, func(vol *volumes.Volume) bool { return (len(vol.UsedBy) == 0) == want })
		default:
			return nil, fmt.Errorf("--filter %q: unknown filter (want name, label or dangling)", f)
		}
	}
	return func(vol *volumes.Volume) bool {
		for _, p := range preds {
			if !p(vol) {
				return false
			}
		}
		return true
	}, nil
}

func newVolumeLsCmd(manager func() (*volumes.Manager, error)) *cobra.Command {
	var format string
	var quiet bool
	var filters []string
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "" && format != "table" && format != "json" {
				return fmt.Errorf("--format: unknown format %q (want table or json)", format)
			}
			keep, err := volumeFilter(filters)
			if err != nil {
				return err
			}
			m, err := manager()
			if err != nil {
				return err
			}
			all, err := m.List()
			if err != nil {
				return err
			}
			var vols []*volumes.Volume
			for _, v := range all {
				if keep(v) {
					vols = append(vols, v)
				}
			}
			out := cmd.OutOrStdout()
			switch {
			case quiet:
				for _, v := range vols {
					fmt.Fprintln(out, v.Name)
				}
			case format == "json":
				// One object per line, as `docker volume ls --format json`.
				enc := json.NewEncoder(out)
				for _, v := range vols {
					if err := enc.Encode(v); err != nil {
						return err
					}
				}
			default:
				tw := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
				fmt.Fprintln(tw, "DRIVER\tVOLUME NAME\tIN USE BY")
				for _, v := range vols {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Driver, v.Name, strings.Join(v.UsedBy, ","))
				}
				return tw.Flush()
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only print volume names")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "filter: name=S, label=K[=V], dangling=true|false (repeatable)")
	return cmd
}

func newVolumeInspectCmd(manager func() (*volumes.Manager, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect NAME...",
		Short: "Show volumes' details as JSON",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			found := []*volumes.Volume{}
			var errs []error
			for _, n := range args {
				v, err := m.Inspect(n)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				found = append(found, v)
			}
			b, err := json.MarshalIndent(found, "", "    ")
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(b))
			return errors.Join(errs...)
		},
	}
}

func newVolumeRmCmd(manager func() (*volumes.Manager, error)) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NAME...",
		Aliases: []string{"remove"},
		Short:   "Remove volumes",
		Long:    "Remove volumes and their data. A volume a container uses is refused unless --force.",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			var errs []error
			for _, n := range args {
				if err := m.Remove(n, force); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), n)
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove even volumes recorded as in use")
	return cmd
}

func newVolumePruneCmd(manager func() (*volumes.Manager, error)) *cobra.Command {
	var force, all bool
	var labels []string
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Remove unused volumes",
		Long:  "Remove the anonymous volumes no container uses; with --all, unused named volumes too.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := parseKeyValues("filter", labels)
			if err != nil {
				return err
			}
			if !force {
				what := "all anonymous volumes not used by at least one container"
				if all {
					what = "all volumes not used by at least one container"
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "WARNING! This will remove %s.\nAre you sure you want to continue? [y/N] ", what)
				line, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
					return &exitError{code: 1, err: errors.New("prune cancelled")}
				}
			}
			m, err := manager()
			if err != nil {
				return err
			}
			removed, err := m.Prune(volumes.PruneOptions{All: all, Labels: l})
			sort.Strings(removed)
			out := cmd.OutOrStdout()
			if len(removed) > 0 {
				fmt.Fprintln(out, "Deleted Volumes:")
				for _, n := range removed {
					fmt.Fprintln(out, n)
				}
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove unused named volumes too, not only anonymous ones")
	cmd.Flags().StringArrayVar(&labels, "filter-label", nil, "only prune volumes with label KEY=VALUE (repeatable)")
	return cmd
}
