//go:build !berth_init

package initbin

// Binary, ExecBinary and CBinary are nil: this build re-executes berth
// itself as the init and for exec.
var Binary, ExecBinary, CBinary []byte
