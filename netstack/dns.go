package netstack

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

const (
	// maxUDPReply bounds a UDP reply: 512 bytes without EDNS0, the
	// client's advertised size (at most 4096) with it.
	minUDPSize = 512
	maxUDPSize = 4096
	// maxForwards bounds the forwarded queries in flight; beyond it a
	// query gets SERVFAIL at once instead of a new goroutine.
	maxForwards = 512
	// forwardTimeout is how long one upstream gets per query.
	forwardTimeout = 2 * time.Second
)

// DNSServer is the embedded DNS server of one network. It answers, with
// TTL 0, for the names registered on it (service names with every running
// replica, shuffled; container names; hostnames; aliases) and forwards
// every other name to the upstream resolvers. Only clients whose source
// address is inside the network's subnet get answers; others get REFUSED.
//
// Lifecycle: NewDNSServer starts nothing; Start binds UDP and TCP and
// starts the serving goroutines; Close stops them and waits. Both are
// idempotent. Register and Unregister work in any state, take effect
// before they return, and are safe for concurrent use.
//
//	New ──Start──► serving ──Close──► closed
type DNSServer struct {
	listen netip.AddrPort
	subnet netip.Prefix

	// index is replaced as a whole on every change (copy on write), so a
	// query reads it without a lock.
	index     atomic.Pointer[dnsIndex]
	upstreams atomic.Pointer[[]string]

	mu      sync.Mutex        // guards the fields below
	recs    map[string]record // container -> its record
	started bool
	closed  bool
	udp     *net.UDPConn
	tcp     *dns.Server
	bound   netip.AddrPort

	fwdSem chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type record struct {
	addr      netip.Addr
	names     []string // fully qualified, lower case
	upstreams []string // the container's own resolvers (dns:), if any
}

type dnsIndex struct {
	a   map[string][]netip.Addr // "web." -> addresses, sorted
	ptr map[string]string       // "2.0.213.10.in-addr.arpa." -> "name."
	up  map[netip.Addr][]string // client address -> its own upstreams
}

// NewDNSServer returns a server that will listen on listen (UDP and TCP;
// port 0 picks one, see Addr) and answer clients inside subnet, forwarding
// unknown names to upstreams ("ip:port" or "ip").
func NewDNSServer(listen netip.AddrPort, subnet netip.Prefix, upstreams []string) *DNSServer {
	s := &DNSServer{listen: listen, subnet: subnet.Masked(), recs: map[string]record{}, fwdSem: make(chan struct{}, maxForwards)}
	s.index.Store(&dnsIndex{a: map[string][]netip.Addr{}, ptr: map[string]string{}, up: map[netip.Addr][]string{}})
	s.SetUpstreams(upstreams)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// SetUpstreams replaces the resolvers unknown names are forwarded to.
func (s *DNSServer) SetUpstreams(upstreams []string) {
	ups := withPort53(upstreams)
	s.upstreams.Store(&ups)
}

func withPort53(list []string) []string {
	ups := make([]string, 0, len(list))
	for _, u := range list {
		if _, _, err := net.SplitHostPort(u); err != nil {
			u = net.JoinHostPort(u, "53")
		}
		ups = append(ups, u)
	}
	return ups
}

// Start binds the UDP and TCP sockets and starts serving. It is a no-op
// when already started and an error after Close.
func (s *DNSServer) Start() (retErr error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("dns server: closed")
	}
	if s.started {
		return nil
	}
	lc := net.ListenConfig{Control: reuseAddr}
	pc, err := lc.ListenPacket(context.Background(), "udp4", s.listen.String())
	if err != nil {
		return fmt.Errorf("dns server: %w", err)
	}
	udp := pc.(*net.UDPConn)
	defer func() {
		if retErr != nil {
			udp.Close()
		}
	}()
	bound := udp.LocalAddr().(*net.UDPAddr).AddrPort()
	ln, err := lc.Listen(context.Background(), "tcp4", netip.AddrPortFrom(s.listen.Addr(), bound.Port()).String())
	if err != nil {
		return fmt.Errorf("dns server: %w", err)
	}
	started := make(chan struct{})
	srv := &dns.Server{Listener: ln, Net: "tcp", Handler: dns.HandlerFunc(s.serveTCP),
		ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second,
		NotifyStartedFunc: func() { close(started) }}
	served := make(chan error, 1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		served <- srv.ActivateAndServe()
	}()
	select {
	case <-started:
	case err := <-served:
		ln.Close()
		return fmt.Errorf("dns server: tcp: %w", err)
	}
	s.udp, s.tcp, s.bound, s.started = udp, srv, netip.AddrPortFrom(bound.Addr().Unmap(), bound.Port()), true
	// Several readers share the socket: the read itself is serialized by
	// the runtime, the answering is not.
	for i := 0; i < udpReaders(); i++ {
		s.wg.Add(1)
		go s.serveUDP(udp)
	}
	return nil
}

// Addr is the address the server listens on (valid after Start).
func (s *DNSServer) Addr() netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bound
}

