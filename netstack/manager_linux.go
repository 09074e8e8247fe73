package netstack

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/spec"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Driver options berth honours (Docker's names).
const (
	OptBridgeName = "com.docker.network.bridge.name"
	OptMTU        = "com.docker.network.driver.mtu"
	OptMasquerade = "com.docker.network.bridge.enable_ip_masquerade"
)

// allocMu serializes subnet choice and bridge creation of every Manager
// in the process, so two roots do not pick the same free subnet at once;
// allocLockFile does the same between processes (the supervisor and a
// `berth build` making its build network).
var allocMu sync.Mutex

// allocLockFile is flocked while a subnet is chosen and its bridge made.
// /run is a tmpfs: the file never outlives a boot.
var allocLockFile = "/run/berth-netstack-alloc.lock"

// lockAlloc takes allocMu and, when the lock file can be opened, an
// exclusive flock on it; the returned func releases both. Until the
// unlock the bridge of the new subnet exists, so the next Manager sees
// its route.
func lockAlloc() (unlock func()) {
	allocMu.Lock()
	f, err := os.OpenFile(allocLockFile, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		// No /run (or not writable): processes are not serialized,
		// the process still is.
		return allocMu.Unlock
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	return func() {
		f.Close() // releases the flock
		allocMu.Unlock()
	}
}

// Manager owns the networks, attachments, DNS servers, port reservations
// and nftables table of one berth root (or, with a Config.StateDir and
// Config.Table of its own, a separate set of networks of that root, as
// the image builder's per-build network). It must live in the
// long-running process (the supervisor): the DNS servers and port
// reservations live as long as it does.
//
// Lifecycle: New loads the saved state and starts nothing; Restore
// brings back DNS servers, port reservations and the nftables table after
// a restart; Close stops the DNS servers and releases reservations but
// leaves networks in place. Every method is safe for concurrent use.
type Manager struct {
	cfg   Config
	table string

	mu       sync.Mutex // guards everything below, up to saveMu
	st       *netState
	dns      map[string]*DNSServer // network ID -> its server
	reserved map[string]int        // binding key -> held socket fd
	closed   bool
	snap     uint64       // numbers the snapshots of st taken to be saved
	nft      *tableRecord // what the last applyTable wrote (nil: unknown)

	// saveMu lines up the callers of persist, so that one write serves
	// all who waited for it. Lock order: saveMu, mu, fileMu.
	saveMu sync.Mutex
	fileMu sync.Mutex // guards fileSnap and the renaming of the state file
	// fileSnap is the number of the snapshot the state file holds.
	fileSnap uint64
}

// New returns a Manager for cfg.Root with its saved state loaded.
func New(cfg Config) (*Manager, error) {
	if cfg.Root == "" {
		return nil, errors.New("netstack: Config.Root is required")
	}
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(cfg.Root, "network")
	}
	if cfg.Table == "" {
		cfg.Table = TableName(cfg.Root)
	}
	if len(cfg.Table) > maxTableName || strings.ContainsAny(cfg.Table, " \t\n/") {
		return nil, fmt.Errorf("netstack: nftables table name %q: must be at most %d bytes, without spaces or '/'", cfg.Table, maxTableName)
	}
	if !cfg.Pool.IsValid() {
		cfg.Pool = DefaultPool
	}
	if cfg.SubnetBits == 0 {
		cfg.SubnetBits = DefaultSubnetBits
	}
	if cfg.Upstreams == nil {
		ups, err := HostUpstreams(HostResolvConf, systemdResolvConf)
		if err == nil {
			cfg.Upstreams = ups
		}
	}
	st, err := loadState(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	return &Manager{cfg: cfg, table: cfg.Table, st: st, dns: map[string]*DNSServer{}, reserved: map[string]int{}}, nil
}

// Table is the name of the Manager's nftables table (family ip):
// Config.Table, by default TableName(Root).
func (m *Manager) Table() string { return m.table }

// Restore re-creates what lives in memory after a restart: the DNS
// server of every saved network whose bridge exists, the port
// reservations, and the nftables table. Records must be registered again
// (Register) for the containers that are running.
func (m *Manager) Restore() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, id := range sortedKeys(m.st.Networks) {
		if err := m.ensureKernelLocked(m.st.Networks[id]); err != nil {
			errs = append(errs, fmt.Errorf("network %s: %w", id, err))
		}
	}
	for _, b := range m.st.Ports {
		if _, ok := m.reserved[bindingKey(b)]; !ok {
			if fd, _, err := reservePort(b.HostIP, b.HostPort, b.Protocol); err == nil {
				m.reserved[bindingKey(b)] = fd
			}
		}
	}
	if err := m.applyTableLocked(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Close stops the DNS servers and releases port reservations. Networks,
// veths and rules stay. It is idempotent.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for id, s := range m.dns {
		s.Close()
		delete(m.dns, id)
	}
	for k, fd := range m.reserved {
		unix.Close(fd)
		delete(m.reserved, k)
	}
	return nil
}

