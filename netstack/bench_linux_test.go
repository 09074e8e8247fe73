package netstack

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/spec"
	"github.com/miekg/dns"
	"github.com/vishvananda/netns"
)

// dialIn opens a UDP socket inside network namespace ns, connected to
// server. The namespace switch happens on a locked thread of a goroutine
// that exits without unlocking, so the thread is thrown away.
func dialIn(t testing.TB, ns string, server netip.AddrPort) *net.UDPConn {
	t.Helper()
	type res struct {
		c   *net.UDPConn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread()
		h, err := netns.GetFromPath(nsPath(ns))
		if err != nil {
			ch <- res{err: err}
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			ch <- res{err: err}
			return
		}
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(server))
		ch <- res{c, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.c.Close() })
	return r.c
}

// dnsClient asks one name over a connected socket and checks the reply.
type dnsClient struct {
	c    *net.UDPConn
	q    []byte
	buf  []byte
	id   uint16
	late int // replies that came after their query timed out
}

func newDNSClient(c *net.UDPConn, name string) *dnsClient {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	q, _ := m.Pack()
	return &dnsClient{c: c, q: q, buf: make([]byte, 1500)}
}

// ask returns the number of A records in the answer, or an error on a
// timeout or a mismatched reply.
func (d *dnsClient) ask(timeout time.Duration) (int, error) {
	d.id++
	binary.BigEndian.PutUint16(d.q, d.id)
	if _, err := d.c.Write(d.q); err != nil {
		return 0, err
	}
	d.c.SetReadDeadline(time.Now().Add(timeout))
	for {
		n, err := d.c.Read(d.buf)
		if err != nil {
			return 0, err
		}
		if n < 12 || binary.BigEndian.Uint16(d.buf) != d.id {
			d.late++ // a late reply to an earlier query
			continue
		}
		return int(binary.BigEndian.Uint16(d.buf[6:8])), nil
	}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

// dnsBenchEnv is a network with a three-replica service "api" and a
// client namespace.
func dnsBenchEnv(b *testing.B) (*env, *Network, string) {
	e := newEnv(b, nil)
	n := e.network("bench", spec.Network{Name: "default"})
	for i := 1; i <= 3; i++ {
		e.container(n.ID, AttachOptions{Container: fmt.Sprintf("bench-api-%d", i), Service: "api"})
	}
	client, _ := e.container(n.ID, AttachOptions{Container: "bench-client-1"})
	return e, n, client
}

// BenchmarkDNSServiceName measures queries per second for a service name
// with 1, 4 and 16 clients in a container namespace, each with one query
// in flight, against the server on the gateway address, and the latency
// of every query.
func BenchmarkDNSServiceName(b *testing.B) {
	for _, workers := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("clients=%d", workers), func(b *testing.B) { benchDNS(b, workers) })
	}
}

func benchDNS(b *testing.B, workers int) {
	_, n, client := dnsBenchEnv(b)
	clients := make([]*dnsClient, workers)
	for i := range clients {
		clients[i] = newDNSClient(dialIn(b, client, netip.AddrPortFrom(n.Gateway, 53)), "api")
	}
	var next atomic.Int64
	var lost atomic.Int64
	lat := make([][]time.Duration, workers)
	stopGap := watchStalls()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				got, err := clients[w].ask(time.Second)
				if err != nil || got != 3 {
					lost.Add(1)
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "queries/s")
	b.ReportMetric(float64(percentile(all, 0.50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(percentile(all, 0.99).Microseconds()), "p99-µs")
	late := 0
	for _, c := range clients {
		late += c.late
	}
	b.ReportMetric(float64(lost.Load()), "timeouts(1s)")
	b.ReportMetric(float64(late), "late-replies")
	b.ReportMetric(float64(stopGap().Milliseconds()), "max-stall-ms")
}

// watchStalls measures the longest time a goroutine that wakes every
// millisecond went without running: a stall of the whole process or
// machine (a loaded host, a descheduled VM), not of the DNS server.
func watchStalls() (stop func() time.Duration) {
	done := make(chan struct{})
	res := make(chan time.Duration, 1)
	go func() {
		var worst time.Duration
		last := time.Now()
		for {
			select {
			case <-done:
				res <- worst
				return
			case <-time.After(time.Millisecond):
			}
			now := time.Now()
			worst = max(worst, now.Sub(last))
			last = now
		}
	}()
	return func() time.Duration { close(done); return <-res }
}

// BenchmarkDNSLatency500qps measures latency at a light load: one client
// sending 500 queries per second, as the peers were measured.
func BenchmarkDNSLatency500qps(b *testing.B) {
	_, n, client := dnsBenchEnv(b)
	c := newDNSClient(dialIn(b, client, netip.AddrPortFrom(n.Gateway, 53)), "api")
	lat := make([]time.Duration, 0, b.N)
	lost := 0
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		<-tick.C
		t0 := time.Now()
		if got, err := c.ask(time.Second); err != nil || got != 3 {
			lost++
			continue
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(percentile(lat, 0.50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds()), "p99-µs")
	b.ReportMetric(float64(lost), "unanswered")
}

// BenchmarkRegisterToResolve measures the time from Register (the
// container started) to its name answering a query from another
// container.
func BenchmarkRegisterToResolve(b *testing.B) {
	e, n, client := dnsBenchEnv(b)
	ns := e.netns()
	if _, err := e.m.Attach(n.ID, AttachOptions{Container: "bench-new-1", Service: "newsvc", NetNSPath: nsPath(ns)}); err != nil {
		b.Fatal(err)
	}
	c := newDNSClient(dialIn(b, client, netip.AddrPortFrom(n.Gateway, 53)), "newsvc")
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := e.m.Register("bench-new-1"); err != nil {
			b.Fatal(err)
		}
		for {
			got, err := c.ask(time.Second)
			if err != nil {
				b.Fatal(err)
			}
			if got == 1 {
				break
			}
		}
		total += time.Since(t0)
		e.m.Unregister("bench-new-1")
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs-to-resolve")
}

// BenchmarkAttach measures Attach: veth pair, move, rename, address,
// routes. Detach runs outside the timer.
func BenchmarkAttach(b *testing.B) {
	e := newEnv(b, nil)
	n := e.network("bench", spec.Network{Name: "default"})
	ns := e.netns()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a, err := e.m.Attach(n.ID, AttachOptions{Container: "bench-c", NetNSPath: nsPath(ns)})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		e.links[a.HostIf] = true
		if err := e.m.Detach(n.ID, "bench-c"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// udpEchoIn runs a UDP echo server on port in namespace ns until the
// test ends.
func udpEchoIn(t testing.TB, ns string, port int) {
	t.Helper()
	ch := make(chan net.PacketConn, 1)
	errc := make(chan error, 1)
	go func() {
		// The thread goes back to its own namespace before it is
		// unlocked; were it left locked in ns, and were it the main
		// thread, Go would wedge it there instead of ending it.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		h, err := netns.GetFromPath(nsPath(ns))
		if err != nil {
			errc <- err
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- err
			return
		}
		pc, lerr := net.ListenPacket("udp4", fmt.Sprintf(":%d", port))
		if err := netns.Set(orig); err != nil {
			errc <- err // stays locked: retired with the goroutine
			return
		}
		runtime.UnlockOSThread()
		if lerr != nil {
			errc <- lerr
			return
		}
		ch <- pc
	}()
	var pc net.PacketConn
	select {
	case pc = <-ch:
	case err := <-errc:
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
}
