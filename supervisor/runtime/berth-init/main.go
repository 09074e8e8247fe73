// Command berth-init is the container init of berth's runtime, built on
// its own (CGO_ENABLED=0) and embedded in berth (see ../initbin). The
// runtime package's init() does all the work when the runtime starts it;
// run by hand, it only says so.
package main

import (
	"fmt"
	"os"

	_ "github.com/berth-dev/berth/supervisor/runtime"
)

func main() {
	fmt.Fprintln(os.Stderr, "berth-init: the container init of berth; berth starts it, not a user")
	os.Exit(2)
}