// NetworkID is the ID of a project's network key.
func NetworkID(project, network string) string { return project + "/" + network }

// EnsureNetwork creates the network n of project, or checks and repairs
// it when it exists: a bridge with the gateway address, berth's rules,
// the embedded DNS server. An external network is looked up among the
// networks of this root by its actual name and returned, not created.
// EnsureNetwork is idempotent.
func (m *Manager) EnsureNetwork(project string, n spec.Network) (_ *Network, retErr error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errors.New("netstack: manager closed")
	}
	if project == "" || n.Name == "" {
		return nil, fmt.Errorf("ensure network: project %q and network name %q must not be empty", project, n.Name)
	}
	if n.External {
		name := n.ActualName
		if name == "" {
			name = n.Name
		}
		for _, id := range sortedKeys(m.st.Networks) {
			ns := m.st.Networks[id]
			if ns.ActualName == name {
				out := ns.Network
				out.External = true
				return &out, nil
			}
		}
		return nil, fmt.Errorf("external network %q: %w (create it first)", name, ErrNotFound)
	}
	if n.EnableIPv6 {
		return nil, fmt.Errorf("network %q: enable_ipv6 is not supported (berth networks are IPv4 only)", n.Name)
	}
	if n.Driver != "" && n.Driver != "bridge" {
		return nil, fmt.Errorf("network %q: driver %q is not supported (only bridge)", n.Name, n.Driver)
	}
	id := NetworkID(project, n.Name)
	if ns, ok := m.st.Networks[id]; ok {
		want, err := m.planNetwork(project, n)
		if err != nil {
			return nil, err
		}
		if diff := networkDiff(ns.Network, want.Network); diff != "" {
			return nil, fmt.Errorf("network %s: %w: %s", id, ErrNetworkChanged, diff)
		}
		if err := m.ensureKernelLocked(ns); err != nil {
			return nil, fmt.Errorf("network %s: %w", id, err)
		}
		out := ns.Network
		return &out, nil
	}

	ns, err := m.planNetwork(project, n)
	if err != nil {
		return nil, err
	}
	defer lockAlloc()()
	routes, err := hostRoutes()
	if err != nil {
		return nil, err
	}
	for _, other := range m.st.Networks {
		routes = append(routes, hostRoute{Dst: other.Subnet, Desc: other.Subnet.String() + " (berth network " + other.ID + ")"})
	}
	if ns.Subnet.IsValid() {
		if r, bad := overlapping(ns.Subnet, routes); bad {
			return nil, fmt.Errorf("network %s: %w", id, &SubnetOverlapError{Subnet: ns.Subnet, Route: r.Desc})
		}
	} else {
		sub, err := chooseSubnet(m.cfg.Pool, m.cfg.SubnetBits, routes)
		if err != nil {
			return nil, fmt.Errorf("network %s: %w", id, err)
		}
		ns.Subnet = sub
	}
	if !ns.Gateway.IsValid() {
		ns.Gateway = ns.Subnet.Addr().Next()
	}
	if _, err := netlink.LinkByName(ns.Bridge); err == nil {
		return nil, fmt.Errorf("network %s: interface %s already exists", id, ns.Bridge)
	}
	// Save first: a crash from here on leaves a record teardown can use.
	m.st.Networks[id] = ns
	defer func() {
		if retErr != nil {
			m.removeNetworkLocked(id)
		}
	}()
	if err := m.saveLocked(); err != nil {
		return nil, err
	}
	if err := m.ensureKernelLocked(ns); err != nil {
		return nil, fmt.Errorf("network %s: %w", id, err)
	}
	out := ns.Network
	return &out, nil
}

