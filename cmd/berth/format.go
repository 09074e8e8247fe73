package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	units "github.com/docker/go-units"

	"github.com/berth-dev/berth/supervisor/api"
)

// now is the clock the formatters read; tests replace it.
var now = time.Now

// sinceText is Docker's "2 minutes" for the time since t.
func sinceText(t time.Time) string {
	d := now().Sub(t)
	if d < 0 {
		d = 0
	}
	return units.HumanDuration(d)
}

// statusText is what `docker compose ps` shows in its STATUS column:
// "Up 2 minutes (healthy)", "Exited (1) 3 seconds ago", "Created",
// "Restarting (1) 2 seconds ago", "Up 5 minutes (Paused)".
func statusText(c api.ContainerSummary) string {
	switch c.State {
	case "running":
		s := "Up " + sinceText(c.StartedAt)
		if c.Health != "" {
			s += " (" + c.Health + ")"
		}
		return s
	case "paused":
		return "Up " + sinceText(c.StartedAt) + " (Paused)"
	case "restarting":
		return fmt.Sprintf("Restarting (%d) %s ago", c.ExitCode, sinceText(c.FinishedAt))
	case "exited":
		if c.FinishedAt.IsZero() {
			return fmt.Sprintf("Exited (%d)", c.ExitCode)
		}
		return fmt.Sprintf("Exited (%d) %s ago", c.ExitCode, sinceText(c.FinishedAt))
	case "created":
		return "Created"
	case "dead":
		return "Dead"
	case "":
		return "Unknown"
	}
	return strings.ToUpper(c.State[:1]) + c.State[1:]
}

// createdText is the CREATED column: "3 minutes ago".
func createdText(t time.Time) string {
	if t.IsZero() {
		return "N/A"
	}
	return sinceText(t) + " ago"
}

// publisherText is one published port as docker ps shows it:
// "127.0.0.1:8080->80/tcp".
func publisherText(p api.Publisher) string {
	host := p.URL
	if host == "" {
		host = "0.0.0.0"
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return fmt.Sprintf("%s:%d->%d/%s", host, p.PublishedPort, p.TargetPort, p.Protocol)
}

// portsText is the PORTS column.
func portsText(ps []api.Publisher) string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, publisherText(p))
	}
	return strings.Join(out, ", ")
}

// ellipsis shortens s to at most n runes, ending in "…" when cut.
func ellipsis(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// sortContainers orders containers as Compose lists them: by service,
// then replica number, then name.
func sortContainers(cs []api.ContainerSummary) {
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if a.Project != b.Project {
			return a.Project < b.Project
		}
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		if a.Number != b.Number {
			return a.Number < b.Number
		}
		return a.Name < b.Name
	})
}

// writePsTable prints containers as `docker compose ps` does.
func writePsTable(w io.Writer, cs []api.ContainerSummary) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tIMAGE\tCOMMAND\tSERVICE\tCREATED\tSTATUS\tPORTS")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.Image,
			strconv.Quote(ellipsis(c.Command, 20)), c.Service, createdText(c.CreatedAt),
			statusText(c), portsText(c.Publishers))
	}
	return tw.Flush()
}

// psJSON is one line of `ps --format json`: the daemon's summary plus the
// derived text columns Compose also prints.
type psJSON struct {
	api.ContainerSummary
	Names      string
	Status     string
	Ports      string
	RunningFor string
}

func psJSONOf(c api.ContainerSummary) psJSON {
	if c.Publishers == nil {
		c.Publishers = []api.Publisher{}
	}
	return psJSON{
		ContainerSummary: c,
		Names:            c.Name,
		Status:           statusText(c),
		Ports:            portsText(c.Publishers),
		RunningFor:       createdText(c.CreatedAt),
	}
}

// shortName is how Compose labels a container in logs: "web-1" for
// PROJECT-web-1, the full name for a container_name.
func shortName(project, service, name string) string {
	if project != "" && service != "" && strings.HasPrefix(name, project+"-"+service+"-") {
		return strings.TrimPrefix(name, project+"-")
	}
	return name
}

// logPrinter writes container output lines with a "web-1  | " prefix,
// padded to the longest name seen so far, coloured per name on a terminal.
// It is safe for concurrent use.
type logPrinter struct {
	w          io.Writer
	color      bool
	noPrefix   bool
	timestamps bool

	mu    sync.Mutex // guards width and w
	width int
}

func newLogPrinter(w io.Writer, color bool, names []string) *logPrinter {
	p := &logPrinter{w: w, color: color}
	for _, n := range names {
		p.width = max(p.width, utf8.RuneCountInString(n))
	}
	return p
}

// prefix returns name's prefix; the caller holds mu.
func (p *logPrinter) prefixLocked(name string) string {
	p.width = max(p.width, utf8.RuneCountInString(name))
	pad := p.width - utf8.RuneCountInString(name)
	s := name + strings.Repeat(" ", pad+2) + "| "
	if p.color {
		s = colorize(colorFor(name), s)
	}
	return s
}

// Line prints one line of container name's output.
func (p *logPrinter) Line(name string, t time.Time, line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	if !p.noPrefix {
		b.WriteString(p.prefixLocked(name))
	}
	if p.timestamps && !t.IsZero() {
		b.WriteString(t.UTC().Format(time.RFC3339Nano))
		b.WriteByte(' ')
	}
	b.WriteString(line)
	b.WriteByte('\n')
	io.WriteString(p.w, b.String())
}

// Note prints a line about a container without its prefix's bar, as
// Compose does for "web-1 exited with code 0".
func (p *logPrinter) Note(name, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := name + " " + text
	if p.color {
		s = colorize(colorFor(name), name) + " " + text
	}
	io.WriteString(p.w, s+"\n")
}
