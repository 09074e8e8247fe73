package netstack

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/spec"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestServiceDiscoveryHTTP(t *testing.T) {
	up, _ := stubUpstream(t)
	e := newEnv(t, []string{up})
	n := e.network("shop", spec.Network{Name: "default"})

	web, wa := e.container(n.ID, AttachOptions{Container: "shop-web-1", Service: "web"})
	e.httpd(web, "hello from web\n")
	client, ca := e.container(n.ID, AttachOptions{Container: "shop-client-1", Service: "client"})
	e.writeFiles(client, FilesOptions{Hostname: "client", DNSServer: ca.DNS, Addresses: []netip.Addr{ca.Address.Addr()}, Names: ca.Names})

	addrs, err := nslookup(client, "web", n.Gateway)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 1 || addrs[0] != wa.Address.Addr().String() {
		t.Fatalf("web resolves to %v, want %s", addrs, wa.Address.Addr())
	}
	body, err := fetch(client, "http://web/")
	if err != nil {
		t.Fatal(err)
	}
	if body != "hello from web\n" {
		t.Fatalf("got %q", body)
	}
	// Forwarded names go to the (stub) upstream.
	if addrs, err := nslookup(client, "ext.test", n.Gateway); err != nil || strings.Join(addrs, ",") != "198.51.100.7" {
		t.Fatalf("ext.test via upstream: %v %v", addrs, err)
	}
	// A stopped container stops resolving.
	e.m.Unregister("shop-web-1")
	if addrs, err := nslookup(client, "web", n.Gateway); err == nil {
		t.Fatalf("web still resolves after Unregister: %v", addrs)
	}
}

func TestScaledServiceAliasesStaticAddress(t *testing.T) {
	e := newEnv(t, nil)
	n := e.network("shop", spec.Network{Name: "back", IPAM: []spec.IPAMConfig{{Subnet: "10.214.77.0/24", IPRange: "10.214.77.64/26", Gateway: "10.214.77.254"}}})
	if n.Subnet.String() != "10.214.77.0/24" || n.Gateway.String() != "10.214.77.254" {
		t.Fatalf("network = %+v", n)
	}
	var want []string
	for i := 1; i <= 3; i++ {
		_, a := e.container(n.ID, AttachOptions{Container: "shop-api-" + itoa(i), Service: "api", Aliases: []string{"backend"}})
		want = append(want, a.Address.Addr().String())
		if !n.IPRange.Contains(a.Address.Addr()) {
			t.Errorf("address %s outside ip_range %s", a.Address, n.IPRange)
		}
	}
	sort.Strings(want)
	client, ca := e.container(n.ID, AttachOptions{Container: "shop-client-1", IPv4: netip.MustParseAddr("10.214.77.10"), MAC: "02:42:ac:11:00:0a"})
	if ca.Address.Addr().String() != "10.214.77.10" || ca.MAC != "02:42:ac:11:00:0a" {
		t.Fatalf("static address/mac not honoured: %+v", ca)
	}
	out, err := run(client, 5*time.Second, "ip", "addr", "show", "eth0")
	if err != nil || !strings.Contains(out, "10.214.77.10/24") || !strings.Contains(out, "02:42:ac:11:00:0a") {
		t.Fatalf("eth0 in the container: %v\n%s", err, out)
	}
	for _, name := range []string{"api", "backend"} {
		got, err := nslookup(client, name, n.Gateway)
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s = %v, want every replica %v", name, got, want)
		}
	}
	got, err := nslookup(client, "shop-api-2", n.Gateway)
	if err != nil || len(got) != 1 {
		t.Errorf("container name: %v %v", got, err)
	}
	// The static address is taken.
	ns := e.netns()
	if _, err := e.m.Attach(n.ID, AttachOptions{Container: "x", NetNSPath: nsPath(ns), IPv4: netip.MustParseAddr("10.214.77.10")}); !errors.Is(err, ErrAddressInUse) {
		t.Errorf("second container on a taken static address: err = %v", err)
	}
}

func TestInternalNetworkHasNoWayOut(t *testing.T) {
	e := newEnv(t, nil)
	outAddr := e.outside("outside\n")
	pub := e.network("p", spec.Network{Name: "front"})
	in := e.network("p", spec.Network{Name: "back", Internal: true})
	if in.Masquerade || !pub.Masquerade {
		t.Fatalf("masquerade: internal %v, front %v", in.Masquerade, pub.Masquerade)
	}

	// Control: a container on a normal network reaches the outside
	// (masqueraded, forwarded).
	open, _ := e.container(pub.ID, AttachOptions{Container: "p-open-1"})
	if body, err := fetch(open, "http://"+outAddr.String()+"/"); err != nil || body != "outside\n" {
		t.Fatalf("from a normal network: %q %v", body, err)
	}
	closed, ca := e.container(in.ID, AttachOptions{Container: "p-closed-1"})
	if ca.Gateway.IsValid() {
		t.Errorf("internal attachment has a gateway %s", ca.Gateway)
	}
	if out, _ := run(closed, 5*time.Second, "ip", "route"); strings.Contains(out, "default") {
		t.Errorf("internal container has a default route:\n%s", out)
	}
	if body, err := fetchWithin(closed, "http://"+outAddr.String()+"/", 2*time.Second); err == nil {
		t.Fatalf("internal network reached the outside: %q", body)
	}
	// Even with a route added by hand, forwarding out is dropped.
	if out, err := run(closed, 5*time.Second, "ip", "route", "add", "default", "via", in.Gateway.String()); err != nil {
		t.Fatalf("add route: %v %s", err, out)
	}
	if body, err := fetchWithin(closed, "http://"+outAddr.String()+"/", 2*time.Second); err == nil {
		t.Fatalf("internal network reached the outside with a manual route: %q", body)
	}
	// Containers on the internal network still find each other.
	peer, pa := e.container(in.ID, AttachOptions{Container: "p-peer-1", Service: "peer"})
	e.httpd(peer, "peer\n")
	if got, err := nslookup(closed, "peer", in.Gateway); err != nil || got[0] != pa.Address.Addr().String() {
		t.Fatalf("peer on the internal network: %v %v", got, err)
	}
	if body, err := fetch(closed, "http://"+pa.Address.Addr().String()+"/"); err != nil || body != "peer\n" {
		t.Fatalf("internal peer fetch: %q %v", body, err)
	}
}

