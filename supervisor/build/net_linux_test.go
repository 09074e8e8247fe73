package build

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/berth-dev/berth/netstack"
	"github.com/berth-dev/berth/spec"
)

// stubDNS runs a DNS server on loopback that answers "probe.test." A with
// 198.51.100.7, other A/AAAA questions of probe.test with no records, and
// NXDOMAIN for every other name. It returns its "ip:port".
func stubDNS(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) }, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		switch q := r.Question[0]; {
		case q.Name == "probe.test." && q.Qtype == dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP("198.51.100.7")})
		case q.Name == "probe.test.":
		default:
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// outsideServer is a "remote host" the test owns: a network namespace
// joined to the host by a veth pair on a /30 of 198.18.0.0/15 (RFC 2544's
// benchmark range) that no host route covers, with an HTTP server on the
// far end that records the source address of each request.
type outsideServer struct {
	host   netip.Addr // the host's end of the veth
	remote netip.Addr // the server's address
	port   int
	hostIf string

	mu    sync.Mutex
	peers map[string][]string // path -> source addresses
}

func (o *outsideServer) url(path string) string {
	return fmt.Sprintf("http://%s:%d%s", o.remote, o.port, path)
}

func (o *outsideServer) seen(path string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.peers[path]...)
}

func newOutsideServer(t testing.TB) *outsideServer {
	t.Helper()
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	pool := netip.MustParsePrefix("198.18.0.0/15")
	var sub netip.Prefix
	for try := 0; try < 100 && !sub.IsValid(); try++ {
		a := pool.Addr().As4()
		n := rand.Uint32N(1 << 15) // /30s in a /15
		a[1] += byte(n >> 14)
		a[2] = byte(n >> 6)
		a[3] = byte(n<<2) & 0xfc
		cand := netip.PrefixFrom(netip.AddrFrom4(a), 30)
		free := true
		for _, r := range routes {
			if r.Dst == nil {
				continue
			}
			ip, _ := netip.AddrFromSlice(r.Dst.IP)
			ones, _ := r.Dst.Mask.Size()
			if ones > 0 && netip.PrefixFrom(ip.Unmap(), ones).Overlaps(cand) {
				free = false
			}
		}
		if free {
			sub = cand
		}
	}
	if !sub.IsValid() {
		t.Fatal("no free /30 in 198.18.0.0/15")
	}
	o := &outsideServer{host: sub.Addr().Next(), peers: map[string][]string{}}
	o.remote = o.host.Next()
	o.hostIf = fmt.Sprintf("bbo%d", rand.Uint32N(1e9))

	nsPath := filepath.Join(t.TempDir(), "outside")
	if err := netstack.CreateNetNS(nsPath); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netstack.RemoveNetNS(nsPath) })
	nsh, err := netns.GetFromPath(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: o.hostIf}, PeerName: "eth0", PeerNamespace: netlink.NsFd(nsh)}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("veth %s: %v", o.hostIf, err)
	}
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(o.hostIf); err == nil {
			netlink.LinkDel(l)
		}
	})
	hl, err := netlink.LinkByName(o.hostIf)
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.AddrAdd(hl, &netlink.Addr{IPNet: &net.IPNet{IP: o.host.AsSlice(), Mask: net.CIDRMask(30, 32)}}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(hl); err != nil {
		t.Fatal(err)
	}
	h, err := netlink.NewHandleAt(nsh, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, name := range []string{"lo", "eth0"} {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if name == "eth0" {
			if err := h.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: o.remote.AsSlice(), Mask: net.CIDRMask(30, 32)}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	l, err := listenInNetNS(nsPath, netip.AddrPortFrom(o.remote, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	o.port = l.Addr().(*net.TCPAddr).Port
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		src, _, _ := net.SplitHostPort(r.RemoteAddr)
		o.mu.Lock()
		o.peers[r.URL.Path] = append(o.peers[r.URL.Path], src)
		o.mu.Unlock()
		fmt.Fprintln(w, "outside-ok")
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return o
}

// listenInNetNS opens a TCP listener inside the network namespace at
// path: the socket stays in that namespace whatever thread accepts on it.
// The thread goes back to its own namespace afterwards (or, if that
// fails, stays locked so that the runtime retires it).
func listenInNetNS(path, addr string) (net.Listener, error) {
	type result struct {
		l   net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		goruntime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			goruntime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPath(path)
		if err != nil {
			goruntime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			goruntime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		l, err := net.Listen("tcp4", addr)
		if netns.Set(orig) == nil {
			goruntime.UnlockOSThread()
		}
		ch <- result{l, err}
	}()
	r := <-ch
	return r.l, r.err
}

// netLeftovers lists what build networks of root exist now: state
// directories, nftables tables and netns mounts of RUN bundles.
func netLeftovers(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	dirs, _ := filepath.Glob(filepath.Join(root, "build", netDirPrefix+"*"))
	out = append(out, dirs...)
	tables, err := exec.Command("nft", "list", "tables").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list tables: %v: %s", err, tables)
	}
	prefix := netstack.TableName(root) + "_"
	for _, line := range strings.Split(string(tables), "\n") {
		if f := strings.Fields(line); len(f) == 3 && strings.HasPrefix(f[2], prefix) {
			out = append(out, "table "+f[2])
		}
	}
	nss, _ := filepath.Glob(filepath.Join(root, "build", "tmp", "*", "netns"))
	for _, p := range nss {
		if netstack.IsNetNSMounted(p) {
			out = append(out, "netns "+p)
		}
	}
	return out
}

// bridgeOf finds the interface holding addr and the interfaces enslaved
// to it.
func bridgeOf(t testing.TB, addr netip.Addr) (string, []string) {
	t.Helper()
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ip, _ := netip.AddrFromSlice(a.IP); ip.Unmap() != addr {
			continue
		}
		br, err := netlink.LinkByIndex(a.LinkIndex)
		if err != nil {
			t.Fatal(err)
		}
		links, err := netlink.LinkList()
		if err != nil {
			t.Fatal(err)
		}
		var ports []string
		for _, l := range links {
			if l.Attrs().MasterIndex == br.Attrs().Index {
				ports = append(ports, l.Attrs().Name)
			}
		}
		return br.Attrs().Name, ports
	}
	return "", nil
}

// TestBuildNetworks runs RUN steps on each build network: the default
// bridge (address, route, embedded DNS to a stub upstream, outbound NAT to
// a server the test owns), none and host, then checks that nothing of the
// build's network is left.
func TestBuildNetworks(t *testing.T) {
	e := newTestEnv(t)
	e.b.NetUpstreams = []string{stubDNS(t)}
	out := newOutsideServer(t)
	hostNS, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": `FROM busybox
RUN ip -4 addr show eth0 | grep inet > /addr; ip route > /route; nslookup probe.test > /dns 2>&1; cp /etc/resolv.conf /resolv; cp /etc/hosts /hosts; hostname > /hostname
RUN timeout 10 wget -q -O /outside ` + out.url("/default") + `
RUN --network=none sh -c 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " > /none-dev; if timeout 5 wget -q -O - ` + out.url("/none") + `; then echo reached; else echo unreachable; fi > /none-reach'
RUN --network=host readlink /proc/self/ns/net > /host-ns
RUN --mount=type=bind,target=/ctx sh -c 'ip route | sed -n "s/^default via \([0-9.]*\).*/GW=\1/p"; while [ ! -e /ctx/go ]; do sleep 0.05; done'
`})
	var progress syncBuffer
	done := make(chan error, 1)
	go func() {
		_, err := e.b.Build(context.Background(), Options{ContextDir: dir, Tags: []string{"net:1"}, Progress: &progress})
		done <- err
	}()
	// The last step waits for ctx/go: meanwhile the network is up.
	var gw netip.Addr
	for !gw.IsValid() {
		select {
		case err := <-done:
			t.Fatalf("build ended before the last step: %v\n%s", err, progress.String())
		case <-time.After(20 * time.Millisecond):
		}
		if _, rest, ok := strings.Cut(progress.String(), " GW="); ok {
			line, _, _ := strings.Cut(rest, "\n")
			if gw, err = netip.ParseAddr(line); err != nil {
				t.Fatalf("gateway %q: %v", line, err)
			}
		}
	}
	bridge, ports := bridgeOf(t, gw)
	during := netLeftovers(t, e.root)
	writeFiles(t, dir, map[string]string{"go": ""})
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("build: %v\n%s", err, progress.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("build did not finish\n%s", progress.String())
	}
	if bridge == "" || len(ports) != 1 {
		t.Errorf("during the build: bridge with %s = %q, ports %v; want one bridge with one veth", gw, bridge, ports)
	}
	if len(during) != 3 {
		t.Errorf("during the build: %v; want a state dir, a table and a netns", during)
	}
	for _, name := range append([]string{bridge}, ports...) {
		if _, err := netlink.LinkByName(name); err == nil {
			t.Errorf("leak: interface %s of the build network", name)
		}
	}
	if left := netLeftovers(t, e.root); len(left) != 0 {
		t.Errorf("leak after the build: %v", left)
	}

	got := e.runImage(t, "net:1", "sh", "-c", "cat /addr /route /dns /resolv /hosts /hostname /outside /none-dev /none-reach /host-ns; test -e /etc/hosts || test -e /etc/resolv.conf || echo no-net-files")
	fields := strings.Fields(got)
	if len(fields) < 2 || fields[0] != "inet" {
		t.Fatalf("image content:\n%s", got)
	}
	addr, err := netip.ParsePrefix(fields[1])
	if err != nil {
		t.Fatalf("address %q: %v", fields[1], err)
	}
	if !netstack.DefaultPool.Contains(addr.Addr()) || addr.Bits() != netstack.DefaultSubnetBits {
		t.Errorf("eth0 address %s is not on a /%d of %s", addr, netstack.DefaultSubnetBits, netstack.DefaultPool)
	}
	if want := addr.Masked().Addr().Next(); gw != want {
		t.Errorf("gateway %s, want %s", gw, want)
	}
	for _, want := range []string{
		"default via " + gw.String() + " dev eth0",
		"198.51.100.7",                     // probe.test through the embedded DNS to the stub
		"nameserver " + gw.String() + "\n", // resolv.conf
		"127.0.0.1\tlocalhost\n",
		addr.Addr().String() + "\tbuildkitsandbox\n",
		"\nbuildkitsandbox\noutside-ok\nlo\nunreachable\n" + hostNS + "\nno-net-files",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("image content lacks %q:\n%s", want, got)
		}
	}
	if peers := out.seen("/default"); len(peers) != 1 || peers[0] != out.host.String() {
		t.Errorf("outside server saw %v, want the host's veth address %s (masqueraded)", peers, out.host)
	}
	if peers := out.seen("/none"); len(peers) != 0 {
		t.Errorf("a RUN --network=none step reached the outside server from %v", peers)
	}
}

// TestBuildNetworkModes checks build network values: "" and "default"
// share cache keys, host does not, named networks are refused, and a
// build whose RUN steps need no bridge makes none.
func TestBuildNetworkModes(t *testing.T) {
	e := newTestEnv(t)
	e.b.NetUpstreams = []string{}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nRUN echo x > /x\n"})
	if _, out, err := e.build(t, Options{ContextDir: dir}); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if _, out, err := e.build(t, Options{ContextDir: dir, Network: "default"}); err != nil || !strings.Contains(out, "CACHED") {
		t.Errorf("network default missed the cache of the unset network: %v\n%s", err, out)
	}
	if _, out, err := e.build(t, Options{ContextDir: dir, Network: "host"}); err != nil || strings.Contains(out, "CACHED") {
		t.Errorf("network host hit the cache of the default network: %v\n%s", err, out)
	}
	_, _, err := e.build(t, Options{ContextDir: dir, Network: "mynet"})
	if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), `build network "mynet"`) {
		t.Errorf("named network: %v", err)
	}
	p := &spec.Project{Name: "p", WorkingDir: dir}
	svc := &spec.Service{Name: "web", Build: &spec.Build{Context: dir, Network: "p_backend"}}
	if _, err := e.b.BuildService(context.Background(), p, svc, ServiceOptions{}); !errors.Is(err, ErrNotSupported) {
		t.Errorf("compose build.network of a named network: %v", err)
	}
	// Only none and host steps: no bridge is made at all.
	var progress syncBuffer
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nRUN --network=none --mount=type=bind,target=/ctx sh -c 'echo waiting; while [ ! -e /ctx/go ]; do sleep 0.05; done'\n"})
	done := make(chan error, 1)
	go func() {
		_, err := e.b.Build(context.Background(), Options{ContextDir: dir, Progress: &progress})
		done <- err
	}()
	for strings.Count(progress.String(), "waiting") < 2 {
		select {
		case err := <-done:
			t.Fatalf("build ended early: %v\n%s", err, progress.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	left := netLeftovers(t, e.root)
	writeFiles(t, dir, map[string]string{"go": ""})
	if err := <-done; err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if len(left) != 0 {
		t.Errorf("a build without default-network steps made %v", left)
	}
}

// TestCleanStaleRemovesDeadBuildNetwork leaves a build network as a build
// killed with SIGKILL would (bridge, attached RUN namespace, table, state
// dir) and checks that the next Builder removes it, but keeps what a live
// process's build owns.
func TestCleanStaleRemovesDeadBuildNetwork(t *testing.T) {
	e := newTestEnv(t)
	const suffix = "999999999-0badcafe" // no such pid
	name := netDirPrefix + suffix
	table := buildNetTable(e.root, name)
	m, err := netstack.New(netstack.Config{Root: e.root, StateDir: filepath.Join(e.root, "build", name), Table: table, Upstreams: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.RemoveAll(); m.Close() })
	nw, err := m.EnsureNetwork("build-"+suffix, spec.Network{Name: "default"})
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(e.root, "build", "tmp", "build-run-"+suffix)
	if err := os.Mkdir(bundle, 0o700); err != nil {
		t.Fatal(err)
	}
	nsPath := filepath.Join(bundle, "netns")
	if err := netstack.CreateNetNS(nsPath); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netstack.RemoveNetNS(nsPath) })
	a, err := m.Attach(nw.ID, netstack.AttachOptions{NetNSPath: nsPath, Container: "build-run-" + suffix})
	if err != nil {
		t.Fatal(err)
	}
	// The process died: its DNS server is gone, the rest stays.
	m.Close()
	live := filepath.Join(e.root, "build", netDirPrefix+"1-0badcafe") // pid 1 lives on
	if err := os.Mkdir(live, 0o700); err != nil {
		t.Fatal(err)
	}
	if len(netLeftovers(t, e.root)) != 4 {
		t.Fatalf("setup: %v", netLeftovers(t, e.root))
	}

	if _, err := New(e.root, e.store, e.rt); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{nw.Bridge, a.HostIf} {
		if _, err := netlink.LinkByName(l); err == nil {
			t.Errorf("interface %s of a dead build kept", l)
		}
	}
	if left := netLeftovers(t, e.root); len(left) != 1 || left[0] != live {
		t.Errorf("after cleanup: %v, want only the live build's %s", left, live)
	}
	if _, err := os.Stat(bundle); !os.IsNotExist(err) {
		t.Errorf("bundle of a dead build kept: %v", err)
	}
}
