package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A netns made elsewhere (netstack hands one over by path) is joined,
// not replaced.
func TestJoinNetworkNamespace(t *testing.T) {
	requirePrivileged(t)
	checkNoLeaks(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("iproute2 not installed")
	}
	name := fmt.Sprintf("berth-rt-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "mtu", "1234").CombinedOutput(); err != nil {
		t.Fatalf("ip link set: %v %s", err, out)
	}
	bundle := makeRootfs(t)
	spec := shSpec(`cat /sys/class/net/lo/mtu; grep -c lo: /proc/net/dev`)
	for i, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			spec.Linux.Namespaces[i].Path = "/run/netns/" + name
		}
	}
	wantLines(t, mustRun(t, spec, bundle), "1234", "1")
}
