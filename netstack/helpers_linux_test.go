package netstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/spec"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func requirePrivileged(t testing.TB) {
	t.Helper()
	if os.Getenv("BERTH_PRIVILEGED") != "1" {
		if os.Getenv("CI") != "" {
			t.Fatal("privileged test: CI must set BERTH_PRIVILEGED=1")
		}
		t.Skip("privileged test: set BERTH_PRIVILEGED=1 and run as root")
	}
	if os.Geteuid() != 0 {
		t.Fatal("BERTH_PRIVILEGED=1 needs root")
	}
}

const busybox = "/bin/busybox"

var nsCounter atomic.Int64

// env is one test's world: a Manager on its own root and every link,
// namespace and process the test made, all removed and checked for
// leaks in t.Cleanup.
type env struct {
	t     testing.TB
	m     *Manager
	root  string
	links map[string]bool // every interface name made, for the leak check
	nss   []string
}

func newEnv(t testing.TB, upstreams []string) *env {
	t.Helper()
	requirePrivileged(t)
	if _, err := os.Stat(busybox); err != nil {
		t.Fatalf("%s is needed (apt-get install busybox-static)", busybox)
	}
	root := t.TempDir()
	if upstreams == nil {
		upstreams = []string{}
	}
	m, err := New(Config{Root: root, Upstreams: upstreams})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, m: m, root: root, links: map[string]bool{}}
	t.Cleanup(e.cleanup)
	return e
}

// cleanup tears everything down and fails the test on any leak.
func (e *env) cleanup() {
	t := e.t
	for _, n := range e.m.Networks() {
		e.links[n.Bridge] = true
	}
	if err := e.m.RemoveAll(); err != nil {
		t.Errorf("RemoveAll: %v", err)
	}
	e.m.Close()
	for _, ns := range e.nss {
		exec.Command("ip", "netns", "del", ns).Run()
		os.RemoveAll(filepath.Join("/etc/netns", ns))
	}
	// Leak check: links, nft table, namespaces.
	for name := range e.links {
		if _, err := netlink.LinkByName(name); err == nil {
			t.Errorf("leak: interface %s still exists", name)
			if l, err := netlink.LinkByName(name); err == nil {
				netlink.LinkDel(l)
			}
		}
	}
	if ok, err := tableExists(e.m.Table()); err != nil || ok {
		t.Errorf("leak: nft table %s still exists (err %v)", e.m.Table(), err)
		deleteTable(e.m.Table())
	}
	for _, ns := range e.nss {
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); err == nil {
			t.Errorf("leak: network namespace %s still exists", ns)
		}
	}
}

// network ensures a network and records its bridge for the leak check.
func (e *env) network(project string, n spec.Network) *Network {
	e.t.Helper()
	if n.ActualName == "" {
		n.ActualName = project + "_" + n.Name
	}
	net, err := e.m.EnsureNetwork(project, n)
	if err != nil {
		e.t.Fatalf("EnsureNetwork %s/%s: %v", project, n.Name, err)
	}
	e.links[net.Bridge] = true
	return net
}

// netns makes a named network namespace (the test's "container").
func (e *env) netns() string {
	e.t.Helper()
	name := fmt.Sprintf("btest%d-%d", os.Getpid(), nsCounter.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		e.t.Fatalf("ip netns add: %v: %s", err, out)
	}
	e.nss = append(e.nss, name)
	return name
}

func nsPath(ns string) string { return filepath.Join("/run/netns", ns) }

// container makes a namespace, attaches it and registers its names.
func (e *env) container(networkID string, o AttachOptions) (string, *Attachment) {
	e.t.Helper()
	ns := e.netns()
	o.NetNSPath = nsPath(ns)
	a, err := e.m.Attach(networkID, o)
	if err != nil {
		e.t.Fatalf("Attach %s: %v", o.Container, err)
	}
	e.links[a.HostIf] = true
	if err := e.m.Register(o.Container); err != nil {
		e.t.Fatal(err)
	}
	return ns, a
}