// networkDiff names what the stack file changed in an existing network
// (automatic subnets and gateways never count).
func networkDiff(have, want Network) string {
	var d []string
	if want.Subnet.IsValid() && want.Subnet != have.Subnet {
		d = append(d, fmt.Sprintf("subnet %s -> %s", have.Subnet, want.Subnet))
	}
	if want.Gateway.IsValid() && want.Gateway != have.Gateway {
		d = append(d, fmt.Sprintf("gateway %s -> %s", have.Gateway, want.Gateway))
	}
	if want.IPRange != have.IPRange {
		d = append(d, fmt.Sprintf("ip_range %s -> %s", have.IPRange, want.IPRange))
	}
	if want.Internal != have.Internal {
		d = append(d, fmt.Sprintf("internal %v -> %v", have.Internal, want.Internal))
	}
	if want.Masquerade != have.Masquerade {
		d = append(d, fmt.Sprintf("masquerade %v -> %v", have.Masquerade, want.Masquerade))
	}
	if want.Bridge != have.Bridge {
		d = append(d, fmt.Sprintf("bridge name %s -> %s", have.Bridge, want.Bridge))
	}
	if want.MTU != have.MTU {
		d = append(d, fmt.Sprintf("mtu %d -> %d", have.MTU, want.MTU))
	}
	return strings.Join(d, ", ")
}

// EnsureNetworks ensures every network of a project: networks with an
// explicit ipam subnet first, so that automatic subnets never take a
// subnet the stack file asks for, then the others, each in name order.
// The result is in the order of nets.
func (m *Manager) EnsureNetworks(project string, nets []spec.Network) ([]*Network, error) {
	order := make([]int, len(nets))
	for i := range order {
		order[i] = i
	}
	explicit := func(n spec.Network) bool {
		req, err := parseIPAM(n.IPAM)
		return err == nil && req.Subnet.IsValid()
	}
	sort.SliceStable(order, func(i, j int) bool {
		a, b := nets[order[i]], nets[order[j]]
		if explicit(a) != explicit(b) {
			return explicit(a)
		}
		return a.Name < b.Name
	})
	out := make([]*Network, len(nets))
	for _, i := range order {
		n, err := m.EnsureNetwork(project, nets[i])
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

// planNetwork turns the spec into a network record without a subnet
// when none is given.
func (m *Manager) planNetwork(project string, n spec.Network) (*networkState, error) {
	id := NetworkID(project, n.Name)
	req, err := parseIPAM(n.IPAM)
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", id, err)
	}
	ns := &networkState{Network: Network{
		ID: id, Project: project, Name: n.Name, ActualName: n.ActualName,
		Bridge: BridgeName(m.cfg.Root, project, n.Name),
		Subnet: req.Subnet, IPRange: req.IPRange, Gateway: req.Gateway,
		Internal: n.Internal, Masquerade: !n.Internal,
	}, Used: map[netip.Addr]string{}}
	if ns.ActualName == "" {
		ns.ActualName = project + "_" + n.Name
	}
	for k, v := range n.DriverOpts {
		switch k {
		case OptBridgeName:
			if err := validIfName(v); err != nil {
				return nil, fmt.Errorf("network %s: %s: %w", id, k, err)
			}
			ns.Bridge = v
		case OptMTU:
			mtu, err := strconv.Atoi(v)
			if err != nil || mtu < 68 || mtu > 65535 {
				return nil, fmt.Errorf("network %s: %s: %q is not an MTU (68-65535)", id, k, v)
			}
			ns.MTU = mtu
		case OptMasquerade:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("network %s: %s: %q is not a boolean", id, k, v)
			}
			ns.Masquerade = b && !n.Internal
		}
	}
	return ns, nil
}

