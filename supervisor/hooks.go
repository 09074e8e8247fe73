package supervisor

import (
	"os"

	"github.com/berth-dev/berth/supervisor/runtime"
)

// execOpts gives an exec'd process (a hook or a health probe) w as its
// stdout and stderr.
func execOpts(w *os.File) runtime.ExecOpts {
	return runtime.ExecOpts{IO: runtime.IO{Stdout: w, Stderr: w}}
}
