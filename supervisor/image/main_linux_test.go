package image

import (
	"os"
	"testing"
)

// TestMain runs the test binary as a child process some tests start (the
// role is in BERTH_IMAGE_CHILD), and otherwise runs the tests. The
// children never return.
func TestMain(m *testing.M) {
	switch mode := os.Getenv("BERTH_IMAGE_CHILD"); mode {
	case "":
	case "unprivileged-unpack":
		unprivilegedUnpackChild()
	default:
		childPull(mode)
	}
	os.Exit(m.Run())
}
