package netstack

import (
	"net"
	"net/netip"
	"sort"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// stubUpstream runs a DNS server on loopback that answers "ext.test."
// with 198.51.100.7 and NXDOMAIN for every other name, and counts queries.
func stubUpstream(t testing.TB) (addr string, queries *atomic.Int64) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	queries = new(atomic.Int64)
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) }, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		queries.Add(1)
		m := new(dns.Msg)
		m.SetReply(r)
		if r.Question[0].Name == "ext.test." && r.Question[0].Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: "ext.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP("198.51.100.7")})
		} else {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String(), queries
}

func startLoopbackDNS(t testing.TB, subnet string, upstreams []string) *DNSServer {
	t.Helper()
	s := NewDNSServer(netip.MustParseAddrPort("127.0.0.1:0"), netip.MustParsePrefix(subnet), upstreams)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func query(t testing.TB, server netip.AddrPort, name string, qtype uint16, proto string) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: proto, Timeout: 3 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := c.Exchange(m, server.String())
	if err != nil {
		t.Fatalf("query %s: %v", name, err)
	}
	return r
}

func answerAddrs(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
			if a.Hdr.Ttl != 0 {
				out = append(out, "TTL!=0")
			}
		}
	}
	sort.Strings(out)
	return out
}

func TestDNSServerAnswersAndForwards(t *testing.T) {
	up, queries := stubUpstream(t)
	s := startLoopbackDNS(t, "127.0.0.0/8", []string{up})
	addr := s.Addr()

	s.Register("p-web-1", netip.MustParseAddr("10.1.0.2"), "p-web-1", "web", "webhost", "www")
	s.Register("p-web-2", netip.MustParseAddr("10.1.0.3"), "p-web-2", "web")

	for _, proto := range []string{"udp", "tcp"} {
		r := query(t, addr, "web", dns.TypeA, proto)
		if got := answerAddrs(r); len(got) != 2 || got[0] != "10.1.0.2" || got[1] != "10.1.0.3" {
			t.Errorf("%s: web = %v, want both replicas with TTL 0", proto, got)
		}
	}
	for _, name := range []string{"p-web-1", "WebHost", "www"} {
		if got := answerAddrs(query(t, addr, name, dns.TypeA, "udp")); len(got) != 1 || got[0] != "10.1.0.2" {
			t.Errorf("%s = %v, want [10.1.0.2]", name, got)
		}
	}
	// A known name without AAAA records: NOERROR, empty, not forwarded.
	before := queries.Load()
	if r := query(t, addr, "web", dns.TypeAAAA, "udp"); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Errorf("AAAA web: rcode %d answers %d", r.Rcode, len(r.Answer))
	}
	if queries.Load() != before {
		t.Error("AAAA for a local name was forwarded")
	}
	// Reverse lookup.
	r := query(t, addr, "2.0.1.10.in-addr.arpa", dns.TypePTR, "udp")
	if len(r.Answer) != 1 || r.Answer[0].(*dns.PTR).Ptr != "p-web-1." {
		t.Errorf("PTR = %v", r.Answer)
	}
	// Unknown names go to the upstream.
	for _, proto := range []string{"udp", "tcp"} {
		r := query(t, addr, "ext.test", dns.TypeA, proto)
		if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "198.51.100.7" {
			t.Errorf("forwarded ext.test over %s = %v", proto, r.Answer)
		}
	}
	// Unregister: the name stops resolving at once.
	s.Unregister("p-web-1")
	if got := answerAddrs(query(t, addr, "web", dns.TypeA, "udp")); len(got) != 1 || got[0] != "10.1.0.3" {
		t.Errorf("after unregister web = %v", got)
	}
	if r := query(t, addr, "www", dns.TypeA, "udp"); r.Rcode != dns.RcodeNameError {
		t.Errorf("after unregister www rcode = %d, want NXDOMAIN from upstream", r.Rcode)
	}
}

func TestDNSServerPerContainerUpstreams(t *testing.T) {
	hostUp, hostQueries := stubUpstream(t)
	ownUp, ownQueries := stubUpstream(t)
	s := startLoopbackDNS(t, "127.0.0.0/8", []string{hostUp})
	// The client (127.0.0.1) is a container with dns: of its own.
	s.RegisterWithUpstreams("client", netip.MustParseAddr("127.0.0.1"), []string{ownUp}, "client")
	if r := query(t, s.Addr(), "ext.test", dns.TypeA, "udp"); len(r.Answer) != 1 {
		t.Fatalf("ext.test: %v", r)
	}
	if ownQueries.Load() != 1 || hostQueries.Load() != 0 {
		t.Fatalf("own upstream got %d queries, host upstream %d; want 1 and 0", ownQueries.Load(), hostQueries.Load())
	}
	// Local names never leave the server.
	if r := query(t, s.Addr(), "client", dns.TypeA, "udp"); len(r.Answer) != 1 || ownQueries.Load() != 1 {
		t.Fatalf("local name: %v, own upstream queries %d", r.Answer, ownQueries.Load())
	}
	s.Unregister("client")
	query(t, s.Addr(), "ext.test", dns.TypeA, "udp")
	if hostQueries.Load() != 1 {
		t.Fatalf("after unregister the host upstream got %d queries, want 1", hostQueries.Load())
	}
}