// writeFiles writes the container's resolv.conf and hosts where
// ip netns exec bind-mounts them over /etc.
func (e *env) writeFiles(ns string, o FilesOptions) {
	e.t.Helper()
	f, err := ContainerFiles(o)
	if err != nil {
		e.t.Fatal(err)
	}
	dir := filepath.Join("/etc/netns", ns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	for name, data := range map[string][]byte{"resolv.conf": f.ResolvConf, "hosts": f.Hosts} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
}

// run runs busybox applet args in ns.
func run(ns string, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, busybox}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// httpd serves body at / from ns on port 80 until the test ends.
func (e *env) httpd(ns, body string) {
	e.t.Helper()
	dir := e.t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, busybox, "httpd", "-f", "-p", "80", "-h", dir)
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// Wait until it listens (from inside its own namespace).
	deadline := time.Now().Add(5 * time.Second)
	for {
		if out, err := run(ns, 2*time.Second, "wget", "-q", "-O", "-", "http://127.0.0.1/"); err == nil && out == body {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("httpd in %s did not come up", ns)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fetch gets url from ns with busybox wget (its -T crashes in Debian's
// static busybox 1.35, so the timeout is a kill).
func fetch(ns, url string) (string, error) { return fetchWithin(ns, url, 10*time.Second) }

func fetchWithin(ns, url string, timeout time.Duration) (string, error) {
	out, err := run(ns, timeout, "wget", "-q", "-O", "-", url)
	if err != nil {
		return out, fmt.Errorf("wget %s: %v: %s", url, err, out)
	}
	return out, nil
}

// nslookup resolves name in ns against server and returns the addresses
// of the answer section.
func nslookup(ns, name string, server netip.Addr) ([]string, error) {
	out, err := run(ns, 5*time.Second, "nslookup", "-type=a", name, server.String())
	if err != nil {
		return nil, fmt.Errorf("nslookup %s: %v: %s", name, err, out)
	}
	var addrs []string
	_, answer, _ := strings.Cut(out, "Name:")
	for _, line := range strings.Split(answer, "\n") {
		if a, ok := strings.CutPrefix(strings.TrimSpace(line), "Address:"); ok {
			addrs = append(addrs, strings.TrimSpace(a))
		}
	}
	if len(addrs) == 0 {
		return nil, errors.New("no address in: " + out)
	}
	return addrs, nil
}

// nftRuleCount counts the rules of a chain of the table.
func nftRuleCount(t testing.TB, table, chain string) int {
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	rules, err := c.GetRules(&nftables.Table{Name: table, Family: nftables.TableFamilyIPv4}, &nftables.Chain{Name: chain})
	if err != nil {
		return 0
	}
	return len(rules)
}

// outside makes a "host network" the test owns: a namespace joined to
// the host by a veth pair on 198.18.X.0/30 (RFC 2544 benchmark range),
// serving body over HTTP at the returned address.
func (e *env) outside(body string) netip.Addr {
	e.t.Helper()
	ns := e.netns()
	x := byte(nsCounter.Add(1)%200 + 20)
	y := byte(os.Getpid() % 250)
	hostIf := fmt.Sprintf("bo%d", nsCounter.Add(1)+int64(os.Getpid())*1000)
	if len(hostIf) > 15 {
		hostIf = hostIf[:15]
	}
	hostAddr := netip.AddrFrom4([4]byte{198, 18 + x%2, y, x &^ 3})
	hostAddr = hostAddr.Next()
	outAddr := hostAddr.Next()
	cmds := [][]string{
		{"ip", "link", "add", hostIf, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"ip", "addr", "add", hostAddr.String() + "/30", "dev", hostIf},
		{"ip", "link", "set", hostIf, "up"},
		{"ip", "-n", ns, "addr", "add", outAddr.String() + "/30", "dev", "eth0"},
		{"ip", "-n", ns, "link", "set", "eth0", "up"},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
	}
	e.links[hostIf] = true
	e.t.Cleanup(func() {
		if l, err := netlink.LinkByName(hostIf); err == nil {
			netlink.LinkDel(l)
		}
	})
	for _, c := range cmds {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			e.t.Fatalf("%v: %v: %s", c, err, out)
		}
	}
	e.httpd(ns, body)
	return outAddr
}

func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// freePort finds a TCP port that is free on the host right now.
func freePort(t testing.TB) uint16 {
	l, err := net.Listen("tcp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// netlinkIn returns a netlink handle working in the network namespace
// bound at path, closed when the test ends.
func netlinkIn(t testing.TB, path string) *netlink.Handle {
	t.Helper()
	nsh, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}
