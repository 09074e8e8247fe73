//go:build linux && cgo

package nsenter

/*
void berth_nsenter(void);

// Runs before main and before the Go runtime starts any thread.
__attribute__((constructor)) static void berth_nsenter_ctor(void) { berth_nsenter(); }
*/
import "C"

// Available reports whether the constructor is linked in.
const Available = true
