package netstack

import (
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/spec"
)

func TestChooseSubnetSkipsRoutes(t *testing.T) {
	taken := []hostRoute{
		{Dst: netip.MustParsePrefix("10.213.0.0/24"), Desc: "a"},
		{Dst: netip.MustParsePrefix("10.213.1.128/25"), Desc: "b"},
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Desc: "default"},
	}
	got, err := chooseSubnet(DefaultPool, 24, taken)
	if err != nil || got != netip.MustParsePrefix("10.213.2.0/24") {
		t.Fatalf("chooseSubnet = %v, %v; want 10.213.2.0/24", got, err)
	}
	// A route covering the whole pool exhausts it.
	_, err = chooseSubnet(DefaultPool, 24, []hostRoute{{Dst: netip.MustParsePrefix("10.0.0.0/8")}})
	if !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("err = %v, want ErrPoolExhausted", err)
	}
	if _, err := chooseSubnet(DefaultPool, 8, nil); err == nil {
		t.Fatal("/8 out of a /16 pool: no error")
	}
}

func TestParseIPAM(t *testing.T) {
	req, err := parseIPAM([]spec.IPAMConfig{{Subnet: "fd00::/64"}, {Subnet: "172.30.0.0/16", IPRange: "172.30.5.0/24", Gateway: "172.30.0.254"}})
	if err != nil {
		t.Fatal(err)
	}
	if req.Subnet.String() != "172.30.0.0/16" || req.IPRange.String() != "172.30.5.0/24" || req.Gateway.String() != "172.30.0.254" {
		t.Fatalf("got %+v", req)
	}
	for _, bad := range []spec.IPAMConfig{
		{Subnet: "172.30.0.1/16"},
		{Subnet: "nonsense"},
		{Subnet: "172.30.0.0/16", Gateway: "10.0.0.1"},
		{Subnet: "172.30.0.0/16", IPRange: "172.31.0.0/24"},
		{Subnet: "172.30.0.0/16", Gateway: "172.30.255.255"},
		{Gateway: "172.30.0.1"},
		{Subnet: "172.30.0.0/31"},
	} {
		if _, err := parseIPAM([]spec.IPAMConfig{bad}); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

func TestAddrPool(t *testing.T) {
	p := &addrPool{Subnet: netip.MustParsePrefix("10.9.0.0/29"), Gateway: netip.MustParseAddr("10.9.0.1"), Used: map[netip.Addr]string{}}
	if err := p.reserve(netip.MustParseAddr("10.9.0.3"), "static"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range []string{"a", "b", "c", "d"} {
		a, err := p.allocate(c)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, a.String())
	}
	if strings.Join(got, " ") != "10.9.0.2 10.9.0.4 10.9.0.5 10.9.0.6" {
		t.Fatalf("allocated %v", got)
	}
	if a, _ := p.allocate("b"); a.String() != "10.9.0.4" {
		t.Fatalf("second allocate for b = %v, want its address back", a)
	}
	if _, err := p.allocate("e"); !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("full /29: err = %v", err)
	}
	for _, bad := range []string{"10.9.0.1", "10.9.0.0", "10.9.0.7", "10.9.1.2", "10.9.0.2"} {
		if err := p.reserve(netip.MustParseAddr(bad), "x"); !errors.Is(err, ErrAddressInUse) {
			t.Errorf("reserve %s: err = %v, want ErrAddressInUse", bad, err)
		}
	}
	p.release("a")
	if a, _ := p.allocate("e"); a.String() != "10.9.0.2" {
		t.Fatalf("after release: %v", a)
	}
	// ip_range limits automatic addresses.
	r := &addrPool{Subnet: netip.MustParsePrefix("10.9.0.0/24"), IPRange: netip.MustParsePrefix("10.9.0.128/30"), Gateway: netip.MustParseAddr("10.9.0.1"), Used: map[netip.Addr]string{}}
	if a, _ := r.allocate("x"); a.String() != "10.9.0.128" {
		t.Fatalf("ip_range allocate = %v", a)
	}
}

func TestNames(t *testing.T) {
	a := BridgeName("/var/lib/berth", "shop", "default")
	b := BridgeName("/var/lib/berth", "blog", "default")
	c := BridgeName("/tmp/other", "shop", "default")
	if a == b || a == c || len(a) > maxIfName || !strings.HasPrefix(a, "bt-") {
		t.Fatalf("bridge names %q %q %q", a, b, c)
	}
	if a != BridgeName("/var/lib/berth", "shop", "default") {
		t.Fatal("bridge name is not stable")
	}
	if n := vethName("/r", "p/n", "c"); len(n) > maxIfName {
		t.Fatalf("veth name %q too long", n)
	}
	for _, bad := range []string{"", "abcdefghijklmnop", "a/b", "a b"} {
		if validIfName(bad) == nil {
			t.Errorf("validIfName(%q) = nil", bad)
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	st := newState()
	st.Networks["p/default"] = &networkState{Network: Network{ID: "p/default", Subnet: netip.MustParsePrefix("10.213.0.0/24"), Gateway: netip.MustParseAddr("10.213.0.1")},
		Used: map[netip.Addr]string{netip.MustParseAddr("10.213.0.2"): "p-web-1"}}
	st.Ports = []PortBinding{{Project: "p", HostPort: 8080, ContainerPort: 80, Protocol: "tcp", ContainerIP: netip.MustParseAddr("10.213.0.2")}}
	b, err := st.marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(filepath.Join(dir, stateFile), b, 0o600, true); err != nil {
		t.Fatal(err)
	}
	got, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := got.Networks["p/default"]
	if n == nil || n.Used[netip.MustParseAddr("10.213.0.2")] != "p-web-1" || got.Ports[0].String() != "0.0.0.0:8080->80/tcp" {
		t.Fatalf("round trip lost data: %+v", got)
	}
	empty, err := loadState(t.TempDir())
	if err != nil || len(empty.Networks) != 0 {
		t.Fatalf("missing state: %v %v", empty, err)
	}
}