func TestDNSServerShuffles(t *testing.T) {
	s := startLoopbackDNS(t, "127.0.0.0/8", nil)
	for i := 0; i < 8; i++ {
		s.Register("c"+string(rune('a'+i)), netip.AddrFrom4([4]byte{10, 0, 0, byte(2 + i)}), "svc")
	}
	firsts := map[string]bool{}
	for i := 0; i < 50; i++ {
		r := query(t, s.Addr(), "svc", dns.TypeA, "udp")
		if len(r.Answer) != 8 {
			t.Fatalf("got %d answers, want 8", len(r.Answer))
		}
		firsts[r.Answer[0].(*dns.A).A.String()] = true
	}
	if len(firsts) < 2 {
		t.Errorf("the first answer never changed over 50 queries: not shuffled")
	}
}

func TestDNSServerRefusesOtherSubnets(t *testing.T) {
	up, queries := stubUpstream(t)
	s := startLoopbackDNS(t, "10.99.0.0/24", []string{up})
	s.Register("c", netip.MustParseAddr("10.99.0.2"), "web")
	for _, name := range []string{"web", "ext.test"} {
		if r := query(t, s.Addr(), name, dns.TypeA, "udp"); r.Rcode != dns.RcodeRefused || len(r.Answer) != 0 {
			t.Errorf("%s from outside the subnet: rcode %d, %d answers; want REFUSED", name, r.Rcode, len(r.Answer))
		}
	}
	if queries.Load() != 0 {
		t.Error("a query from outside the subnet was forwarded")
	}
}

func TestDNSServerTruncatesLargeAnswers(t *testing.T) {
	s := startLoopbackDNS(t, "127.0.0.0/8", nil)
	for i := 0; i < 100; i++ {
		s.Register("c"+itoa(i), netip.AddrFrom4([4]byte{10, 0, 1, byte(2 + i)}), "big-service-name-for-size")
	}
	c := &dns.Client{Net: "udp", UDPSize: 512}
	m := new(dns.Msg)
	m.SetQuestion("big-service-name-for-size.", dns.TypeA)
	r, _, err := c.Exchange(m, s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if !r.Truncated {
		t.Error("100 A records over UDP without EDNS0: reply not truncated")
	}
	if got := answerAddrs(query(t, s.Addr(), "big-service-name-for-size", dns.TypeA, "tcp")); len(got) != 100 {
		t.Errorf("over TCP got %d records, want 100", len(got))
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func FuzzDNSHandler(f *testing.F) {
	s := NewDNSServer(netip.MustParseAddrPort("127.0.0.1:0"), netip.MustParsePrefix("10.0.0.0/24"), nil)
	for i := 0; i < 60; i++ {
		s.Register("c"+itoa(i), netip.AddrFrom4([4]byte{10, 0, 0, byte(2 + i)}), "web", "alias-"+itoa(i%3))
	}
	for _, name := range []string{"web.", "alias-1.", "nothere.", "2.0.0.10.in-addr.arpa."} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		b, _ := m.Pack()
		f.Add(b)
		m.SetEdns0(4096, false)
		b, _ = m.Pack()
		f.Add(b)
	}
	f.Add([]byte{0, 1, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{})
	src := netip.MustParseAddr("10.0.0.9")
	f.Fuzz(func(t *testing.T, pkt []byte) {
		reply, fwd, size := s.handle(src, pkt, make([]byte, 0, maxUDPSize))
		if reply != nil && fwd != nil {
			t.Fatal("both a reply and a forward")
		}
		if reply == nil {
			return
		}
		limit := minUDPSize
		if size > limit {
			limit = size
		}
		if len(reply) > limit || len(reply) > maxUDPSize {
			t.Fatalf("reply of %d bytes, limit %d", len(reply), limit)
		}
		var m dns.Msg
		if err := m.Unpack(reply); err != nil {
			t.Fatalf("reply does not parse: %v", err)
		}
		if !m.Response {
			t.Fatal("reply without the QR bit")
		}
		if len(pkt) >= 2 && m.Id != uint16(pkt[0])<<8|uint16(pkt[1]) {
			t.Fatal("reply id differs from the query id")
		}
	})
}

// BenchmarkDNSHandle measures the handler alone (parse, look up, shuffle,
// pack) for a three-replica service name, without sockets.
func BenchmarkDNSHandle(b *testing.B) {
	s := NewDNSServer(netip.MustParseAddrPort("127.0.0.1:0"), netip.MustParsePrefix("10.0.0.0/24"), nil)
	for i := 0; i < 3; i++ {
		s.Register("c"+itoa(i), netip.AddrFrom4([4]byte{10, 0, 0, byte(2 + i)}), "api")
	}
	m := new(dns.Msg)
	m.SetQuestion("api.", dns.TypeA)
	q, _ := m.Pack()
	out := make([]byte, 0, maxUDPSize)
	src := netip.MustParseAddr("10.0.0.9")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		out := make([]byte, 0, maxUDPSize)
		for pb.Next() {
			if r, _, _ := s.handle(src, q, out[:0]); len(r) == 0 {
				b.Fatal("no reply")
			}
		}
	})
	_ = out
}