// ensureKernelLocked makes the bridge, its address, IP forwarding, the
// nftables table and the DNS server match ns.
func (m *Manager) ensureKernelLocked(ns *networkState) error {
	link, err := netlink.LinkByName(ns.Bridge)
	if err != nil {
		if !isNotFound(err) {
			return err
		}
		// A bridge without a MAC of its own takes the lowest MAC of its
		// ports and changes it as veths come and go, which leaves the
		// containers' ARP entry for the gateway stale and drops packets
		// (DNS queries among them) until it is refreshed. A fixed,
		// locally administered MAC made of the gateway address avoids it.
		gw := ns.Gateway.As4()
		hw := net.HardwareAddr{0x02, 0x42, gw[0], gw[1], gw[2], gw[3]}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: ns.Bridge, MTU: ns.MTU, HardwareAddr: hw}}
		if err := netlink.LinkAdd(br); err != nil {
			return fmt.Errorf("create bridge %s: %w", ns.Bridge, err)
		}
		if link, err = netlink.LinkByName(ns.Bridge); err != nil {
			return err
		}
	} else if link.Type() != "bridge" {
		return fmt.Errorf("interface %s exists and is not a bridge", ns.Bridge)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: ns.Gateway.AsSlice(), Mask: net.CIDRMask(ns.Subnet.Bits(), 32)}}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("bridge %s: add address %s: %w", ns.Bridge, addr, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bridge %s: up: %w", ns.Bridge, err)
	}
	// Host connections to a published port on 127.0.0.1 are DNATed to
	// a container: the kernel only routes a 127.0.0.0/8 source out of a
	// non-loopback device with route_localnet on that device. It is set
	// on berth's bridge only, and goes away with it.
	if err := writeSysctl("net/ipv4/conf/"+ns.Bridge+"/route_localnet", "1"); err != nil {
		return err
	}
	if !ns.Internal {
		old, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
		if err != nil {
			return err
		}
		if strings.TrimSpace(string(old)) != "1" {
			if err := writeSysctl("net/ipv4/ip_forward", "1"); err != nil {
				return err
			}
			m.st.IPForwardChanged = true
			if err := m.saveLocked(); err != nil {
				return err
			}
		}
	}
	if err := m.applyTableLocked(); err != nil {
		return err
	}
	if s, ok := m.dns[ns.ID]; ok {
		return s.Start()
	}
	s := NewDNSServer(netip.AddrPortFrom(ns.Gateway, 53), ns.Subnet, m.cfg.Upstreams)
	if err := s.Start(); err != nil {
		return err
	}
	m.dns[ns.ID] = s
	return nil
}

// RemoveNetwork removes a network of project: its attachments, DNS
// server, bridge, published ports and rules. It is idempotent and needs
// only the saved state.
func (m *Manager) RemoveNetwork(project, network string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.removeNetworkLocked(NetworkID(project, network))
}

// RemoveProject removes every network of project.
func (m *Manager) RemoveProject(project string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, id := range sortedKeys(m.st.Networks) {
		if m.st.Networks[id].Project == project {
			errs = append(errs, m.removeNetworkLocked(id))
		}
	}
	return errors.Join(errs...)
}

// RemoveAll removes every network of the root and its nftables table.
func (m *Manager) RemoveAll() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, id := range sortedKeys(m.st.Networks) {
		errs = append(errs, m.removeNetworkLocked(id))
	}
	errs = append(errs, deleteTable(m.table))
	return errors.Join(errs...)
}

func (m *Manager) removeNetworkLocked(id string) error {
	var errs []error
	for _, k := range sortedKeys(m.st.Attachments) {
		if a := m.st.Attachments[k]; a.Network == id {
			errs = append(errs, m.detachLocked(a))
		}
	}
	if s, ok := m.dns[id]; ok {
		s.Close()
		delete(m.dns, id)
	}
	ns, ok := m.st.Networks[id]
	if !ok {
		return errors.Join(errs...)
	}
	if link, err := netlink.LinkByName(ns.Bridge); err == nil {
		if err := netlink.LinkDel(link); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("delete bridge %s: %w", ns.Bridge, err))
		}
	} else if !isNotFound(err) {
		errs = append(errs, err)
	}
	m.dropPortsLocked(func(b PortBinding) bool { return b.Network == id })
	delete(m.st.Networks, id)
	errs = append(errs, m.applyTableLocked(), m.saveLocked())
	return errors.Join(errs...)
}

// Networks returns the networks of the root, sorted by ID.
func (m *Manager) Networks() []Network {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Network
	for _, id := range sortedKeys(m.st.Networks) {
		out = append(out, m.st.Networks[id].Network)
	}
	return out
}

