package netstack

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/spec"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// threadNetNS lists the network namespaces the process's threads are in.
func threadNetNS(t *testing.T) map[string]int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, task := range tasks {
		if ns, err := os.Readlink(filepath.Join("/proc/self/task", task.Name(), "ns/net")); err == nil {
			out[ns]++
		}
	}
	return out
}

// TestNetNSFilesAndThreads makes namespaces, sets a sysctl in each and
// removes them, many at once: no thread may be left in one of them (or in
// any namespace no thread was in before), and the host's sysctl is
// unchanged.
func TestNetNSFilesAndThreads(t *testing.T) {
	requirePrivileged(t)
	// Not simply /proc/self/ns/net: other tests of the package may have
	// wedged the main thread in a namespace of theirs.
	before := threadNetNS(t)
	const key = "/proc/sys/net/ipv4/ip_unprivileged_port_start"
	hostVal, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 16)
	paths := make([]string, 16)
	for i := range errs {
		paths[i] = filepath.Join(dir, "ns"+strings.Repeat("x", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := CreateNetNS(paths[i]); err != nil {
				errs[i] = err
				return
			}
			errs[i] = SetNetNSSysctls(paths[i], map[string]string{"net.ipv4.ip_unprivileged_port_start": "1234"})
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, p := range paths {
			RemoveNetNS(p)
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	ours := map[string]bool{}
	for _, p := range paths {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		ours[fmt.Sprintf("net:[%d]", st.Ino)] = true
	}
	for ns, n := range threadNetNS(t) {
		if ours[ns] || before[ns] == 0 {
			t.Errorf("%d threads left in namespace %s (before: %v)", n, ns, before)
		}
	}
	if now, _ := os.ReadFile(key); string(now) != string(hostVal) {
		t.Errorf("host sysctl changed: %q -> %q", hostVal, now)
	}
	for _, p := range paths[:2] {
		if !IsNetNSMounted(p) {
			t.Fatalf("%s is not a netns mount", p)
		}
		out, err := exec.Command("nsenter", "--net="+p, "cat", key).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "1234" {
			t.Errorf("sysctl inside %s: %q %v", p, out, err)
		}
	}
	if err := CreateNetNS(paths[0]); err == nil {
		t.Error("CreateNetNS over an existing file succeeded")
	}
	if err := SetNetNSSysctls(filepath.Join(dir, "missing"), map[string]string{"net.ipv4.ip_forward": "1"}); err == nil {
		t.Error("SetNetNSSysctls on a missing file succeeded")
	}
	for _, p := range paths {
		if err := RemoveNetNS(p); err != nil {
			t.Fatal(err)
		}
		if IsNetNSMounted(p) {
			t.Errorf("%s still mounted", p)
		}
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists: %v", p, err)
		}
		if err := RemoveNetNS(p); err != nil {
			t.Errorf("second RemoveNetNS: %v", err)
		}
	}
	if IsNetNSMounted(dir) {
		t.Error("a directory counts as a netns mount")
	}
}

// TestSecondManagerOwnTable runs two Managers on one root, the second with
// a state dir and table of its own (as the image builder does): each
// rebuilds and removes only its own table.
func TestSecondManagerOwnTable(t *testing.T) {
	e := newEnv(t, nil)
	if _, err := New(Config{Root: e.root, Table: "bad name"}); err == nil {
		t.Error("a table name with a space was accepted")
	}
	if _, err := New(Config{Root: e.root, Table: strings.Repeat("t", 256)}); err == nil {
		t.Error("a 256-byte table name was accepted")
	}
	n1 := e.network("p", spec.Network{Name: "default"})
	table2 := e.m.Table() + "_second"
	m2, err := New(Config{Root: e.root, StateDir: filepath.Join(e.root, "second"), Table: table2, Upstreams: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if m2.Table() != table2 {
		t.Fatalf("Table() = %s, want %s", m2.Table(), table2)
	}
	t.Cleanup(func() {
		m2.RemoveAll()
		m2.Close()
		if ok, _ := tableExists(table2); ok {
			t.Errorf("leak: nft table %s", table2)
			deleteTable(table2)
		}
	})
	n2, err := m2.EnsureNetwork("build-1", spec.Network{Name: "default"})
	if err != nil {
		t.Fatal(err)
	}
	e.links[n2.Bridge] = true
	if n2.Subnet.Overlaps(n1.Subnet) || n2.Bridge == n1.Bridge {
		t.Fatalf("second manager's network collides: %+v vs %+v", n2, n1)
	}
	for _, tb := range []string{e.m.Table(), table2} {
		if ok, err := tableExists(tb); err != nil || !ok {
			t.Fatalf("table %s missing (err %v)", tb, err)
		}
	}
	// Each Manager's table holds only its own network's rules.
	if got := nftRuleCount(t, table2, "postrouting"); got != 3 {
		t.Errorf("second table: %d postrouting rules, want 3 (one network)", got)
	}
	// A change in one Manager does not rewrite the other's table.
	_, a := e.container(n1.ID, AttachOptions{Container: "p-web-1"})
	if err := e.m.Detach(n1.ID, a.Container); err != nil {
		t.Fatal(err)
	}
	if got := nftRuleCount(t, table2, "postrouting"); got != 3 {
		t.Errorf("second table after the first manager changed: %d postrouting rules, want 3", got)
	}
	if err := m2.RemoveAll(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := tableExists(table2); ok {
		t.Error("RemoveAll left the second table")
	}
	if ok, _ := tableExists(e.m.Table()); !ok {
		t.Error("the second manager's RemoveAll deleted the first's table")
	}
	if got := nftRuleCount(t, e.m.Table(), "postrouting"); got != 3 {
		t.Errorf("first table: %d postrouting rules after the second's removal, want 3", got)
	}
	if len(e.m.Networks()) != 1 {
		t.Errorf("first manager's networks: %v", e.m.Networks())
	}
}

// TestSubnetChoiceLockedAcrossProcesses holds the allocation lock file as
// another process would (a separate open file: flock is per open file)
// and checks that EnsureNetwork waits for it: two processes must not
// pick the same free subnet at once.
func TestSubnetChoiceLockedAcrossProcesses(t *testing.T) {
	e := newEnv(t, nil)
	old := allocLockFile
	allocLockFile = filepath.Join(t.TempDir(), "alloc.lock")
	t.Cleanup(func() { allocLockFile = old })
	f, err := os.OpenFile(allocLockFile, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		n, err := e.m.EnsureNetwork("p", spec.Network{Name: "default"})
		if err == nil {
			e.links[n.Bridge] = true // read by cleanup, after <-done
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("EnsureNetwork did not wait for the lock held elsewhere (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("EnsureNetwork still waiting after the lock was released")
	}
}

// TestNetNSIPv4Only: in a namespace CreateNetNS made, the interface
// Attach plugs in (eth0) has IPv6 off and no IPv6 address, as on an
// IPv4-only Docker network, while lo keeps ::1.
func TestNetNSIPv4Only(t *testing.T) {
	e := newEnv(t, nil)
	n := e.network("p", spec.Network{Name: "default"})
	path := filepath.Join(t.TempDir(), "ns")
	if err := CreateNetNS(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := RemoveNetNS(path); err != nil {
			t.Error(err)
		}
	})
	a, err := e.m.Attach(n.ID, AttachOptions{Container: "p-web-1", NetNSPath: path})
	if err != nil {
		t.Fatal(err)
	}
	e.links[a.HostIf] = true
	h := netlinkIn(t, path)
	v6 := func(name string) []string {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		addrs, err := h.AddrList(l, netlink.FAMILY_V6)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range addrs {
			out = append(out, a.IPNet.String())
		}
		return out
	}
	if got := v6(a.IfName); len(got) != 0 {
		t.Errorf("%s has IPv6 addresses %v, want none", a.IfName, got)
	}
	if got := v6("lo"); len(got) != 1 || got[0] != "::1/128" {
		t.Errorf("lo IPv6 addresses %v, want [::1/128]", got)
	}
	var disabled string
	if err := inOtherNetNS(func() error {
		if err := enterNetNS(path); err != nil {
			return err
		}
		b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + a.IfName + "/disable_ipv6")
		disabled = strings.TrimSpace(string(b))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if disabled != "1" {
		t.Errorf("%s disable_ipv6 = %q, want 1", a.IfName, disabled)
	}
}
