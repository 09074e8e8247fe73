package netstack

import (
	"errors"
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