// Attach connects a container to a network: a veth pair whose host end
// joins the bridge and whose other end is moved into the container's
// namespace, named o.IfName, with its address and MAC, a default route
// via the gateway (not on internal networks) and lo up. The DNS names
// are stored but only answered after Register. Attaching the same
// container to the same network again returns the existing attachment.
func (m *Manager) Attach(networkID string, o AttachOptions) (*Attachment, error) {
	p, err := m.reserve(networkID, o)
	if err != nil {
		return nil, err
	}
	a := p.a
	if p.existing {
		return &a.Attachment, nil
	}
	// The record is complete; once saved, a crash leaves what teardown
	// needs. Saving and plugging run outside m.mu, so that attaches of
	// several containers overlap.
	err = m.persist(p.snap)
	if err == nil {
		err = m.plugVeth(p.ns, a, p.mac, o.GwPriority)
		if err != nil {
			err = fmt.Errorf("attach %s to %s: %w", o.Container, networkID, err)
		}
	}
	if err != nil {
		m.mu.Lock()
		if m.st.Attachments[attachKey(networkID, o.Container)] == a {
			m.detachLocked(a)
		}
		m.mu.Unlock()
		return nil, err
	}
	out := a.Attachment
	return &out, nil
}

// pendingAttach is what reserve decided: a new attachment to save (as
// snapshot snap) and plug, or an existing one, a copy of its record.
type pendingAttach struct {
	existing bool
	ns       *networkState
	a        *attachmentState
	mac      net.HardwareAddr
	snap     uint64
}

// reserve validates an attach, takes the address and records the
// attachment.
func (m *Manager) reserve(networkID string, o AttachOptions) (*pendingAttach, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if o.Container == "" || o.NetNSPath == "" {
		return nil, errors.New("attach: Container and NetNSPath are required")
	}
	for _, d := range o.DNS {
		if _, err := netip.ParseAddr(d); err != nil {
			return nil, fmt.Errorf("attach %s: dns: %q is not an IP address", o.Container, d)
		}
	}
	ns, ok := m.st.Networks[networkID]
	if !ok {
		return nil, fmt.Errorf("attach %s: network %s: %w", o.Container, networkID, ErrNotFound)
	}
	key := attachKey(networkID, o.Container)
	var prev netip.Addr // the address to keep when plugging again
	if a, ok := m.st.Attachments[key]; ok {
		if _, err := netlink.LinkByName(a.HostIf); err == nil && a.NetNS == o.NetNSPath {
			return &pendingAttach{existing: true, a: &attachmentState{Attachment: a.Attachment}}, nil
		}
		// A restarted container has a new namespace, or a crash left
		// the record without its veth: start over, on the same address.
		prev = a.Address.Addr()
		if err := m.detachLocked(a); err != nil {
			return nil, err
		}
	}
	if o.IfName == "" {
		o.IfName = "eth0"
	}
	if err := validIfName(o.IfName); err != nil {
		return nil, fmt.Errorf("attach %s: %w", o.Container, err)
	}
	var mac net.HardwareAddr
	if o.MAC != "" {
		var err error
		if mac, err = net.ParseMAC(o.MAC); err != nil || len(mac) != 6 {
			return nil, fmt.Errorf("attach %s: mac_address %q is not a MAC-48 address", o.Container, o.MAC)
		}
		if mac[0]&1 != 0 {
			return nil, fmt.Errorf("attach %s: mac_address %s is a multicast address", o.Container, mac)
		}
	}
	pool := &addrPool{Subnet: ns.Subnet, IPRange: ns.IPRange, Gateway: ns.Gateway, Used: ns.Used}
	var ip netip.Addr
	if o.IPv4.IsValid() {
		if err := pool.reserve(o.IPv4.Unmap(), o.Container); err != nil {
			return nil, fmt.Errorf("attach %s to %s: ipv4_address: %w", o.Container, networkID, err)
		}
		ip = o.IPv4.Unmap()
	} else if prev.IsValid() && pool.reserve(prev, o.Container) == nil {
		ip = prev
	} else {
		var err error
		if ip, err = pool.allocate(o.Container); err != nil {
			return nil, fmt.Errorf("attach %s to %s: %w", o.Container, networkID, err)
		}
	}
	a := &attachmentState{Attachment: Attachment{
		Network: networkID, Container: o.Container, IfName: o.IfName,
		HostIf:  vethName(m.cfg.Root, networkID, o.Container),
		Address: netip.PrefixFrom(ip, ns.Subnet.Bits()), DNS: ns.Gateway,
		Names: dnsNames(o),
	}, Service: o.Service, Hostname: o.Hostname, Aliases: o.Aliases, DNS: o.DNS, NetNS: o.NetNSPath}
	if !ns.Internal {
		a.Gateway = ns.Gateway
	}
	if mac == nil {
		// Like Docker: a locally administered MAC made of the address,
		// unique on the bridge and known before anything is created.
		ip4 := ip.As4()
		mac = net.HardwareAddr{0x02, 0x42, ip4[0], ip4[1], ip4[2], ip4[3]}
	}
	a.MAC = mac.String()
	m.st.Attachments[key] = a
	m.snap++
	return &pendingAttach{ns: ns, a: a, mac: mac, snap: m.snap}, nil
}

