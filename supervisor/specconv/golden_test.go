package specconv

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/volumes"
	"github.com/opencontainers/runtime-spec/specs-go"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

// TestGolden pins the whole spec for a typical service, so a change to any
// default shows up in review. The seccomp profile (moby's, resolved for the
// host's kernel) and the host-dependent thermal_throttle masks are left
// out of the file.
func TestGolden(t *testing.T) {
	swap := int64(-1)
	svc := spec.Service{
		Name:        "web",
		Command:     []string{"httpd", "-f", "-p", "8080"},
		Environment: []string{"MODE=prod"},
		WorkingDir:  "/www",
		User:        "www-data",
		Hostname:    "web",
		CapAdd:      []string{"NET_ADMIN"},
		CapDrop:     []string{"MKNOD"},
		ReadOnly:    true,
		SecurityOpt: []string{"no-new-privileges:true"},
		Ulimits:     []spec.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}},
		Sysctls:     map[string]string{"net.core.somaxconn": "512"},
		ShmSize:     128 << 20,
		Init:        true,
		StopSignal:  "SIGQUIT",
		Tmpfs:       []string{"/run:size=16m"},
		Resources: spec.Resources{
			NanoCPUs: 500_000_000, CPUShares: 512, MemoryLimit: 256 << 20, MemorySwap: swap,
			MemoryReservation: 128 << 20, PidsLimit: 200, OomScoreAdj: 100,
		},
	}
	o := baseOpts()
	o.Image = ImageConfig{Entrypoint: []string{"/bin/busybox"}, Env: []string{"PATH=/bin"}}
	o.NetNSPath = "/run/berth/netns/demo-web-1"
	run, err := volumes.ParseTmpfs(svc.Tmpfs[0]) // as volumes.Prepare passes it
	if err != nil {
		t.Fatal(err)
	}
	o.Mounts = []specs.Mount{run, {Destination: "/etc/resolv.conf", Type: "bind", Source: "/var/lib/berth/c/resolv.conf", Options: []string{"rbind", "ro"}}}
	s, warns := convert(t, svc, o)
	if len(warns) != 0 {
		t.Errorf("warnings: %q", warns)
	}
	if s.Linux.Seccomp == nil {
		t.Fatal("no seccomp profile")
	}
	s.Linux.Seccomp = nil
	var masked []string
	for _, p := range s.Linux.MaskedPaths {
		if !strings.HasSuffix(p, "/thermal_throttle") {
			masked = append(masked, p)
		}
	}
	s.Linux.MaskedPaths = masked
	got, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	file := filepath.Join("testdata", "web.json")
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGolden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("spec differs from %s (go test -run TestGolden -update, then review the diff):\n%s", file, got)
	}
}