func TestTwoProjectsStayApart(t *testing.T) {
	e := newEnv(t, nil)
	a := e.network("alpha", spec.Network{Name: "default"})
	b := e.network("beta", spec.Network{Name: "default"})
	if a.Bridge == b.Bridge || a.Subnet.Overlaps(b.Subnet) {
		t.Fatalf("projects share bridge or subnet: %+v %+v", a, b)
	}
	_, wa := e.container(a.ID, AttachOptions{Container: "alpha-web-1", Service: "web"})
	wbNS, wb := e.container(b.ID, AttachOptions{Container: "beta-web-1", Service: "web"})
	ca, _ := e.container(a.ID, AttachOptions{Container: "alpha-client-1"})
	cb, _ := e.container(b.ID, AttachOptions{Container: "beta-client-1"})
	if got, err := nslookup(ca, "web", a.Gateway); err != nil || strings.Join(got, ",") != wa.Address.Addr().String() {
		t.Errorf("alpha's web = %v %v, want %s", got, err, wa.Address.Addr())
	}
	if got, err := nslookup(cb, "web", b.Gateway); err != nil || strings.Join(got, ",") != wb.Address.Addr().String() {
		t.Errorf("beta's web = %v %v, want %s", got, err, wb.Address.Addr())
	}
	// Nor can alpha's containers reach beta's by address.
	e.httpd(wbNS, "beta\n")
	if body, err := fetchWithin(ca, "http://"+wb.Address.Addr().String()+"/", 2*time.Second); err == nil {
		t.Errorf("alpha reached beta's web by address: %q", body)
	}
	if body, err := fetch(cb, "http://"+wb.Address.Addr().String()+"/"); err != nil || body != "beta\n" {
		t.Errorf("beta's own client: %q %v", body, err)
	}
	// alpha's client asking beta's DNS server is refused.
	if got, err := nslookup(ca, "web", b.Gateway); err == nil {
		t.Errorf("beta's DNS answered a client of alpha: %v", got)
	}
	// The same project on a second berth root gets other names too.
	m2, err := New(Config{Root: t.TempDir(), Upstreams: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.RemoveAll()
	defer m2.Close()
	a2, err := m2.EnsureNetwork("alpha", spec.Network{Name: "default"})
	if err != nil {
		t.Fatal(err)
	}
	e.links[a2.Bridge] = true
	if a2.Bridge == a.Bridge || a2.Subnet.Overlaps(a.Subnet) || m2.Table() == e.m.Table() {
		t.Errorf("two roots collide: %+v vs %+v", a2, a)
	}
}

func TestPublishedPorts(t *testing.T) {
	e := newEnv(t, nil)
	n := e.network("p", spec.Network{Name: "default"})
	web, _ := e.container(n.ID, AttachOptions{Container: "p-web-1", Service: "web"})
	e.httpd(web, "published\n")
	client, _ := e.container(n.ID, AttachOptions{Container: "p-client-1"})

	bs, err := e.m.PublishPorts("p", "web", "p-web-1", []spec.Port{
		{Target: 80, Protocol: "tcp"},                                      // ephemeral
		{Target: 80, Protocol: "tcp", HostIP: "127.0.0.1", Published: "0"}, // bad: 0
	})
	if err == nil {
		t.Fatalf("published \"0\" accepted: %v", bs)
	}
	if len(e.m.Ports("p", "web")) != 0 {
		t.Fatal("a failed PublishPorts left bindings behind")
	}
	bs, err = e.m.PublishPorts("p", "web", "p-web-1", []spec.Port{
		{Target: 80, Protocol: "tcp"},
		{Target: 80, Protocol: "udp"},
	})
	if err != nil {
		t.Fatal(err)
	}
	port := bs[0].HostPort
	if port == 0 || bs[1].Protocol != "udp" {
		t.Fatalf("bindings %v", bs)
	}
	got := e.m.Ports("p", "web")
	if len(got) != 2 || got[0].String() != "0.0.0.0:"+itoa(int(port))+"->80/tcp" {
		t.Fatalf("Ports = %v", got)
	}
	// From the host on 127.0.0.1 (loopback: the test's own address).
	body, err := httpGet("http://127.0.0.1:" + itoa(int(port)) + "/")
	if err != nil || body != "published\n" {
		t.Fatalf("from the host on 127.0.0.1: %q %v", body, err)
	}
	// From the host on another of its addresses (the bridge address
	// the test made).
	if body, err := httpGet("http://" + n.Gateway.String() + ":" + itoa(int(port)) + "/"); err != nil || body != "published\n" {
		t.Fatalf("from the host on %s: %q %v", n.Gateway, body, err)
	}
	// From another container through a host address (the gateway):
	// hairpin NAT.
	if body, err := fetch(client, "http://"+n.Gateway.String()+":"+itoa(int(port))+"/"); err != nil || body != "published\n" {
		t.Fatalf("from a container via the host address: %q %v", body, err)
	}
	// A fixed port, bound to 127.0.0.1 only, from a range.
	fixed := freePort(t)
	bs, err = e.m.PublishPorts("p", "web", "p-web-1", []spec.Port{{Target: 80, Protocol: "tcp", HostIP: "127.0.0.1", Published: itoa(int(fixed)) + "-" + itoa(int(fixed)+1)}})
	if err != nil {
		t.Fatal(err)
	}
	if bs[0].HostPort != fixed || bs[0].HostAddr() != "127.0.0.1:"+itoa(int(fixed)) {
		t.Fatalf("range binding %v, want port %d", bs[0], fixed)
	}
	if body, err := httpGet("http://127.0.0.1:" + itoa(int(fixed)) + "/"); err != nil || body != "published\n" {
		t.Fatalf("fixed port: %q %v", body, err)
	}
	udpb := e.m.Port("p", "web", 80, "udp")
	if len(udpb) != 1 || udpb[0].Protocol != "udp" {
		t.Fatalf("Port 80/udp = %v", udpb)
	}
	// UDP: an echo server in the container, asked from the host on
	// 127.0.0.1.
	udpEchoIn(t, web, 80)
	uc, err := net.Dial("udp4", "127.0.0.1:"+itoa(int(udpb[0].HostPort)))
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	uc.SetDeadline(time.Now().Add(10 * time.Second))
	uc.Write([]byte("ping"))
	buf := make([]byte, 64)
	if n, err := uc.Read(buf); err != nil || string(buf[:n]) != "echo:ping" {
		t.Fatalf("udp through the published port: %q %v", buf[:n], err)
	}
	if got := e.m.Port("p", "web", 80, ""); len(got) != 2 {
		t.Fatalf("Port 80/tcp = %v, want the ephemeral and the fixed binding", got)
	}
	if err := e.m.UnpublishPorts("p-web-1"); err != nil {
		t.Fatal(err)
	}
	if len(e.m.Ports("p", "")) != 0 || nftRuleCount(t, e.m.Table(), "ports") != 0 {
		t.Fatal("ports left after UnpublishPorts")
	}
	if _, err := httpGet("http://127.0.0.1:" + itoa(int(port)) + "/"); err == nil {
		t.Fatal("unpublished port still answers")
	}
}

func TestPortConflict(t *testing.T) {
	e := newEnv(t, nil)
	n := e.network("p", spec.Network{Name: "default"})
	e.container(n.ID, AttachOptions{Container: "p-web-1"})
	e.container(n.ID, AttachOptions{Container: "p-web-2"})
	// Something else on the host holds a port.
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := uint16(l.Addr().(*net.TCPAddr).Port)
	free := freePort(t)
	ports := []spec.Port{{Target: 81, Protocol: "tcp", Published: itoa(int(free))}, {Target: 80, Protocol: "tcp", Published: itoa(int(busy))}}
	err = e.m.CheckPorts(ports)
	var pe *PortInUseError
	if !errors.As(err, &pe) || pe.Port != busy || !strings.Contains(err.Error(), ":"+itoa(int(busy))+"/tcp") {
		t.Fatalf("CheckPorts: err = %v, want the port %d named", err, busy)
	}
	_, err = e.m.PublishPorts("p", "web", "p-web-1", ports)
	if !errors.As(err, &pe) || pe.Port != busy {
		t.Fatalf("PublishPorts: err = %v, want PortInUseError for %d", err, busy)
	}
	if len(e.m.Ports("p", "")) != 0 || nftRuleCount(t, e.m.Table(), "ports") != 0 {
		t.Fatal("a failed PublishPorts changed the rules")
	}
	// The first port of the failed call was released again.
	if _, err := e.m.PublishPorts("p", "web", "p-web-1", ports[:1]); err != nil {
		t.Fatalf("the free port was not released: %v", err)
	}
	// A second replica cannot take a port berth already published.
	if _, err := e.m.PublishPorts("p", "web", "p-web-2", ports[:1]); !errors.As(err, &pe) || pe.Port != free {
		t.Fatalf("second replica on the same port: %v", err)
	}
	// And neither can another program.
	if l2, err := net.Listen("tcp4", ":"+itoa(int(free))); err == nil {
		l2.Close()
		t.Fatal("a published port is not held")
	}
}

func TestTeardownFromSavedState(t *testing.T) {
	e := newEnv(t, nil)
	n := e.network("p", spec.Network{Name: "default"})
	ns, a := e.container(n.ID, AttachOptions{Container: "p-web-1", Service: "web"})
	if _, err := e.m.PublishPorts("p", "web", "p-web-1", []spec.Port{{Target: 80, Protocol: "tcp"}}); err != nil {
		t.Fatal(err)
	}
	// "Crash": the process goes away without tearing anything down.
	e.m.Close()
	m2, err := New(Config{Root: e.root, Upstreams: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if got := m2.Ports("p", "web"); len(got) != 1 {
		t.Fatalf("saved ports: %v", got)
	}
	if got, err := SavedPorts(e.root, "", "p", "web"); err != nil || len(got) != 1 || got[0].ContainerPort != 80 {
		t.Fatalf("SavedPorts: %v %v", got, err)
	}
	if err := m2.Restore(); err != nil {
		t.Fatal(err)
	}
	if err := m2.Register("p-web-1"); err != nil {
		t.Fatal(err)
	}
	if got := m2.DNSServer(n.ID).Lookup("web"); len(got) != 1 || got[0] != a.Address.Addr() {
		t.Fatalf("restored DNS: %v", got)
	}
	if err := m2.RemoveProject("p"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{n.Bridge, a.HostIf} {
		if _, err := netlink.LinkByName(name); err == nil {
			t.Errorf("%s survives RemoveProject", name)
		}
	}
	if ok, _ := tableExists(m2.Table()); ok {
		t.Error("nft table survives the removal of the last network")
	}
	if out, _ := run(ns, 5*time.Second, "ip", "link"); strings.Contains(out, "eth0") {
		t.Errorf("eth0 left in the container:\n%s", out)
	}
	// Idempotent.
	if err := m2.RemoveProject("p"); err != nil {
		t.Fatalf("second RemoveProject: %v", err)
	}
	if err := m2.RemoveNetwork("p", "default"); err != nil {
		t.Fatalf("RemoveNetwork of a removed network: %v", err)
	}
	if err := m2.Detach(n.ID, "p-web-1"); err != nil {
		t.Fatalf("Detach after removal: %v", err)
	}
}

func TestDetachRemovesVethAndNames(t *testing.T) {
	e := newEnv(t, nil)
	n := e.network("p", spec.Network{Name: "default"})
	_, a := e.container(n.ID, AttachOptions{Container: "p-web-1", Service: "web", Hostname: "webhost", Aliases: []string{"www"}})
	s := e.m.DNSServer(n.ID)
	for _, name := range []string{"p-web-1", "web", "webhost", "www"} {
		if len(s.Lookup(name)) != 1 {
			t.Fatalf("%s not registered", name)
		}
	}
	if err := e.m.Detach(n.ID, "p-web-1"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"p-web-1", "web", "webhost", "www"} {
		if len(s.Lookup(name)) != 0 {
			t.Errorf("%s still resolves after Detach", name)
		}
	}
	if _, err := netlink.LinkByName(a.HostIf); err == nil {
		t.Errorf("veth %s survives Detach", a.HostIf)
	}
	if err := e.m.Detach(n.ID, "p-web-1"); err != nil {
		t.Fatalf("second Detach: %v", err)
	}
	// The address is free again.
	_, b := e.container(n.ID, AttachOptions{Container: "p-web-2"})
	if b.Address != a.Address {
		t.Errorf("address not reused: %s then %s", a.Address, b.Address)
	}
}

// TestAttachedVethShape: the veth pair Attach makes is up at both ends,
// with carrier, the host end on the network's bridge, and one queue each
// way at both ends (the kernel's real count either way).
func TestAttachedVethShape(t *testing.T) {
	e := newEnv(t, nil)
	n := e.network("p", spec.Network{Name: "default"})
	ns, a := e.container(n.ID, AttachOptions{Container: "p-web-1"})
	br, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	host, err := netlink.LinkByName(a.HostIf)
	if err != nil {
		t.Fatal(err)
	}
	h := netlinkIn(t, nsPath(ns))
	peer, err := h.LinkByName(a.IfName)
	if err != nil {
		t.Fatal(err)
	}
	if got := host.Attrs().MasterIndex; got != br.Attrs().Index {
		t.Errorf("%s master = %d, want the bridge %s (%d)", a.HostIf, got, n.Bridge, br.Attrs().Index)
	}
	for _, l := range []netlink.Link{host, peer} {
		at := l.Attrs()
		if at.Flags&net.FlagUp == 0 || at.RawFlags&unix.IFF_LOWER_UP == 0 {
			t.Errorf("%s: flags %v (raw %#x), want up with carrier", at.Name, at.Flags, at.RawFlags)
		}
		if at.NumTxQueues != 1 || at.NumRxQueues != 1 {
			t.Errorf("%s: %d tx and %d rx queues, want 1 and 1", at.Name, at.NumTxQueues, at.NumRxQueues)
		}
	}
}

func TestDriverOptsAndGatewayPriority(t *testing.T) {
	e := newEnv(t, nil)
	name := "btn" + strconv.Itoa(os.Getpid()%100000) + "x"
	n1 := e.network("p", spec.Network{Name: "one", DriverOpts: map[string]string{OptBridgeName: name, OptMTU: "1400"}})
	if n1.Bridge != name {
		t.Fatalf("bridge %q, want %q", n1.Bridge, name)
	}
	br, err := netlink.LinkByName(name)
	if err != nil || br.Attrs().MTU != 1400 {
		t.Fatalf("bridge %s: %v mtu %v", name, err, br)
	}
	n2 := e.network("p", spec.Network{Name: "two"})
	ns := e.netns()
	a1, err := e.m.Attach(n1.ID, AttachOptions{Container: "c", NetNSPath: nsPath(ns), IfName: "eth0", GwPriority: 0})
	if err != nil {
		t.Fatal(err)
	}
	e.links[a1.HostIf] = true
	a2, err := e.m.Attach(n2.ID, AttachOptions{Container: "c", NetNSPath: nsPath(ns), IfName: "eth1", GwPriority: 10})
	if err != nil {
		t.Fatal(err)
	}
	e.links[a2.HostIf] = true
	out, err := run(ns, 5*time.Second, "ip", "link", "show", "eth0")
	if err != nil || !strings.Contains(out, "mtu 1400") {
		t.Errorf("eth0 mtu: %v\n%s", err, out)
	}
	// gw_priority 10 on "two" wins the default route.
	// (ip route get only consults the routing table; nothing is sent.)
	rt, err := exec.Command("ip", "-n", ns, "route", "get", "203.0.113.1").CombinedOutput()
	if err != nil || !strings.Contains(string(rt), "via "+n2.Gateway.String()+" dev eth1") {
		t.Errorf("default route: %v\n%s", err, rt)
	}
	if err := e.m.Register("c"); err != nil {
		t.Fatal(err)
	}
	if got := e.m.DNSServer(n2.ID).Lookup("c"); len(got) != 1 || got[0] != a2.Address.Addr() {
		t.Errorf("c on network two: %v", got)
	}
	// An existing interface name is refused.
	if _, err := e.m.Attach(n2.ID, AttachOptions{Container: "d", NetNSPath: nsPath(ns), IfName: "eth0"}); err == nil {
		t.Error("attaching a second eth0 succeeded")
	}
	for _, bad := range []map[string]string{{OptMTU: "9"}, {OptBridgeName: "much-too-long-bridge-name"}} {
		if _, err := e.m.EnsureNetwork("p", spec.Network{Name: "bad", DriverOpts: bad}); err == nil {
			t.Errorf("driver_opts %v accepted", bad)
		}
	}
	if _, err := e.m.EnsureNetwork("p", spec.Network{Name: "bad", Driver: "overlay"}); err == nil {
		t.Error("driver overlay accepted")
	}
	if _, err := e.m.EnsureNetwork("p", spec.Network{Name: "bad", EnableIPv6: true}); err == nil || !strings.Contains(err.Error(), "enable_ipv6") {
		t.Errorf("enable_ipv6: err = %v", err)
	}
	if _, err := e.m.Attach(n2.ID, AttachOptions{Container: "e", NetNSPath: nsPath(ns), IfName: "eth5", MAC: "01:00:5e:00:00:01"}); err == nil {
		t.Error("a multicast mac_address was accepted")
	}
}

func TestSubnetOverlapAndExternal(t *testing.T) {
	e := newEnv(t, nil)
	n := e.network("p", spec.Network{Name: "default"})
	// Another root asking for the same subnet overlaps the host route
	// of this root's bridge.
	m2, err := New(Config{Root: t.TempDir(), Upstreams: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	_, err = m2.EnsureNetwork("q", spec.Network{Name: "default", IPAM: []spec.IPAMConfig{{Subnet: n.Subnet.String()}}})
	var oe *SubnetOverlapError
	if !errors.As(err, &oe) || !strings.Contains(err.Error(), n.Bridge) {
		t.Fatalf("overlapping subnet: err = %v", err)
	}
	if ok, _ := tableExists(m2.Table()); ok {
		t.Error("a refused network left an nft table")
		m2.RemoveAll()
	}
	// Explicit subnets come before automatic ones: the explicit one is
	// taken even when it is the pool's next free subnet, and the next
	// automatic network skips it.
	next, err := chooseSubnet(DefaultPool, DefaultSubnetBits, append(mustRoutes(t), hostRoute{Dst: n.Subnet}))
	if err != nil {
		t.Fatal(err)
	}
	ex := e.network("p", spec.Network{Name: "fixed", IPAM: []spec.IPAMConfig{{Subnet: next.String()}}})
	auto := e.network("p", spec.Network{Name: "auto"})
	if ex.Subnet != next || auto.Subnet.Overlaps(ex.Subnet) || auto.Subnet.Overlaps(n.Subnet) {
		t.Fatalf("explicit %s, auto %s, first %s", ex.Subnet, auto.Subnet, n.Subnet)
	}
	// external: true joins, does not create.
	got, err := e.m.EnsureNetwork("other", spec.Network{Name: "shared", ActualName: "p_default", External: true})
	if err != nil || got.ID != n.ID || !got.External || got.Bridge != n.Bridge {
		t.Fatalf("external network: %+v %v", got, err)
	}
	if _, err := e.m.EnsureNetwork("other", spec.Network{Name: "x", ActualName: "nope", External: true}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing external network: %v", err)
	}
}

func TestNetworkModeNone(t *testing.T) {
	e := newEnv(t, nil)
	ns := e.netns()
	if err := LoopbackUp(nsPath(ns)); err != nil {
		t.Fatal(err)
	}
	out, err := run(ns, 5*time.Second, "ip", "-o", "link")
	if err != nil || !strings.Contains(out, "lo: <LOOPBACK,UP") || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Fatalf("network_mode none: %v\n%s", err, out)
	}
}

func mustRoutes(t testing.TB) []hostRoute {
	r, err := hostRoutes()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestDNSAnswersDuringChurn: every query is answered while containers
// are attached, registered, unregistered and detached on the network.
func TestDNSAnswersDuringChurn(t *testing.T) {
	e := newEnv(t, nil)
	n := e.network("p", spec.Network{Name: "default"})
	e.container(n.ID, AttachOptions{Container: "p-api-1", Service: "api"})
	client, _ := e.container(n.ID, AttachOptions{Container: "p-client-1"})
	spare := []string{e.netns(), e.netns()}
	c := newDNSClient(dialIn(t, client, netip.AddrPortFrom(n.Gateway, 53)), "api")

	done := make(chan error, 1)
	go func() {
		for i := 0; i < 20; i++ {
			name := "p-api-" + strconv.Itoa(i+2)
			a, err := e.m.Attach(n.ID, AttachOptions{Container: name, Service: "api", NetNSPath: nsPath(spare[i%2])})
			if err != nil {
				done <- err
				return
			}
			e.m.Register(name)
			e.m.Unregister(name)
			if err := e.m.Detach(n.ID, name); err != nil {
				done <- err
				return
			}
			_ = a
		}
		done <- nil
	}()
	queries, lost := 0, 0
	for finished := false; !finished; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			finished = true
		default:
		}
		queries++
		// A generous timeout: a lost packet never comes, a slow one
		// on a loaded machine does.
		if got, err := c.ask(3 * time.Second); err != nil || got < 1 {
			t.Logf("query %d: %d answers, %v", queries, got, err)
			lost++
		}
	}
	if lost != 0 {
		t.Fatalf("%d of %d queries unanswered (or without the steady replica) during churn", lost, queries)
	}
	t.Logf("%d queries answered during 20 attach/detach cycles", queries)
}

func TestEnsureNetworksExplicitFirst(t *testing.T) {
	e := newEnv(t, nil)
	// The subnet the pool would give next is asked for explicitly by a
	// network that sorts after an automatic one.
	next, err := chooseSubnet(DefaultPool, DefaultSubnetBits, mustRoutes(t))
	if err != nil {
		t.Fatal(err)
	}
	nets, err := e.m.EnsureNetworks("p", []spec.Network{
		{Name: "a-auto", ActualName: "p_a-auto"},
		{Name: "z-fixed", ActualName: "p_z-fixed", IPAM: []spec.IPAMConfig{{Subnet: next.String()}}},
	})
	for _, n := range nets {
		e.links[n.Bridge] = true
	}
	if err != nil {
		t.Fatal(err)
	}
	if nets[1].Subnet != next || nets[0].Subnet == next || nets[0].Name != "a-auto" {
		t.Fatalf("auto %s, fixed %s; want fixed = %s", nets[0].Subnet, nets[1].Subnet, next)
	}
	// A changed network is reported, not silently kept.
	if _, err := e.m.EnsureNetwork("p", spec.Network{Name: "a-auto", Internal: true}); !errors.Is(err, ErrNetworkChanged) || !strings.Contains(err.Error(), "internal false -> true") {
		t.Fatalf("changed network: err = %v", err)
	}
	// Ensuring again changes nothing.
	again, err := e.m.EnsureNetworks("p", []spec.Network{{Name: "a-auto"}, {Name: "z-fixed", IPAM: []spec.IPAMConfig{{Subnet: next.String()}}}})
	if err != nil || again[0].Subnet != nets[0].Subnet || again[1].Bridge != nets[1].Bridge {
		t.Fatalf("second EnsureNetworks: %v %v", again, err)
	}
}

// TestPublishedPort53: the embedded DNS servers hold port 53 on the
// gateways, so 53 on every address is refused with a hint, while 53 on
// one host address works and leaves the embedded DNS alone.
func TestPublishedPort53(t *testing.T) {
	e := newEnv(t, nil)
	n := e.network("p", spec.Network{Name: "default"})
	dnsbox, _ := e.container(n.ID, AttachOptions{Container: "p-dns-1", Service: "dns"})
	udpEchoIn(t, dnsbox, 53)
	client, _ := e.container(n.ID, AttachOptions{Container: "p-client-1"})
	_, err := e.m.PublishPorts("p", "dns", "p-dns-1", []spec.Port{{Target: 53, Protocol: "udp", Published: "53"}})
	var pe *PortInUseError
	if !errors.As(err, &pe) || pe.Port != 53 || !strings.Contains(err.Error(), "embedded DNS") {
		t.Fatalf("53 on every address: err = %v", err)
	}
	// One loopback address whose port 53 is free: a host resolver
	// (dnsmasq, unbound) may hold 127.0.0.1:53, but not all of 127/8.
	var host string
	for i := 1; i < 64 && host == ""; i++ {
		a := fmt.Sprintf("127.0.0.%d", i)
		if probe, err := net.ListenPacket("udp4", a+":53"); err == nil {
			probe.Close()
			host = a
		}
	}
	if host == "" {
		t.Fatal("port 53 is taken on 127.0.0.1 to 127.0.0.63")
	}
	if _, err := e.m.PublishPorts("p", "dns", "p-dns-1", []spec.Port{{Target: 53, Protocol: "udp", Published: "53", HostIP: host}}); err != nil {
		t.Fatal(err)
	}
	uc, err := net.Dial("udp4", host+":53")
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	uc.SetDeadline(time.Now().Add(10 * time.Second))
	uc.Write([]byte("q"))
	buf := make([]byte, 16)
	if n, err := uc.Read(buf); err != nil || string(buf[:n]) != "echo:q" {
		t.Fatalf("%s:53 -> container: %q %v", host, buf[:n], err)
	}
	if got, err := nslookup(client, "dns", n.Gateway); err != nil || len(got) != 1 {
		t.Fatalf("embedded DNS with a published 53: %v %v", got, err)
	}
}

// TestRestoreAfterReboot: the kernel objects are gone (as after a host
// reboot) but the state is not: Restore brings the network back, and
// Attach re-plugs the container.
func TestRestoreAfterReboot(t *testing.T) {
	e := newEnv(t, nil)
	n := e.network("p", spec.Network{Name: "default"})
	ns, a := e.container(n.ID, AttachOptions{Container: "p-web-1", Service: "web"})
	e.m.Close()
	for _, name := range []string{a.HostIf, n.Bridge} {
		if l, err := netlink.LinkByName(name); err == nil {
			netlink.LinkDel(l)
		}
	}
	deleteTable(e.m.Table())

	m2, err := New(Config{Root: e.root, Upstreams: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	e.m = m2 // the env's cleanup removes what m2 holds
	if err := m2.Restore(); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(n.Bridge); err != nil {
		t.Fatalf("bridge not restored: %v", err)
	}
	if ok, _ := tableExists(m2.Table()); !ok {
		t.Fatal("nft table not restored")
	}
	a2, err := m2.Attach(n.ID, AttachOptions{Container: "p-web-1", Service: "web", NetNSPath: nsPath(ns)})
	if err != nil {
		t.Fatal(err)
	}
	if a2.Address != a.Address {
		t.Errorf("address changed across the restart: %s -> %s", a.Address, a2.Address)
	}
	if err := m2.Register("p-web-1"); err != nil {
		t.Fatal(err)
	}
	client, _ := e.container(n.ID, AttachOptions{Container: "p-client-1"})
	if got, err := nslookup(client, "web", n.Gateway); err != nil || got[0] != a.Address.Addr().String() {
		t.Fatalf("web after restore: %v %v", got, err)
	}
}

// DetachAllKeepLinks leaves the veths to the kernel, which removes them
// with the container's namespace; WaitLinksGone sees them go, and deletes
// one whose namespace stays.
func TestDetachKeepLinksWithNamespace(t *testing.T) {
	e := newEnv(t, nil)
	n := e.network("keep", spec.Network{Name: "default"})
	ns1, a1 := e.container(n.ID, AttachOptions{Container: "keep-a-1", Service: "a"})
	_, a2 := e.container(n.ID, AttachOptions{Container: "keep-b-1", Service: "b"})

	links, err := e.m.DetachAllKeepLinks("keep-a-1")
	if err != nil || len(links) != 1 || links[0] != a1.HostIf {
		t.Fatalf("DetachAllKeepLinks = %v, %v; want [%s]", links, err, a1.HostIf)
	}
	if len(e.m.Attachments("keep-a-1")) != 0 {
		t.Errorf("attachment still recorded: %+v", e.m.Attachments("keep-a-1"))
	}
	if _, err := netlink.LinkByName(a1.HostIf); err != nil {
		t.Fatalf("the veth went before its namespace: %v", err)
	}
	if out, err := exec.Command("ip", "netns", "del", ns1).CombinedOutput(); err != nil {
		t.Fatalf("ip netns del: %v: %s", err, out)
	}
	if err := WaitLinksGone(links, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(a1.HostIf); !isNotFound(err) {
		t.Errorf("veth %s still there after WaitLinksGone: %v", a1.HostIf, err)
	}

	// b's namespace stays: a zero wait deletes its veth.
	links, err = e.m.DetachAllKeepLinks("keep-b-1")
	if err != nil || len(links) != 1 {
		t.Fatalf("DetachAllKeepLinks = %v, %v", links, err)
	}
	if err := WaitLinksGone(links, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(a2.HostIf); !isNotFound(err) {
		t.Errorf("veth %s still there: %v", a2.HostIf, err)
	}
}

// TestTableUpdate: each change of the state empties and fills the
// table's chains again (no rule twice), and a table someone changed by
// hand (a chain deleted, a policy turned to drop) is made whole again.
func TestTableUpdate(t *testing.T) {
	e := newEnv(t, nil)
	n := e.network("p", spec.Network{Name: "default"})
	web, _ := e.container(n.ID, AttachOptions{Container: "p-web-1", Service: "web"})
	e.httpd(web, "kept\n")
	counts := func() map[string]int {
		got := map[string]int{}
		for _, ch := range []string{"prerouting", "output", "ports", "postrouting", "forward", "input"} {
			got[ch] = nftRuleCount(t, e.m.Table(), ch)
		}
		return got
	}
	before := counts()
	if before["postrouting"] == 0 || before["forward"] == 0 || before["ports"] != 0 {
		t.Fatalf("rules of a network without ports: %v", before)
	}
	for i := 0; i < 3; i++ {
		bs, err := e.m.PublishPorts("p", "web", "p-web-1", []spec.Port{{Target: 80, Protocol: "tcp", HostIP: "127.0.0.1"}})
		if err != nil {
			t.Fatal(err)
		}
		with := counts()
		if with["ports"] != 1 || with["postrouting"] != before["postrouting"] || with["forward"] != before["forward"] {
			t.Fatalf("round %d: rules with one port %v, without %v", i, with, before)
		}
		if body, err := httpGet("http://127.0.0.1:" + itoa(int(bs[0].HostPort)) + "/"); err != nil || body != "kept\n" {
			t.Fatalf("round %d: published port: %q %v", i, body, err)
		}
		if err := e.m.UnpublishPorts("p-web-1"); err != nil {
			t.Fatal(err)
		}
		if got := counts(); !maps.Equal(got, before) {
			t.Fatalf("round %d: rules after unpublishing %v, want %v", i, got, before)
		}
	}

	// By hand: forward drops by default; then the input chain goes.
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tb := &nftables.Table{Name: e.m.Table(), Family: nftables.TableFamilyIPv4}
	drop := nftables.ChainPolicyDrop
	in := &nftables.Chain{Name: "input", Table: tb}
	for _, change := range []func(){
		func() {
			c.AddChain(&nftables.Chain{Name: "forward", Table: tb, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &drop})
		},
		func() { c.FlushChain(in); c.DelChain(in) },
	} {
		change()
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		if _, err := e.m.PublishPorts("p", "web", "p-web-1", []spec.Port{{Target: 80, Protocol: "tcp", HostIP: "127.0.0.1"}}); err != nil {
			t.Fatal(err)
		}
		chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
		if err != nil {
			t.Fatal(err)
		}
		policies := map[string]string{}
		for _, ch := range chains {
			if ch.Table.Name != e.m.Table() {
				continue
			}
			policies[ch.Name] = "none"
			if ch.Policy != nil {
				policies[ch.Name] = fmt.Sprint(*ch.Policy == nftables.ChainPolicyAccept)
			}
		}
		want := map[string]string{"prerouting": "true", "output": "true", "ports": "none", "postrouting": "true", "forward": "true", "input": "true"}
		if !maps.Equal(policies, want) {
			t.Fatalf("chains after a change by hand: %v, want %v (name: accept policy)", policies, want)
		}
		if got := counts(); got["ports"] != 1 || got["input"] != before["input"] || got["forward"] != before["forward"] {
			t.Fatalf("rules after a change by hand %v, without the port %v", got, before)
		}
		if err := e.m.UnpublishPorts("p-web-1"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAttachConcurrent: attaches of many containers at once (an up
// attaches eight at a time) each get their own address and veth, and
// the saved state holds every one of them: no write of the state file
// overtakes a later one.
func TestAttachConcurrent(t *testing.T) {
	e := newEnv(t, nil)
	n := e.network("p", spec.Network{Name: "default"})
	const count = 24
	nss := make([]string, count)
	for i := range nss {
		nss[i] = e.netns()
	}
	atts := make([]*Attachment, count)
	errs := make([]error, count)
	var wg sync.WaitGroup
	for i := range nss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			atts[i], errs[i] = e.m.Attach(n.ID, AttachOptions{Container: fmt.Sprintf("p-s%d-1", i), Service: fmt.Sprintf("s%d", i), NetNSPath: nsPath(nss[i])})
		}()
	}
	wg.Wait()
	seen := map[netip.Addr]bool{}
	for i, a := range atts {
		if errs[i] != nil {
			t.Fatalf("attach %d: %v", i, errs[i])
		}
		e.links[a.HostIf] = true
		if seen[a.Address.Addr()] {
			t.Fatalf("address %s given twice", a.Address)
		}
		seen[a.Address.Addr()] = true
		out, err := exec.Command("ip", "netns", "exec", nss[i], "ip", "-4", "-o", "addr", "show", "dev", "eth0").CombinedOutput()
		if err != nil || !strings.Contains(string(out), a.Address.String()) {
			t.Fatalf("container %d: eth0 lacks %s: %s %v", i, a.Address, out, err)
		}
	}
	saved, err := loadState(filepath.Join(e.root, "network"))
	if err != nil {
		t.Fatal(err)
	}
	if len(saved.Attachments) != count || len(saved.Networks[n.ID].Used) != count {
		t.Fatalf("saved state holds %d attachments and %d addresses, want %d", len(saved.Attachments), len(saved.Networks[n.ID].Used), count)
	}
	// The first container pings the last over the bridge.
	last := atts[count-1].Address.Addr().String()
	if out, err := exec.Command("ip", "netns", "exec", nss[0], busybox, "ping", "-c", "1", "-W", "5", last).CombinedOutput(); err != nil {
		t.Fatalf("ping %s: %v: %s", last, err, out)
	}
	for i := range nss {
		if err := e.m.DetachAll(fmt.Sprintf("p-s%d-1", i)); err != nil {
			t.Fatal(err)
		}
	}
	if saved, err = loadState(filepath.Join(e.root, "network")); err != nil || len(saved.Attachments) != 0 {
		t.Fatalf("saved state after detaching: %d attachments, %v", len(saved.Attachments), err)
	}
}

// TestTableAddsPortsInPlace: publishing another port appends its rule and
// leaves the rules already in the table as they are (same handles), so
// the kernel has nothing to free; a rule removed by hand makes the next
// change write the whole table again.
func TestTableAddsPortsInPlace(t *testing.T) {
	e := newEnv(t, nil)
	n := e.network("p", spec.Network{Name: "default"})
	web, _ := e.container(n.ID, AttachOptions{Container: "p-web-1", Service: "web"})
	e.httpd(web, "in place\n")
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tb := &nftables.Table{Name: e.m.Table(), Family: nftables.TableFamilyIPv4}
	handles := func(chain string) []uint64 {
		rules, err := c.GetRules(tb, &nftables.Chain{Name: chain, Table: tb})
		if err != nil {
			t.Fatal(err)
		}
		var hs []uint64
		for _, r := range rules {
			hs = append(hs, r.Handle)
		}
		return hs
	}
	publish := func(target uint16) uint16 {
		bs, err := e.m.PublishPorts("p", "web", "p-web-1", []spec.Port{{Target: target, Protocol: "tcp", HostIP: "127.0.0.1"}})
		if err != nil {
			t.Fatal(err)
		}
		return bs[0].HostPort
	}
	fwd := handles("forward")
	port := publish(80)
	if got := handles("forward"); !slices.Equal(got, fwd) {
		t.Fatalf("publishing a port rewrote the forward chain: handles %v, before %v", got, fwd)
	}
	ports := handles("ports")
	publish(81)
	if got := handles("ports"); len(got) != 2 || got[0] != ports[0] {
		t.Fatalf("ports chain after a second port: handles %v, before %v", got, ports)
	}
	if body, err := httpGet("http://127.0.0.1:" + itoa(int(port)) + "/"); err != nil || body != "in place\n" {
		t.Fatalf("first published port: %q %v", body, err)
	}

	// By hand: the forward chain loses a rule. The next port rewrites
	// the table, and the rule is back.
	rules, err := c.GetRules(tb, &nftables.Chain{Name: "forward", Table: tb})
	if err != nil || len(rules) == 0 {
		t.Fatalf("forward rules: %v %v", rules, err)
	}
	if err := c.DelRule(rules[0]); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	publish(82)
	if got := handles("forward"); len(got) != len(fwd) || slices.Equal(got, fwd) {
		t.Fatalf("forward chain after a rule was removed by hand: handles %v, before %v (want as many, all new)", got, fwd)
	}
	if got := handles("ports"); len(got) != 3 {
		t.Fatalf("ports chain: %d rules, want 3", len(got))
	}
	if body, err := httpGet("http://127.0.0.1:" + itoa(int(port)) + "/"); err != nil || body != "in place\n" {
		t.Fatalf("first published port after the rewrite: %q %v", body, err)
	}
}