func dnsNames(o AttachOptions) []string {
	var names []string
	for _, n := range append([]string{o.Container, o.Service, o.Hostname}, o.Aliases...) {
		if n != "" && !contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}

// defaultRouteMetric maps gw_priority (higher wins) onto a route metric
// (lower wins).
func defaultRouteMetric(gwPriority int) int {
	const base = 1 << 20
	return min(max(base-gwPriority, 1), 1<<30)
}

// lookupBridge caches the ifindex of ns's bridge.
func lookupBridge(ns *networkState) error {
	br, err := netlink.LinkByName(ns.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", ns.Bridge, err)
	}
	ns.bridgeIndex.Store(int32(br.Attrs().Index))
	return nil
}

func (m *Manager) plugVeth(ns *networkState, a *attachmentState, mac net.HardwareAddr, gwPriority int) error {
	nsh, err := netns.GetFromPath(a.NetNS)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", a.NetNS, err)
	}
	defer nsh.Close()
	// Only rtnetlink: with no family named, the handle also opens xfrm
	// and netfilter sockets, and kernels without xfrm_user loaded (Debian
	// 12's cloud kernel) refuse it with EPROTONOSUPPORT.
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", a.NetNS, err)
	}
	defer h.Close()
	// The peer is created straight inside the container's namespace,
	// so it can take its final name (eth0) and MAC at once: names only
	// need to be unique per namespace.
	//
	// One queue each way: left to itself, veth allocates a queue per
	// possible CPU and then cuts the real count back to one, and each
	// cut waits for an RCU grace period while holding the rtnl lock,
	// which every other veth being made waits for.
	var host *netlink.Veth
	addVeth := func(bridge int) error {
		host = &netlink.Veth{
			LinkAttrs: netlink.LinkAttrs{Name: a.HostIf, MTU: ns.MTU, MasterIndex: bridge,
				NumTxQueues: 1, NumRxQueues: 1},
			PeerName:         a.IfName,
			PeerHardwareAddr: mac,
			PeerNamespace:    netlink.NsFd(nsh),
		}
		return netlink.LinkAdd(host)
	}
	cached := ns.bridgeIndex.Load() != 0
	if !cached {
		if err := lookupBridge(ns); err != nil {
			return err
		}
	}
	err = addVeth(int(ns.bridgeIndex.Load()))
	if err != nil && cached && !errors.Is(err, unix.EEXIST) {
		// The cached index may be stale (a restore made the bridge
		// anew): look it up and try once more, without the veth the
		// failed attempt may have left half made.
		if link, lerr := netlink.LinkByName(a.HostIf); lerr == nil {
			_ = netlink.LinkDel(link)
		}
		if err := lookupBridge(ns); err != nil {
			return err
		}
		err = addVeth(int(ns.bridgeIndex.Load()))
	}
	if errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("create veth %s: an interface %s or %s already exists", a.HostIf, a.HostIf, a.IfName+" in "+a.NetNS)
	}
	if err != nil {
		return fmt.Errorf("create veth %s: %w", a.HostIf, err)
	}
	c, err := h.LinkByName(a.IfName)
	if err != nil {
		return fmt.Errorf("find %s in %s: %w", a.IfName, a.NetNS, err)
	}
	ip := a.Address.Addr().As4()
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(ip[:]), Mask: net.CIDRMask(a.Address.Bits(), 32)}}
	if err := h.AddrAdd(c, addr); err != nil {
		return fmt.Errorf("add address %s: %w", a.Address, err)
	}
	if err := h.LinkSetUp(c); err != nil {
		return fmt.Errorf("up %s: %w", a.IfName, err)
	}
	if err := loUp(h); err != nil {
		return err
	}
	if a.Gateway.IsValid() {
		r := &netlink.Route{LinkIndex: c.Attrs().Index, Gw: a.Gateway.AsSlice(), Priority: defaultRouteMetric(gwPriority)}
		if err := h.RouteAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("default route via %s: %w", a.Gateway, err)
		}
	}
	// The host end comes up last, when its peer already is: up while
	// the peer is down, it would lose its carrier first, and the kernel
	// waits for another grace period (under rtnl) to deactivate it.
	if err := netlink.LinkSetUp(host); err != nil {
		return fmt.Errorf("up %s: %w", a.HostIf, err)
	}
	return nil
}

