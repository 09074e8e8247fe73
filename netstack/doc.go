// Package netstack builds container networking: a Linux bridge per stack
// network, veth pairs, IPAM, an embedded DNS server, outbound NAT and
// published ports. It uses vishvananda/netlink, google/nftables and
// miekg/dns, and imports only spec from berth.
//
// # Who calls what
//
// The supervisor owns one Manager per berth root for as long as it runs
// (DNS servers and port reservations live in it):
//
//	m, _ := netstack.New(netstack.Config{Root: root})
//	m.Restore()                                  // after a restart
//	nets, _ := m.EnsureNetworks(project, p.Networks)
//	m.CheckPorts(svc.Ports)                      // before any replica starts
//	a, _ := m.Attach(net.ID, AttachOptions{NetNSPath: ..., Container: ..., Service: ...})
//	m.PublishPorts(project, svc.Name, container, svc.Ports)
//	files, _ := netstack.ContainerFiles(FilesOptions{DNSServer: a.DNS, ...}); files.WriteDir(dir)
//	m.Register(container)   // container started: its names resolve now
//	m.Unregister(container) // container stopped
//	m.DetachAll(container)  // container removed: veths, records, ports
//	m.RemoveProject(project)
//
// network_mode none needs only LoopbackUp; host, service: and container:
// need nothing from netstack (the runtime joins the other namespace).
// CreateNetNS / RemoveNetNS make and remove the namespace files containers
// join by path, and SetNetNSSysctls sets net.* sysctls inside one. Networks
// are IPv4 only (enable_ipv6 is refused): as on an IPv4-only Docker
// network, the interfaces made in a namespace CreateNetNS made have IPv6
// off (no link-local address), and lo keeps ::1.
//
// A second Manager for the same root with its own Config.StateDir and
// Config.Table (the image builder's default network, one per build) keeps
// its networks, state and rules apart from the supervisor's; subnets stay
// disjoint because each Manager skips subnets that are routed on the host.
//
// # Lifecycle of a network and an attachment
//
//	EnsureNetwork ──► bridge + address + rules + DNS server ──RemoveNetwork──► gone
//	Attach ──► veth, no names ──Register──► names answered ──Unregister──► no names
//	   │                                                                   │
//	   └──────────────────────────── Detach ◄──────────────────────────────┘
//
// Every step is saved (Config.StateDir/netstack.json, replaced atomically)
// before the kernel is changed, so teardown after a crash works from the
// saved state alone; Remove*, Detach* and Unpublish* are idempotent.
//
// # Names and addresses
//
// Bridges are "bt-" + 12 hex digits of sha256(root, project, network),
// host veth ends "bv" + a hash of (root, network, container), and the
// nftables table is "ip berth_<hash of root>" (or Config.Table), so two
// projects and two roots never collide. Automatic subnets are /24s of
// 10.213.0.0/16 (DefaultPool), skipping any subnet that overlaps a host
// route; choosing one and creating its bridge holds a flock on
// /run/berth-netstack-alloc.lock, so two processes never pick the same
// subnet at once. An explicit ipam subnet that overlaps a host route is refused with a
// *SubnetOverlapError. Bridges get a fixed MAC (02:42 + gateway address)
// so that veths coming and going never change it.
//
// # DNS
//
// Each network has a DNSServer on its gateway address, port 53, UDP and
// TCP. It answers with TTL 0 for container names, service names (every
// registered replica, shuffled), hostnames and aliases, PTR for their
// addresses, and only to sources inside the network's subnet (others get
// REFUSED). Other names go to the host's resolvers (HostUpstreams: from
// /etc/resolv.conf, loopback ones skipped, systemd-resolved's stub
// replaced by its real upstreams). Containers use it through the
// resolv.conf ContainerFiles writes (Docker uses 127.0.0.11 and NAT; the
// gateway address needs no rule inside the container).
//
// # NAT and ports
//
// The root's table is rebuilt from the state as a whole in one netlink
// transaction on every change: masquerade out of non-internal networks,
// isolation (into a network from any other interface, another berth
// network included, only replies and published ports pass), drop
// between internal networks and anything else, DNAT of published
// ports in prerouting and output (so the host reaches them on 127.0.0.1
// and its other addresses), and masquerade for hairpin and loopback
// clients. Host connections to 127.0.0.1 need route_localnet on the
// bridge, set per bridge only: no userland proxy process. Each published
// host port is held by a bound socket, which both checks that the port is
// free (the error names it, before anything changes) and keeps other
// programs off it. IP forwarding is turned on when a non-internal network
// is created; the state records that berth did it.
package netstack
