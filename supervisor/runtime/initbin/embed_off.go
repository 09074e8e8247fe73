//go:build !berth_init

package initbin

// Binary is nil: this build re-executes berth itself as the init.
var Binary []byte