// loUp brings up lo, which the kernel makes first in every network
// namespace: ifindex 1 (LOOPBACK_IFINDEX), no lookup needed.
func loUp(h *netlink.Handle) error {
	lo := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 1, Name: "lo"}}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("up lo: %w", err)
	}
	return nil
}

// LoopbackUp brings up lo in a network namespace; it is all
// network_mode: none needs. (host, service: and container: need nothing
// from netstack: the runtime shares the host's or another container's
// namespace.)
func LoopbackUp(netnsPath string) error {
	nsh, err := netns.GetFromPath(netnsPath)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", netnsPath, err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer h.Close()
	return loUp(h)
}

// Detach removes a container from a network: DNS records, veth, address
// and its published ports on that network. It is idempotent.
func (m *Manager) Detach(networkID, container string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.st.Attachments[attachKey(networkID, container)]
	if !ok {
		return nil
	}
	return m.detachLocked(a)
}

// DetachAll removes a container from every network and unpublishes its
// ports. It is idempotent.
func (m *Manager) DetachAll(container string) error {
	_, err := m.detachAll(container, true)
	return err
}

// DetachAllKeepLinks is DetachAll for a container whose network
// namespace the caller is about to destroy: the kernel removes the veths
// with the namespace, many namespaces in one batch, where deleting each
// veth by hand costs an RCU grace period under the RTNL lock (tens of
// milliseconds, one at a time). It returns the host ends of the veths,
// for WaitLinksGone once the namespace is released.
func (m *Manager) DetachAllKeepLinks(container string) ([]string, error) {
	return m.detachAll(container, false)
}

func (m *Manager) detachAll(container string, delLinks bool) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	var links []string
	for _, k := range sortedKeys(m.st.Attachments) {
		if a := m.st.Attachments[k]; a.Container == container {
			links = append(links, a.HostIf)
			if delLinks {
				errs = append(errs, m.detachLocked(a))
			} else {
				errs = append(errs, m.forgetLocked(a))
			}
		}
	}
	if m.dropPortsLocked(func(b PortBinding) bool { return b.Container == container }) {
		errs = append(errs, m.applyTableLocked(), m.saveLocked())
	}
	return links, errors.Join(errs...)
}

// WaitLinksGone waits up to timeout for the named host links to
// disappear (the kernel removes a veth when the namespace of its peer is
// destroyed), then deletes those still there.
func WaitLinksGone(names []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	delay := time.Millisecond
	for {
		var left []string
		for _, n := range names {
			if _, err := netlink.LinkByName(n); err == nil {
				left = append(left, n)
			} else if !isNotFound(err) {
				return err
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			var errs []error
			for _, n := range left {
				if link, err := netlink.LinkByName(n); err == nil {
					if err := netlink.LinkDel(link); err != nil && !isNotFound(err) {
						errs = append(errs, fmt.Errorf("delete veth %s: %w", n, err))
					}
				}
			}
			return errors.Join(errs...)
		}
		names = left
		time.Sleep(delay)
		delay = min(2*delay, 20*time.Millisecond)
	}
}

func (m *Manager) detachLocked(a *attachmentState) error {
	var errs []error
	if link, err := netlink.LinkByName(a.HostIf); err == nil {
		if err := netlink.LinkDel(link); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("delete veth %s: %w", a.HostIf, err))
		}
	} else if !isNotFound(err) {
		errs = append(errs, err)
	}
	return errors.Join(append(errs, m.forgetLocked(a))...)
}