// Close stops serving and waits for the serving goroutines and the
// forwarded queries in flight. It is idempotent.
func (s *DNSServer) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cancel()
	if s.started {
		s.udp.Close()
		s.tcp.Shutdown()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Register publishes names for container at addr, replacing what the
// container had. The names resolve when Register returns.
func (s *DNSServer) Register(container string, addr netip.Addr, names ...string) {
	s.RegisterWithUpstreams(container, addr, nil, names...)
}

// RegisterWithUpstreams is Register for a container with resolvers of
// its own (the service's dns:): names that are not on the network are
// forwarded there instead of to the server's upstreams, as Docker does.
func (s *DNSServer) RegisterWithUpstreams(container string, addr netip.Addr, upstreams []string, names ...string) {
	r := record{addr: addr.Unmap()}
	if len(upstreams) > 0 {
		r.upstreams = withPort53(upstreams)
	}
	seen := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(n)), ".")
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		r.names = append(r.names, n+".")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs[container] = r
	s.rebuildLocked()
}

// Unregister removes every name of container. It is idempotent.
func (s *DNSServer) Unregister(container string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.recs[container]; !ok {
		return
	}
	delete(s.recs, container)
	s.rebuildLocked()
}

// Lookup returns the addresses registered for name, sorted.
func (s *DNSServer) Lookup(name string) []netip.Addr {
	n := strings.TrimSuffix(strings.ToLower(name), ".") + "."
	return append([]netip.Addr(nil), s.index.Load().a[n]...)
}

func (s *DNSServer) rebuildLocked() {
	idx := &dnsIndex{a: map[string][]netip.Addr{}, ptr: map[string]string{}, up: map[netip.Addr][]string{}}
	containers := make([]string, 0, len(s.recs))
	for c := range s.recs {
		containers = append(containers, c)
	}
	sort.Strings(containers)
	for _, c := range containers {
		r := s.recs[c]
		if r.upstreams != nil {
			idx.up[r.addr] = r.upstreams
		}
		for _, n := range r.names {
			if !containsAddr(idx.a[n], r.addr) {
				idx.a[n] = append(idx.a[n], r.addr)
			}
		}
		if len(r.names) > 0 && r.addr.Is4() {
			rev, err := dns.ReverseAddr(r.addr.String())
			if _, dup := idx.ptr[rev]; err == nil && !dup {
				idx.ptr[rev] = r.names[0]
			}
		}
	}
	for _, addrs := range idx.a {
		sort.Slice(addrs, func(i, j int) bool { return addrs[i].Less(addrs[j]) })
	}
	s.index.Store(idx)
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

func (s *DNSServer) serveUDP(conn *net.UDPConn) {
	defer s.wg.Done()
	buf := make([]byte, 65535)
	out := make([]byte, 0, maxUDPSize)
	for {
		n, src, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		reply, fwd, size := s.handle(src.Addr().Unmap(), buf[:n], out[:0])
		if reply != nil {
			conn.WriteToUDPAddrPort(reply, src)
			continue
		}
		if fwd == nil {
			continue
		}
		select {
		case s.fwdSem <- struct{}{}:
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer func() { <-s.fwdSem }()
				r := s.forward(src.Addr().Unmap(), fwd, "udp")
				r.Truncate(size)
				if b, err := r.Pack(); err == nil {
					conn.WriteToUDPAddrPort(b, src)
				}
			}()
		default:
			if b, err := failure(fwd, dns.RcodeServerFailure).Pack(); err == nil {
				conn.WriteToUDPAddrPort(b, src)
			}
		}
	}
}

func (s *DNSServer) serveTCP(w dns.ResponseWriter, req *dns.Msg) {
	var src netip.Addr
	if ta, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		src = ta.AddrPort().Addr().Unmap()
	}
	reply, fwd := s.answer(src, req)
	if fwd {
		reply = s.forward(src, req, "tcp")
	}
	if reply != nil {
		w.WriteMsg(reply)
	}
}

