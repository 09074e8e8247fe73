package watch

import (
	"os"
	"path/filepath"
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

func write(t testing.TB, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
