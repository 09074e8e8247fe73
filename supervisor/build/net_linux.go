package build

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/netstack"
	"github.com/berth-dev/berth/spec"
)

// netDirPrefix starts the state directory of a build's network under
// <root>/build: net-PID-RAND.
const netDirPrefix = "net-"

// buildNetTable is the nftables table of the build network whose state
// directory is named name: the root's table name plus the directory name,
// so a later process can find it from the directory alone.
func buildNetTable(root, name string) string {
	return netstack.TableName(root) + "_" + strings.ReplaceAll(name, "-", "_")
}

// buildNet is the default network of one Build call: a bridge on a /24 of
// berth's pool with outbound NAT and an embedded DNS server on its
// gateway, owned by a netstack.Manager of its own (state under
// <root>/build/net-PID-RAND, table buildNetTable). It is made when the
// first RUN step needs it and torn down by close.
type buildNet struct {
	root      string
	upstreams []string // nil: the host's resolvers

	mu     sync.Mutex // guards everything below
	m      *netstack.Manager
	dir    string
	net    *netstack.Network
	err    error // the first failure to make the network, returned again
	closed bool
	// gone are the host ends of the veths of finished steps, which the
	// kernel removes with their namespaces; close waits for them.
	gone []string
}

func newBuildNet(root string, upstreams []string) *buildNet {
	return &buildNet{root: root, upstreams: upstreams}
}

// ensure returns the Manager and the network, making them on first use.
func (n *buildNet) ensure() (*netstack.Manager, *netstack.Network, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.net != nil || n.err != nil {
		return n.m, n.net, n.err
	}
	if n.closed {
		return nil, nil, errors.New("build network: build finished")
	}
	var r [4]byte
	rand.Read(r[:])
	suffix := strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(r[:])
	name := netDirPrefix + suffix
	n.dir = filepath.Join(n.root, "build", name)
	m, err := netstack.New(netstack.Config{Root: n.root, StateDir: n.dir, Table: buildNetTable(n.root, name), Upstreams: n.upstreams})
	if err != nil {
		n.err = fmt.Errorf("build network: %w", err)
		return nil, nil, n.err
	}
	n.m = m // set first: close tears down whatever EnsureNetwork got to
	nw, err := m.EnsureNetwork("build-"+suffix, spec.Network{Name: "default"})
	if err != nil {
		n.err = fmt.Errorf("build network: %w", err)
		return nil, nil, n.err
	}
	n.net = nw
	return n.m, n.net, nil
}

// close removes the network (bridge, veths, nftables table), stops its
// DNS server and removes the state directory. The directory stays when
// teardown failed, so that cleanStale of a later process retries it.
// It is idempotent.
func (n *buildNet) close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	if n.m == nil {
		return nil
	}
	err := errors.Join(netstack.WaitLinksGone(n.gone, 5*time.Second), n.m.RemoveAll(), n.m.Close())
	n.m, n.net, n.gone = nil, nil, nil
	if err != nil {
		return fmt.Errorf("remove build network: %w", err)
	}
	return os.RemoveAll(n.dir)
}

// attach gives a RUN step's container the default network: a network
// namespace at bundle/netns with eth0 on the build's bridge, and
// resolv.conf (the embedded DNS server, the host's search and options)
// and hosts (localhost, buildkitsandbox and its address) under bundle/etc
// for the caller to bind over the rootfs's. It returns the namespace path,
// the two files and an undo that detaches and removes the namespace.
func (n *buildNet) attach(id, bundle string) (nsPath string, files map[string]string, undo func(), retErr error) {
	m, nw, err := n.ensure()
	if err != nil {
		return "", nil, nil, err
	}
	nsPath = filepath.Join(bundle, "netns")
	if err := netstack.CreateNetNS(nsPath); err != nil {
		return "", nil, nil, fmt.Errorf("build network: %w", err)
	}
	undo = func() {
		// The veth goes with the namespace, in the kernel's own time
		// (deleting it here cost ~20 ms a step); close waits for it.
		links, _ := m.DetachAllKeepLinks(id)
		if err := netstack.RemoveNetNS(nsPath); err != nil {
			netstack.WaitLinksGone(links, 0)
			return
		}
		n.mu.Lock()
		n.gone = append(n.gone, links...)
		n.mu.Unlock()
	}
	defer func() {
		if retErr != nil {
			undo()
		}
	}()
	a, err := m.Attach(nw.ID, netstack.AttachOptions{NetNSPath: nsPath, Container: id, Hostname: runHostname, IfName: "eth0"})
	if err != nil {
		return "", nil, nil, fmt.Errorf("build network: %w", err)
	}
	var host netstack.ResolvConf
	if b, err := os.ReadFile(netstack.HostResolvConf); err == nil {
		host = netstack.ParseResolvConf(b)
	}
	f, err := netstack.ContainerFiles(netstack.FilesOptions{
		Hostname: runHostname, DNSServer: a.DNS,
		Search: host.Search, Options: host.Options,
		Addresses: []netip.Addr{a.Address.Addr()},
	})
	if err != nil {
		return "", nil, nil, fmt.Errorf("build network: %w", err)
	}
	dir := filepath.Join(bundle, "etc")
	if err := f.WriteDir(dir); err != nil {
		return "", nil, nil, err
	}
	files = map[string]string{"/etc/resolv.conf": filepath.Join(dir, "resolv.conf"), "/etc/hosts": filepath.Join(dir, "hosts")}
	return nsPath, files, undo, nil
}

// joinNetNS makes s join the network namespace at path.
func joinNetNS(s *specs.Spec, path string) {
	for i := range s.Linux.Namespaces {
		if s.Linux.Namespaces[i].Type == specs.NetworkNamespace {
			s.Linux.Namespaces[i].Path = path
			return
		}
	}
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: path})
}

// cleanStaleNets tears down the networks of builds whose process died
// (a build killed with SIGKILL leaves its bridge, veths, nftables table
// and state directory): each is loaded from its state directory and
// removed.
func (b *Builder) cleanStaleNets() {
	dir := filepath.Join(b.root, "build")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := e.Name()
		rest, ok := strings.CutPrefix(name, netDirPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		if !deadPid(pidText) {
			continue
		}
		n := &buildNet{root: b.root, dir: filepath.Join(dir, name)}
		m, err := netstack.New(netstack.Config{Root: b.root, StateDir: n.dir, Table: buildNetTable(b.root, name), Upstreams: []string{}})
		if err != nil {
			continue
		}
		n.m = m
		n.close()
	}
}
