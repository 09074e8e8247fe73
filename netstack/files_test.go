package netstack

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHostUpstreams(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain := write("plain", "# c\nnameserver 192.0.2.53\nnameserver 127.0.0.1\nsearch a.test\nnameserver 2001:db8::1\n")
	ups, err := HostUpstreams(plain, "")
	if err != nil || strings.Join(ups, ",") != "192.0.2.53:53,[2001:db8::1]:53" {
		t.Fatalf("plain: %v %v", ups, err)
	}
	stub := write("stub", "nameserver 127.0.0.53\noptions edns0\n")
	real := write("real", "nameserver 198.51.100.1\nnameserver 198.51.100.2\n")
	ups, err = HostUpstreams(stub, real)
	if err != nil || strings.Join(ups, ",") != "198.51.100.1:53,198.51.100.2:53" {
		t.Fatalf("systemd-resolved stub: %v %v", ups, err)
	}
}

func TestContainerFiles(t *testing.T) {
	f, err := ContainerFiles(FilesOptions{
		Hostname: "web", Domainname: "example.test",
		DNSServer: netip.MustParseAddr("10.213.0.1"),
		Search:    []string{"svc.test"}, Options: []string{"ndots:2"},
		Addresses:  []netip.Addr{netip.MustParseAddr("10.213.0.5")},
		Names:      []string{"shop-web-1", "web"},
		ExtraHosts: []string{"host.docker.internal=host-gateway", "db:10.1.2.3", "v6 ::1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	rc := string(f.ResolvConf)
	for _, want := range []string{"nameserver 10.213.0.1\n", "search svc.test\n", "options ndots:2\n"} {
		if !strings.Contains(rc, want) {
			t.Errorf("resolv.conf lacks %q:\n%s", want, rc)
		}
	}
	hosts := string(f.Hosts)
	for _, want := range []string{"127.0.0.1\tlocalhost\n", "10.213.0.5\tweb.example.test web shop-web-1\n", "10.213.0.1\thost.docker.internal\n", "10.1.2.3\tdb\n", "::1\tv6\n"} {
		if !strings.Contains(hosts, want) {
			t.Errorf("hosts lacks %q:\n%s", want, hosts)
		}
	}
	if string(f.Hostname) != "web\n" {
		t.Errorf("hostname = %q", f.Hostname)
	}
	// dns: overrides the embedded server.
	f, err = ContainerFiles(FilesOptions{DNSServer: netip.MustParseAddr("10.213.0.1"), DNS: []string{"192.0.2.9"}})
	if err != nil || !strings.Contains(string(f.ResolvConf), "nameserver 192.0.2.9\n") || strings.Contains(string(f.ResolvConf), "10.213.0.1") {
		t.Errorf("dns: override: %q %v", f.ResolvConf, err)
	}
	for _, bad := range []FilesOptions{
		{ExtraHosts: []string{"nohost"}},
		{ExtraHosts: []string{"h=notanip"}},
		{ExtraHosts: []string{"h=host-gateway"}, HostResolvConf: "/dev/null"},
		{DNS: []string{"dns.example"}},
		{Hostname: "a b"},
		{DNSServer: netip.MustParseAddr("10.0.0.1"), Search: []string{"a b"}},
	} {
		if _, err := ContainerFiles(bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
	dir := t.TempDir()
	if err := f.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "resolv.conf")); string(b) != string(f.ResolvConf) {
		t.Errorf("WriteDir resolv.conf = %q", b)
	}
}
