package watch

import (
	"os"
	"testing"
)

func requirePrivileged(t testing.TB) {
	t.Helper()
	if os.Getenv("BERTH_PRIVILEGED") != "1" {
		if os.Getenv("CI") != "" {
			t.Fatal("privileged test: CI must set BERTH_PRIVILEGED=1")
		}
		t.Skip("privileged test: set BERTH_PRIVILEGED=1 and run as root")
	}
	if os.Geteuid() != 0 {
		t.Fatal("BERTH_PRIVILEGED=1 needs root")
	}
}
