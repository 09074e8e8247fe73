// Command berth is a declarative multi-container orchestrator: a Compose
// file goes in, a running stack comes out, with berth as its own
// container runtime.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "berth: under construction")
	os.Exit(1)
}
