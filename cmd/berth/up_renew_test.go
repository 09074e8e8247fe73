package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// up -V reaches the daemon as RenewAnonVolumes; with --no-recreate it is
// refused before reaching it.
func TestUpRenewAnonVolumes(t *testing.T) {
	d := newFakeDaemon(t)
	f := filepath.Join(stackDir(t, demoYAML), "compose.yaml")
	if _, _, err := d.run("up", "-d", "-f", f, "--renew-anon-volumes", "--no-recreate"); err == nil ||
		!strings.Contains(err.Error(), "--renew-anon-volumes and --no-recreate are incompatible") {
		t.Errorf("up -V --no-recreate: error %v", err)
	}
	if len(d.ups) != 0 {
		t.Fatalf("an invalid up reached the daemon")
	}
	for _, flag := range []string{"-V", "--renew-anon-volumes"} {
		if _, _, err := d.run("up", "-d", "-f", f, flag); err != nil {
			t.Fatalf("up %s: %v", flag, err)
		}
	}
	if _, _, err := d.run("up", "-d", "-f", f); err != nil {
		t.Fatal(err)
	}
	if len(d.ups) != 3 || !d.ups[0].Options.RenewAnonVolumes || !d.ups[1].Options.RenewAnonVolumes || d.ups[2].Options.RenewAnonVolumes {
		t.Errorf("up requests: %d, RenewAnonVolumes not as given", len(d.ups))
	}
}
