package runtime

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// procStat is what berth reads from /proc/<pid>/stat.
type procStat struct {
	State     byte   // R, S, D, Z, T, ...
	StartTime uint64 // field 22, in clock ticks since boot
}

// readProcStat parses /proc/<pid>/stat. The command name (field 2) may
// hold spaces and parentheses, so fields are counted from the last ')'.
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(b)
}

func parseProcStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return procStat{}, fmt.Errorf("malformed /proc stat %q", b)
	}
	f := bytes.Fields(b[i+2:])
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("malformed /proc stat %q", b)
	}
	st, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("malformed /proc stat start time: %w", err)
	}
	return procStat{State: f[0][0], StartTime: st}, nil
}