// forgetLocked drops an attachment from the DNS server, the address
// pool, the port bindings and the saved state; its veth is left alone.
func (m *Manager) forgetLocked(a *attachmentState) error {
	var errs []error
	if s, ok := m.dns[a.Network]; ok {
		s.Unregister(a.Container)
	}
	if ns, ok := m.st.Networks[a.Network]; ok {
		(&addrPool{Used: ns.Used}).release(a.Container)
	}
	changed := m.dropPortsLocked(func(b PortBinding) bool { return b.Container == a.Container && b.Network == a.Network })
	delete(m.st.Attachments, attachKey(a.Network, a.Container))
	if changed {
		errs = append(errs, m.applyTableLocked())
	}
	errs = append(errs, m.saveLocked())
	return errors.Join(errs...)
}

// Register makes a container's names resolve on every network it is
// attached to; call it when the container starts. The names resolve when
// Register returns.
func (m *Manager) Register(container string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	found := false
	for _, a := range m.st.Attachments {
		if a.Container != container {
			continue
		}
		found = true
		if s, ok := m.dns[a.Network]; ok {
			s.RegisterWithUpstreams(container, a.Address.Addr(), a.DNS, a.Names...)
		}
	}
	if !found {
		return fmt.Errorf("register %s: no attachment: %w", container, ErrNotFound)
	}
	return nil
}

// Unregister stops a container's names resolving; call it when the
// container stops. It is idempotent.
func (m *Manager) Unregister(container string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.dns {
		s.Unregister(container)
	}
}

// DNSServer returns the embedded DNS server of a network, or nil.
func (m *Manager) DNSServer(networkID string) *DNSServer {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dns[networkID]
}

// Attachments returns a container's attachments, sorted by network.
func (m *Manager) Attachments(container string) []Attachment {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Attachment
	for _, k := range sortedKeys(m.st.Attachments) {
		if a := m.st.Attachments[k]; a.Container == container {
			out = append(out, a.Attachment)
		}
	}
	return out
}

// applyTableLocked writes the nftables table for the state; m.mu is
// held.
func (m *Manager) applyTableLocked() error {
	rec, err := applyTable(m.table, m.st, m.nft)
	if err != nil {
		rec = nil
	}
	m.nft = rec
	return err
}

// saveLocked writes the state file; m.mu is held.
func (m *Manager) saveLocked() error {
	m.snap++
	b, err := m.st.marshal()
	if err != nil {
		return err
	}
	return m.writeState(b, m.snap)
}

// persist makes sure the state file holds snapshot n or a later one:
// it takes a new snapshot and writes it unless a caller that queued
// before it already did. It is called without m.mu, so that the
// write's fsync does not hold up the manager.
func (m *Manager) persist(n uint64) error {
	m.saveMu.Lock()
	defer m.saveMu.Unlock()
	m.fileMu.Lock()
	done := m.fileSnap >= n
	m.fileMu.Unlock()
	if done {
		return nil
	}
	m.mu.Lock()
	m.snap++
	cur := m.snap
	b, err := m.st.marshal()
	m.mu.Unlock()
	if err != nil {
		return err
	}
	return m.writeState(b, cur)
}

// writeState writes snapshot n of the state durably, unless the file
// already holds a later one (written meanwhile by saveLocked).
func (m *Manager) writeState(b []byte, n uint64) error {
	dir := m.cfg.StateDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return writeFileAtomicIf(filepath.Join(dir, stateFile), b, 0o600, true, func(rename func() error) error {
		m.fileMu.Lock()
		defer m.fileMu.Unlock()
		if n <= m.fileSnap {
			return errStale
		}
		if err := rename(); err != nil {
			return err
		}
		m.fileSnap = n
		return nil
	})
}

// hostRoutes lists the IPv4 routes of the main table.
func hostRoutes() ([]hostRoute, error) {
	rs, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	var out []hostRoute
	for _, r := range rs {
		if r.Dst == nil {
			continue
		}
		p, ok := netip.AddrFromSlice(r.Dst.IP)
		if !ok {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		desc := r.Dst.String()
		if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
			desc += " dev " + l.Attrs().Name
		}
		out = append(out, hostRoute{Dst: netip.PrefixFrom(p.Unmap(), ones), Desc: desc})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Desc < out[j].Desc })
	return out, nil
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT)
}

func writeSysctl(key, value string) error {
	p := filepath.Join("/proc/sys", key)
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", strings.ReplaceAll(key, "/", "."), value, err)
	}
	return nil
}
