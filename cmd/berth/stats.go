package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	units "github.com/docker/go-units"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/supervisor/runtime"
	"github.com/berth-dev/berth/supervisor/runtime/cgroups"
)

func init() { register(newStatsCmd) }

// statSample is one reading of a container's usage.
type statSample struct {
	Name    string
	At      time.Time
	Cg      cgroups.Stats
	NetRx   uint64
	NetTx   uint64
	HostMem uint64 // MemTotal, for containers without a memory limit
}

// statsRow is one line of `stats`: Docker's columns, as strings in
// --format json like `docker stats --format json`.
type statsRow struct {
	Container string
	Name      string
	CPUPerc   string
	MemUsage  string
	MemPerc   string
	NetIO     string
	BlockIO   string
	PIDs      string
}

// statsRowOf computes a row from two samples of the same container (prev
// may be zero: CPU % is then 0).
func statsRowOf(prev, cur statSample) statsRow {
	cpu := 0.0
	if !prev.At.IsZero() && cur.At.After(prev.At) && cur.Cg.CPUUsageNanos >= prev.Cg.CPUUsageNanos {
		cpu = float64(cur.Cg.CPUUsageNanos-prev.Cg.CPUUsageNanos) / float64(cur.At.Sub(prev.At).Nanoseconds()) * 100
	}
	limit := cur.Cg.MemoryLimit
	if limit == 0 || (cur.HostMem > 0 && limit > cur.HostMem) {
		limit = cur.HostMem
	}
	used := cur.Cg.MemoryUsage
	if cur.Cg.MemoryCache < used {
		used -= cur.Cg.MemoryCache
	}
	memPerc := 0.0
	if limit > 0 {
		memPerc = float64(used) / float64(limit) * 100
	}
	return statsRow{
		Container: cur.Name,
		Name:      cur.Name,
		CPUPerc:   fmt.Sprintf("%.2f%%", cpu),
		MemUsage:  units.BytesSize(float64(used)) + " / " + units.BytesSize(float64(limit)),
		MemPerc:   fmt.Sprintf("%.2f%%", memPerc),
		NetIO:     units.HumanSizeWithPrecision(float64(cur.NetRx), 3) + " / " + units.HumanSizeWithPrecision(float64(cur.NetTx), 3),
		BlockIO:   units.HumanSizeWithPrecision(float64(cur.Cg.IOReadBytes), 3) + " / " + units.HumanSizeWithPrecision(float64(cur.Cg.IOWriteBytes), 3),
		PIDs:      strconv.FormatUint(cur.Cg.Pids, 10),
	}
}

func writeStatsTable(w io.Writer, rows []statsRow) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tNET I/O\tBLOCK I/O\tPIDS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.CPUPerc, r.MemUsage, r.MemPerc, r.NetIO, r.BlockIO, r.PIDs)
	}
	return tw.Flush()
}

// netDev sums the received and sent bytes of every interface but lo in
// a /proc/PID/net/dev file (the container's network namespace).
func netDev(path string) (rx, tx uint64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		fs := strings.Fields(rest)
		if len(fs) < 9 {
			continue
		}
		r, _ := strconv.ParseUint(fs[0], 10, 64)
		t, _ := strconv.ParseUint(fs[8], 10, 64)
		rx += r
		tx += t
	}
	return rx, tx, sc.Err()
}

// memTotal reads MemTotal from /proc/meminfo, in bytes.
func memTotal() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			fs := strings.Fields(rest)
			if len(fs) > 0 {
				kb, _ := strconv.ParseUint(fs[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// sampleStats reads every running container of cs.
func sampleStats(rt *runtime.Runtime, cs []rtContainer, hostMem uint64) []statSample {
	var out []statSample
	for _, c := range cs {
		if c.State.Status != specs.StateRunning {
			continue
		}
		ct, err := rt.Load(c.Name)
		if err != nil {
			continue
		}
		st, err := ct.Stats()
		if err != nil {
			continue
		}
		s := statSample{Name: c.Name, At: time.Now(), Cg: *st, HostMem: hostMem}
		if c.State.Pid > 0 {
			s.NetRx, s.NetTx, _ = netDev(filepath.Join("/proc", strconv.Itoa(c.State.Pid), "net", "dev"))
		}
		out = append(out, s)
	}
	return out
}

func newStatsCmd(g *globalOptions) *cobra.Command {
	var (
		po       projectOptions
		noStream bool
		format   string
	)
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [SERVICE...]",
		Short: "Show the resource usage of a project's containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			switch format {
			case "", "table", "json":
			default:
				return fmt.Errorf("--format: unknown format %q (want table or json)", format)
			}
			st, err := po.resolveServices(cmd.Context(), args)
			if err != nil {
				return err
			}
			rt, err := openRuntime(g)
			if err != nil {
				return err
			}
			hostMem := memTotal()
			out := cmd.OutOrStdout()
			tty := isTerminal(out)
			ctx, cancel := signalContext()
			defer cancel()
			prev := map[string]statSample{}
			first := true
			for {
				cs, err := runtimeContainers(rt, st.Name, args)
				if err != nil {
					return err
				}
				samples := sampleStats(rt, cs, hostMem)
				if first {
					// CPU % needs two readings.
					for _, s := range samples {
						prev[s.Name] = s
					}
					first = false
					if !sleepCtx(ctx, 500*time.Millisecond) {
						return nil
					}
					continue
				}
				rows := make([]statsRow, 0, len(samples))
				for _, s := range samples {
					rows = append(rows, statsRowOf(prev[s.Name], s))
					prev[s.Name] = s
				}
				if format == "json" {
					enc := json.NewEncoder(out)
					for _, r := range rows {
						if err := enc.Encode(r); err != nil {
							return err
						}
					}
				} else {
					if tty && !noStream {
						fmt.Fprint(out, "\x1b[2J\x1b[H")
					}
					if err := writeStatsTable(out, rows); err != nil {
						return err
					}
				}
				if noStream {
					return nil
				}
				if !sleepCtx(ctx, time.Second) {
					return nil
				}
			}
		},
	}
	po.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&noStream, "no-stream", false, "print one reading and exit")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json (one object per line)")
	cmd.Flags().Bool("no-trunc", false, "accepted for Compose compatibility")
	return cmd
}

// sleepCtx sleeps for d, or returns false when ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
