package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/supervisor/api"
)

func init() { register(newLogsCmd) }

func newLogsCmd(g *globalOptions) *cobra.Command {
	var (
		po         projectOptions
		follow     bool
		tail       string
		timestamps bool
		since      string
		until      string
		noPrefix   bool
		noColor    bool
		index      int
	)
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] [SERVICE...]",
		Short: "Show the output of a project's containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseTail(tail)
			if err != nil {
				return err
			}
			var sinceT, untilT time.Time
			if since != "" {
				if sinceT, err = parseTimeArg(since); err != nil {
					return fmt.Errorf("--since: %w", err)
				}
			}
			if until != "" {
				if untilT, err = parseTimeArg(until); err != nil {
					return fmt.Errorf("--until: %w", err)
				}
			}
			if index > 0 && len(args) != 1 {
				return fmt.Errorf("--index needs exactly one service")
			}
			st, c, err := dialProject(cmd.Context(), g, &po, args)
			if err != nil {
				return err
			}
			defer c.Close()
			cs, err := serviceContainers(cmd.Context(), c, st.Name, args)
			if err != nil {
				return err
			}
			req := api.LogsRequest{Project: st.Name, Services: args, Follow: follow, Tail: n, Since: sinceT}
			if index > 0 {
				one, err := containerByIndex(cs, args[0], index)
				if err != nil {
					return err
				}
				req.Services, req.Containers = nil, []string{one.Name}
				cs = []api.ContainerSummary{one}
			}
			names := make([]string, 0, len(cs))
			for _, c := range cs {
				names = append(names, shortName(c.Project, c.Service, c.Name))
			}
			out := cmd.OutOrStdout()
			lp := newLogPrinter(out, useColor(out, noColor), names)
			lp.noPrefix, lp.timestamps = noPrefix, timestamps
			ctx := cmd.Context()
			if follow {
				var cancel func()
				ctx, cancel = signalContext()
				defer cancel()
				// Like Compose, -f ends once every followed container
				// has stopped (for good: a restart keeps it going).
				if !anyRunning(cs) {
					req.Follow = false
				} else {
					ctx = endWhenStopped(ctx, c, st.Name, cs)
				}
			}
			return c.Logs(ctx, req, func(l api.LogLine) error {
				if !untilT.IsZero() && l.Time.After(untilT) {
					return nil
				}
				lp.Line(shortName(st.Name, l.Service, l.Container), l.Time, l.Log)
				return nil
			})
		},
	}
	addProjectFlagsNoF(cmd.Flags(), &po)
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "follow the output")
	f.StringVarP(&tail, "tail", "n", "all", "number of lines from the end of each container's log, or all")
	f.BoolVarP(&timestamps, "timestamps", "t", false, "show timestamps")
	f.StringVar(&since, "since", "", "only lines since a time (2013-01-02T13:23:37Z) or a relative time (42m)")
	f.StringVar(&until, "until", "", "only lines before a time (2013-01-02T13:23:37Z) or a relative time (42m)")
	f.BoolVar(&noPrefix, "no-log-prefix", false, "do not prefix lines with the container name")
	f.BoolVar(&noColor, "no-color", false, "no colours")
	f.IntVar(&index, "index", 0, "the replica of the service, when it has several")
	return cmd
}

// parseTail reads --tail: "all" (or a negative number) means every line.
func parseTail(s string) (int, error) {
	if s == "" || s == "all" {
		return -1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("--tail: %q is neither a number nor all", s)
	}
	if n < 0 {
		return -1, nil
	}
	return n, nil
}

// parseTimeArg reads a --since/--until value as Docker does: RFC 3339
// (with or without fraction and zone), a date, a Unix timestamp, or a
// duration counted back from now (10m, 1h30m).
func parseTimeArg(s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("negative duration %q", s)
		}
		return now().Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.RFC3339, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		var t time.Time
		var err error
		if strings.HasSuffix(layout, "Z07:00") {
			t, err = time.Parse(layout, s)
		} else {
			t, err = time.ParseInLocation(layout, s, time.Local)
		}
		if err == nil {
			return t, nil
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
	}
	return time.Time{}, fmt.Errorf("cannot read %q as a time (2013-01-02T13:23:37Z, 2013-01-02, a Unix timestamp or a duration like 42m)", s)
}

func isRunning(state string) bool {
	return state == "running" || state == "restarting" || state == "paused"
}

func anyRunning(cs []api.ContainerSummary) bool {
	for _, c := range cs {
		if isRunning(c.State) {
			return true
		}
	}
	return false
}

// endWhenStopped returns a context that ends (a moment after, so the
// last lines still arrive) once none of the containers cs runs any
// more: on their die events, and by a slow check of ps in case an event
// came before the subscription.
func endWhenStopped(parent context.Context, c *api.Client, project string, cs []api.ContainerSummary) context.Context {
	ctx, cancel := context.WithCancel(parent)
	watched := map[string]bool{}
	for _, ct := range cs {
		watched[ct.Name] = true
	}
	check := make(chan struct{}, 1)
	poke := func() {
		select {
		case check <- struct{}{}:
		default:
		}
	}
	go func() {
		_ = c.Events(ctx, project, func(ev api.Event) error {
			if watched[ev.Container] && ev.Action == "die" && ev.Status != "restarting" {
				poke()
			}
			return nil
		})
	}()
	go func() {
		defer cancel()
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-check:
			case <-t.C:
			}
			now, err := c.Ps(ctx, project, true)
			if err != nil {
				continue
			}
			var ours []api.ContainerSummary
			for _, ct := range now {
				if watched[ct.Name] {
					ours = append(ours, ct)
				}
			}
			if !anyRunning(ours) {
				time.Sleep(logQuiet)
				return
			}
		}
	}()
	return ctx
}