// handle answers one UDP query packet from src. It returns the reply
// packet (appended to out), or, for a name to forward, the parsed query
// and the largest reply the client accepts. Both nil: drop the packet.
func (s *DNSServer) handle(src netip.Addr, pkt []byte, out []byte) (reply []byte, fwd *dns.Msg, size int) {
	if len(pkt) < 12 {
		return nil, nil, 0
	}
	req := new(dns.Msg)
	if err := req.Unpack(pkt); err != nil {
		// Never answer a response, nor garbage from outside the network.
		if pkt[2]&0x80 != 0 || !s.subnet.Contains(src) {
			return nil, nil, 0
		}
		m := new(dns.Msg)
		m.Id = uint16(pkt[0])<<8 | uint16(pkt[1])
		m.Response = true
		m.Rcode = dns.RcodeFormatError
		b, err := m.PackBuffer(out)
		if err != nil {
			return nil, nil, 0
		}
		return b, nil, 0
	}
	size = minUDPSize
	if opt := req.IsEdns0(); opt != nil {
		size = max(minUDPSize, min(int(opt.UDPSize()), maxUDPSize))
	}
	m, forward := s.answer(src, req)
	if forward {
		return nil, req, size
	}
	if m == nil {
		return nil, nil, 0
	}
	m.Truncate(size)
	b, err := m.PackBuffer(out)
	if err != nil {
		return nil, nil, 0
	}
	return b, nil, size
}

// answer decides the reply to req from src: a message, or forward=true
// for a name that is not ours. A nil message without forward means drop.
func (s *DNSServer) answer(src netip.Addr, req *dns.Msg) (reply *dns.Msg, forward bool) {
	if req.Response {
		return nil, false
	}
	if !src.IsValid() || !s.subnet.Contains(src) {
		return failure(req, dns.RcodeRefused), false
	}
	if req.Opcode != dns.OpcodeQuery {
		return failure(req, dns.RcodeNotImplemented), false
	}
	if len(req.Question) != 1 {
		return failure(req, dns.RcodeFormatError), false
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	idx := s.index.Load()
	if q.Qtype == dns.TypePTR {
		if target, ok := idx.ptr[name]; ok {
			m := reply0(req)
			m.Answer = []dns.RR{&dns.PTR{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET}, Ptr: target}}
			return m, false
		}
	}
	addrs, ok := idx.a[name]
	if !ok {
		if len(s.upstreamsFor(idx, src)) == 0 {
			return failure(req, dns.RcodeServerFailure), false
		}
		return nil, true
	}
	m := reply0(req)
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		return m, false
	}
	if q.Qtype != dns.TypeA && q.Qtype != dns.TypeANY {
		return m, false // the name exists, without records of this type
	}
	m.Answer = make([]dns.RR, len(addrs))
	rrs := make([]dns.A, len(addrs))
	for i, a := range addrs {
		b := a.As4()
		rrs[i] = dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0}, A: net.IP(b[:])}
		m.Answer[i] = &rrs[i]
	}
	if len(m.Answer) > 1 {
		rand.Shuffle(len(m.Answer), func(i, j int) { m.Answer[i], m.Answer[j] = m.Answer[j], m.Answer[i] })
	}
	return m, false
}

func reply0(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.Id = req.Id
	m.Response = true
	m.Opcode = req.Opcode
	m.Authoritative = true
	m.RecursionDesired = req.RecursionDesired
	m.RecursionAvailable = true
	m.Question = req.Question
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(max(minUDPSize, min(opt.UDPSize(), maxUDPSize)), false)
	}
	return m
}

func failure(req *dns.Msg, rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.Id = req.Id
	m.Response = true
	m.Opcode = req.Opcode
	m.RecursionDesired = req.RecursionDesired
	m.RecursionAvailable = true
	m.Rcode = rcode
	if len(req.Question) == 1 {
		m.Question = req.Question
	}
	return m
}

// forward sends req to the upstreams in turn and returns the first
// answer, or SERVFAIL. It asks over UDP; a truncated answer to a client
// that came over TCP is asked again over TCP.
func (s *DNSServer) forward(src netip.Addr, req *dns.Msg, proto string) *dns.Msg {
	c := &dns.Client{Net: "udp", Timeout: forwardTimeout, UDPSize: maxUDPSize}
	for _, up := range s.upstreamsFor(s.index.Load(), src) {
		ctx, cancel := context.WithTimeout(s.ctx, forwardTimeout)
		r, _, err := c.ExchangeContext(ctx, req, up)
		if err == nil && r != nil && r.Truncated && proto == "tcp" {
			r, _, err = (&dns.Client{Net: "tcp", Timeout: forwardTimeout}).ExchangeContext(ctx, req, up)
		}
		cancel()
		if err == nil && r != nil {
			r.Id = req.Id
			return r
		}
		if s.ctx.Err() != nil {
			break
		}
	}
	return failure(req, dns.RcodeServerFailure)
}

// upstreamsFor returns the client's own resolvers, else the server's.
func (s *DNSServer) upstreamsFor(idx *dnsIndex, src netip.Addr) []string {
	if ups, ok := idx.up[src]; ok {
		return ups
	}
	return *s.upstreams.Load()
}
