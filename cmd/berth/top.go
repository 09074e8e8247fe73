package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
)

func init() { register(newTopCmd) }

// clockTicks is USER_HZ, the unit of the times in /proc/PID/stat: 100 on
// every Linux architecture berth runs on.
const clockTicks = 100

// procInfo is one process as `top` shows it.
type procInfo struct {
	PID, PPID int
	UID       int
	TTY       string
	CPUTicks  uint64    // utime + stime
	Start     time.Time // when it started
	Cmd       string
}

// readProc reads pid's entry below procRoot (normally /proc). bootTime is
// the host's boot time.
func readProc(procRoot string, pid int, bootTime time.Time) (procInfo, error) {
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return procInfo{}, err
	}
	pi := procInfo{PID: pid}
	// The command name (field 2) is in parentheses and may hold spaces
	// and parentheses itself: the fields go on after the last ')'.
	open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || end < open {
		return procInfo{}, fmt.Errorf("%s/stat: unexpected format", dir)
	}
	comm := string(stat[open+1 : end])
	f := strings.Fields(string(stat[end+1:]))
	// f[0] is field 3 (state); field n is f[n-3].
	if len(f) < 20 {
		return procInfo{}, fmt.Errorf("%s/stat: too few fields", dir)
	}
	pi.PPID, _ = strconv.Atoi(f[1])
	ttyNr, _ := strconv.ParseUint(f[4], 10, 64)
	pi.TTY = ttyName(ttyNr)
	utime, _ := strconv.ParseUint(f[11], 10, 64)
	stime, _ := strconv.ParseUint(f[12], 10, 64)
	pi.CPUTicks = utime + stime
	start, _ := strconv.ParseUint(f[19], 10, 64)
	pi.Start = bootTime.Add(time.Duration(start) * time.Second / clockTicks)

	if st, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
		for _, line := range strings.Split(string(st), "\n") {
			if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
				if fs := strings.Fields(rest); len(fs) > 0 {
					pi.UID, _ = strconv.Atoi(fs[0])
				}
			}
		}
	}
	cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
	cmdline = bytes.TrimRight(cmdline, "\x00")
	if len(cmdline) == 0 {
		pi.Cmd = "[" + comm + "]"
	} else {
		pi.Cmd = string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
	}
	return pi, nil
}

// ttyName names a tty_nr from /proc/PID/stat as ps does, "?" for none.
func ttyName(nr uint64) string {
	if nr == 0 {
		return "?"
	}
	major := (nr >> 8) & 0xfff
	minor := (nr & 0xff) | ((nr >> 12) & 0xfff00)
	switch {
	case major == 136:
		return fmt.Sprintf("pts/%d", minor)
	case major == 4 && minor < 64:
		return fmt.Sprintf("tty%d", minor)
	}
	return "?"
}

// bootTime reads btime from procRoot/stat.
func bootTime(procRoot string) (time.Time, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, "stat"))
	if err != nil {
		return time.Time{}, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "btime "); ok {
			sec, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
			if err != nil {
				return time.Time{}, err
			}
			return time.Unix(sec, 0), nil
		}
	}
	return time.Time{}, fmt.Errorf("%s/stat: no btime", procRoot)
}

// userName is the host's name for uid, or the number.
var userName = func(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}

// writeTop prints processes as `docker top` (ps -ef) does.
func writeTop(w io.Writer, procs []procInfo) error {
	sort.Slice(procs, func(i, j int) bool { return procs[i].PID < procs[j].PID })
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "UID\tPID\tPPID\tC\tSTIME\tTTY\tTIME\tCMD")
	t := now()
	for _, p := range procs {
		cpu := time.Duration(p.CPUTicks) * time.Second / clockTicks
		c := 0
		if el := t.Sub(p.Start); el > 0 {
			c = int(cpu * 100 / el)
		}
		stime := p.Start.Local().Format("15:04")
		if y, m, d := p.Start.Local().Date(); y != t.Local().Year() || m != t.Local().Month() || d != t.Local().Day() {
			stime = p.Start.Local().Format("Jan02")
		}
		s := int64(cpu / time.Second)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%02d:%02d:%02d\t%s\n", userName(p.UID), p.PID, p.PPID, c, stime, p.TTY,
			s/3600, s/60%60, s%60, p.Cmd)
	}
	return tw.Flush()
}

func newTopCmd(g *globalOptions) *cobra.Command {
	var po projectOptions
	cmd := &cobra.Command{
		Use:   "top [SERVICE...]",
		Short: "Show the processes running in a project's containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := po.resolveServices(cmd.Context(), args)
			if err != nil {
				return err
			}
			rt, err := openRuntime(g)
			if err != nil {
				return err
			}
			cs, err := runtimeContainers(rt, st.Name, args)
			if err != nil {
				return err
			}
			bt, err := bootTime("/proc")
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			first := true
			for _, c := range cs {
				if c.State.Status != specs.StateRunning {
					continue
				}
				ct, err := rt.Load(c.Name)
				if err != nil {
					return fmt.Errorf("container %s: %w", c.Name, err)
				}
				cg := ct.Cgroup()
				if cg == nil {
					return fmt.Errorf("container %s: no cgroup", c.Name)
				}
				pids, err := cg.Procs()
				if err != nil {
					return fmt.Errorf("container %s: %w", c.Name, err)
				}
				var procs []procInfo
				for _, pid := range pids {
					if pi, err := readProc("/proc", pid, bt); err == nil {
						procs = append(procs, pi)
					}
				}
				if !first {
					fmt.Fprintln(out)
				}
				first = false
				fmt.Fprintln(out, c.Name)
				if err := writeTop(out, procs); err != nil {
					return err
				}
			}
			return nil
		},
	}
	po.addFlags(cmd.Flags())
	return cmd
}
