package netstack

import (
	"fmt"
	"net/netip"
)

// Config configures a Manager.
type Config struct {
	// Root is the berth root directory. It goes into bridge, veth and
	// nftables names so that two roots never collide. Required.
	Root string
	// StateDir holds netstack.json; default Root/network.
	StateDir string
	// Table is the nftables table (family ip) the Manager owns and
	// rebuilds from its state; default TableName(Root). A second Manager
	// for the same root (the image builder's network) needs a StateDir
	// and a Table of its own: each Manager replaces its table whole and
	// deletes it in RemoveAll.
	Table string
	// Pool and SubnetBits give automatic subnets; default DefaultPool
	// cut into /DefaultSubnetBits.
	Pool       netip.Prefix
	SubnetBits int
	// Upstreams are the resolvers the embedded DNS forwards unknown
	// names to ("ip" or "ip:port"). nil: HostUpstreams of
	// /etc/resolv.conf. Tests point it at a stub on loopback.
	Upstreams []string
}

// Network is a berth network as it exists on the host.
type Network struct {
	// ID is "project/key"; it names the network in every other call.
	ID         string       `json:"id"`
	Project    string       `json:"project"`
	Name       string       `json:"name"`        // key in the stack file
	ActualName string       `json:"actual_name"` // name: or PROJECT_KEY
	Bridge     string       `json:"bridge"`
	Subnet     netip.Prefix `json:"subnet"`
	IPRange    netip.Prefix `json:"ip_range,omitzero"`
	Gateway    netip.Addr   `json:"gateway"` // on the bridge; also the DNS server
	MTU        int          `json:"mtu,omitempty"`
	Internal   bool         `json:"internal,omitempty"`
	// Masquerade is false for internal networks and for
	// com.docker.network.bridge.enable_ip_masquerade=false.
	Masquerade bool `json:"masquerade"`
	// External is set on the value returned for an external: true
	// network: it belongs to another project.
	External bool `json:"external,omitempty"`
}

// AttachOptions describe one container on one network.
type AttachOptions struct {
	// NetNSPath is the container's network namespace (/proc/PID/ns/net
	// or a bind mount of it). Required.
	NetNSPath string
	// Container is the container name: the attachment's key and a DNS
	// name. Required.
	Container string
	Service   string   // DNS name shared by the replicas
	Hostname  string   // DNS name
	Aliases   []string // DNS names on this network
	// IfName is the interface name in the container; default eth0.
	IfName string
	// IPv4 is a static address (ipv4_address); invalid = next free.
	IPv4 netip.Addr
	// MAC is mac_address; empty = random.
	MAC string
	// DNS are the service's dns: resolvers. The container still asks the
	// embedded server (service names keep working); names that are not
	// on the network are forwarded to these instead of the host's.
	DNS []string
	// GwPriority (gw_priority) picks the default route when a container
	// is on several networks: the highest wins, ties go to the network
	// attached first. No default route on internal networks.
	GwPriority int
}

// Attachment is one container's interface on one network.
type Attachment struct {
	Network   string       `json:"network"` // Network.ID
	Container string       `json:"container"`
	IfName    string       `json:"ifname"`  // in the container
	HostIf    string       `json:"host_if"` // host end of the veth
	Address   netip.Prefix `json:"address"` // 10.213.0.2/24
	MAC       string       `json:"mac"`
	Gateway   netip.Addr   `json:"gateway,omitzero"` // default route; invalid when internal
	DNS       netip.Addr   `json:"dns"`              // embedded DNS server of the network
	Names     []string     `json:"names"`            // DNS names
}

// PortBinding is one published port.
type PortBinding struct {
	Project       string     `json:"project"`
	Service       string     `json:"service"`
	Container     string     `json:"container"`
	Network       string     `json:"network"`
	HostIP        netip.Addr `json:"host_ip,omitzero"` // invalid = every address
	HostPort      uint16     `json:"host_port"`
	ContainerIP   netip.Addr `json:"container_ip"`
	ContainerPort uint16     `json:"container_port"`
	Protocol      string     `json:"protocol"` // tcp or udp
}

// String is "0.0.0.0:8080->80/tcp", as docker ps shows it.
func (b PortBinding) String() string {
	return fmt.Sprintf("%s->%d/%s", b.HostAddr(), b.ContainerPort, b.Protocol)
}

// HostAddr is "0.0.0.0:8080" or "127.0.0.1:8080", as berth port prints it.
func (b PortBinding) HostAddr() string {
	ip := netip.IPv4Unspecified()
	if b.HostIP.IsValid() {
		ip = b.HostIP
	}
	return netip.AddrPortFrom(ip, b.HostPort).String()
}

func (b PortBinding) less(o PortBinding) bool {
	if b.Project != o.Project {
		return b.Project < o.Project
	}
	if b.Service != o.Service {
		return b.Service < o.Service
	}
	if b.Container != o.Container {
		return b.Container < o.Container
	}
	if b.ContainerPort != o.ContainerPort {
		return b.ContainerPort < o.ContainerPort
	}
	if b.Protocol != o.Protocol {
		return b.Protocol < o.Protocol
	}
	return b.HostAddr() < o.HostAddr()
}
