package netstack

import (
	"errors"
	"net"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/spec"
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
	_, wb := e.container(b.ID, AttachOptions{Container: "beta-web-1", Service: "web"})
	ca, _ := e.container(a.ID, AttachOptions{Container: "alpha-client-1"})
	cb, _ := e.container(b.ID, AttachOptions{Container: "beta-client-1"})
	if got, err := nslookup(ca, "web", a.Gateway); err != nil || strings.Join(got, ",") != wa.Address.Addr().String() {
		t.Errorf("alpha's web = %v %v, want %s", got, err, wa.Address.Addr())
	}
	if got, err := nslookup(cb, "web", b.Gateway); err != nil || strings.Join(got, ",") != wb.Address.Addr().String() {
		t.Errorf("beta's web = %v %v, want %s", got, err, wb.Address.Addr())
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
