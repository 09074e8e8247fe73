package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/supervisor/api"
)

func init() { register(newEventsCmd) }

// eventJSON is one line of `events --json`, Compose's shape.
type eventJSON struct {
	Time       time.Time         `json:"time"`
	Type       string            `json:"type"`
	Action     string            `json:"action"`
	ID         string            `json:"id"`
	Service    string            `json:"service"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

func eventAttributes(ev api.Event) map[string]string {
	attrs := map[string]string{}
	if ev.Status != "" {
		attrs["status"] = ev.Status
	}
	if ev.Action == "die" || ev.ExitCode != 0 {
		attrs["exitCode"] = fmt.Sprint(ev.ExitCode)
	}
	if ev.Message != "" {
		attrs["message"] = ev.Message
	}
	if ev.Error != "" {
		attrs["error"] = ev.Error
	}
	if ev.Project != "" {
		attrs["project"] = ev.Project
	}
	return attrs
}

func eventType(ev api.Event) string {
	switch ev.Action {
	case "network", "volume":
		return ev.Action
	}
	return "container"
}

// writeEvent prints an event as `docker compose events` does:
// "2024-01-02 15:04:05.000000 container die demo-web-1 (exitCode=0, ...)".
func writeEvent(w io.Writer, ev api.Event, asJSON bool) error {
	attrs := eventAttributes(ev)
	if asJSON {
		return json.NewEncoder(w).Encode(eventJSON{Time: ev.Time, Type: eventType(ev), Action: ev.Action, ID: ev.Container, Service: ev.Service, Attributes: attrs})
	}
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys)+1)
	if ev.Service != "" {
		parts = append(parts, "service="+ev.Service)
	}
	for _, k := range keys {
		parts = append(parts, k+"="+attrs[k])
	}
	_, err := fmt.Fprintf(w, "%s %s %s %s (%s)\n", ev.Time.Local().Format("2006-01-02 15:04:05.000000"), eventType(ev), ev.Action, ev.Container, strings.Join(parts, ", "))
	return err
}

func newEventsCmd(g *globalOptions) *cobra.Command {
	var (
		po     projectOptions
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "events [OPTIONS] [SERVICE...]",
		Short: "Stream the container events of a project",
		RunE: func(cmd *cobra.Command, args []string) error {
			st, c, err := dialProject(cmd.Context(), g, &po, args)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := signalContext()
			defer cancel()
			out := cmd.OutOrStdout()
			return c.Events(ctx, st.Name, func(ev api.Event) error {
				if len(args) > 0 && !slices.Contains(args, ev.Service) {
					return nil
				}
				return writeEvent(out, ev, asJSON)
			})
		},
	}
	po.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per event")
	return cmd
}
