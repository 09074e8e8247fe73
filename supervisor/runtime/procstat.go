package runtime

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// ProcStat is what berth reads from /proc/<pid>/stat.
type ProcStat struct {
	State     byte   // field 3: R, S, D, Z, T, ...
	PPid      int    // field 4
	StartTime uint64 // field 22, in clock ticks since boot: with the pid, it names one process
}

// ReadProcStat parses /proc/<pid>/stat. The command name (field 2) may
// hold spaces and parentheses, so fields are counted from the last ')'.
func ReadProcStat(pid int) (ProcStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ProcStat{}, err
	}
	return parseProcStat(b)
}

func parseProcStat(b []byte) (ProcStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return ProcStat{}, fmt.Errorf("malformed /proc stat %q", b)
	}
	f := bytes.Fields(b[i+2:])
	// f[0] is field 3 (state), f[1] field 4 (ppid); field 22 is f[19].
	if len(f) < 20 || len(f[0]) != 1 {
		return ProcStat{}, fmt.Errorf("malformed /proc stat %q", b)
	}
	ppid, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return ProcStat{}, fmt.Errorf("malformed /proc stat parent: %w", err)
	}
	st, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return ProcStat{}, fmt.Errorf("malformed /proc stat start time: %w", err)
	}
	return ProcStat{State: f[0][0], PPid: ppid, StartTime: st}, nil
}
