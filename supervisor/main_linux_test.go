package supervisor

import (
	"os"
	"testing"
)

// TestMain runs the test binary as one of the helper processes some tests
// re-execute it as (the role is in the environment), and otherwise runs
// the tests. The helpers never return.
func TestMain(m *testing.M) {
	if role := os.Getenv("BERTH_DMN_TEST_ROLE"); role != "" {
		daemonHelperProcess(role)
	}
	if role := os.Getenv("BERTH_KEEPER_TEST_ROLE"); role != "" {
		keeperHelperProcess(role)
	}
	if root := os.Getenv("BERTH_ENG_HELPER_ROOT"); root != "" {
		engineCrashHelper(root)
	}
	os.Exit(m.Run())
}
