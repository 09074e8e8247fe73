package volumes

import (
	"os"
	"testing"
)

// TestMain runs the test binary as the copy-in child of
// TestPrivilegedCopyInInterrupted when BERTH_TEST_COPYIN_CHILD says so
// (it never returns), and otherwise runs the tests.
func TestMain(m *testing.M) {
	if cfg := os.Getenv("BERTH_TEST_COPYIN_CHILD"); cfg != "" {
		copyInChild(cfg)
	}
	os.Exit(m.Run())
}
