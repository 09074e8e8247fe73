package netstack

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/spec"
	"golang.org/x/sys/unix"
)

// Published ports are DNAT rules in the root's nftables table (see
// applyTable). Each host port is also held by a bound socket (TCP: bound,
// never listening) for as long as the Manager lives: a later program,
// another berth root or another project cannot take it, and the check
// "is the port free" is the kernel's own bind. Packets never reach these
// sockets: DNAT happens before the socket lookup.
//
// berth does not run a userland proxy: host connections to 127.0.0.1
// are DNATed in the output hook and leave over the bridge thanks to
// route_localnet on berth's bridges (set per bridge, never host-wide),
// then masqueraded to the gateway address so replies come back. This
// keeps the client's packets in the kernel and needs no extra process
// per port.

func bindingKey(b PortBinding) string {
	return b.Protocol + "/" + b.HostAddr()
}

// reservePort binds a socket on ip:port (ip invalid = all addresses;
// port 0 = any free port) and returns it with the port it got.
func reservePort(ip netip.Addr, port uint16, proto string) (int, uint16, error) {
	typ := unix.SOCK_STREAM
	if proto == "udp" {
		typ = unix.SOCK_DGRAM
	}
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, 0, fmt.Errorf("socket: %w", err)
	}
	sa := &unix.SockaddrInet4{Port: int(port)}
	if ip.IsValid() {
		sa.Addr = ip.As4()
	}
	for {
		err = unix.Bind(fd, sa)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return -1, 0, sysErr("bind", err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return -1, 0, sysErr("getsockname", err)
	}
	return fd, uint16(got.(*unix.SockaddrInet4).Port), nil
}

func sysErr(name string, err error) error { return fmt.Errorf("%s: %w", name, err) }

// portRequest is one spec.Port, checked.
type portRequest struct {
	hostIP   netip.Addr // invalid = all
	lo, hi   uint16     // 0,0 = ephemeral
	target   uint16
	protocol string
}

func parsePort(p spec.Port) (portRequest, error) {
	r := portRequest{target: p.Target, protocol: strings.ToLower(p.Protocol)}
	if r.protocol == "" {
		r.protocol = "tcp"
	}
	if r.protocol != "tcp" && r.protocol != "udp" {
		return r, fmt.Errorf("port %d: protocol %q is not supported (tcp or udp)", p.Target, p.Protocol)
	}
	if p.Target == 0 {
		return r, fmt.Errorf("port: target 0 is not a port")
	}
	if p.HostIP != "" {
		ip, err := netip.ParseAddr(p.HostIP)
		if err != nil {
			return r, fmt.Errorf("port %d: host_ip %q: %w", p.Target, p.HostIP, err)
		}
		if !ip.Unmap().Is4() {
			return r, fmt.Errorf("port %d: host_ip %s: IPv6 is not supported", p.Target, ip)
		}
		if !ip.IsUnspecified() {
			r.hostIP = ip.Unmap()
		}
	}
	if p.Published != "" {
		lo, hi, found := strings.Cut(p.Published, "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil || a == 0 {
			return r, fmt.Errorf("port %d: published %q is not a port or range", p.Target, p.Published)
		}
		b := a
		if found {
			if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
				return r, fmt.Errorf("port %d: published %q is not a port or range", p.Target, p.Published)
			}
		}
		r.lo, r.hi = uint16(a), uint16(b)
	}
	return r, nil
}

// clashLocked reports whether a saved binding already holds ip:port/proto.
func (m *Manager) clashLocked(ip netip.Addr, port uint16, proto string) bool {
	for _, b := range m.st.Ports {
		if b.Protocol == proto && b.HostPort == port && (!b.HostIP.IsValid() || !ip.IsValid() || b.HostIP == ip) {
			return true
		}
	}
	return false
}

// takeLocked reserves a host port for r, trying the range in order.
func (m *Manager) takeLocked(r portRequest) (fd int, port uint16, err error) {
	if r.lo == 0 {
		fd, port, err := reservePort(r.hostIP, 0, r.protocol)
		if err != nil {
			return -1, 0, fmt.Errorf("ephemeral %s port: %w", r.protocol, err)
		}
		return fd, port, nil
	}
	var last error
	for p := uint32(r.lo); p <= uint32(r.hi); p++ {
		if m.clashLocked(r.hostIP, uint16(p), r.protocol) {
			last = errors.New("published by berth already")
			continue
		}
		fd, got, err := reservePort(r.hostIP, uint16(p), r.protocol)
		if err == nil {
			return fd, got, nil
		}
		if errors.Is(err, unix.EADDRNOTAVAIL) {
			return -1, 0, fmt.Errorf("host_ip %s is not an address of this host", r.hostIP)
		}
		last = err
	}
	return -1, 0, &PortInUseError{HostIP: r.hostIP, Port: r.lo, Protocol: r.protocol, Err: last}
}

// CheckPorts reports the first published host port that is in use,
// changing nothing. The supervisor calls it for a service before starting
// any of its containers.
func (m *Manager) CheckPorts(ports []spec.Port) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, p := range ports {
		r, err := parsePort(p)
		if err != nil {
			return err
		}
		if r.lo == 0 {
			continue
		}
		fd, _, err := m.takeLocked(r)
		if err != nil {
			return err
		}
		fds = append(fds, fd)
	}
	return nil
}

// PublishPorts publishes ports of a container on its first non-internal
// network: each host port is reserved first, all or nothing, and only
// then are the DNAT rules written; a port in use fails with a
// *PortInUseError before anything changes. Ports the container already
// publishes are kept.
func (m *Manager) PublishPorts(project, service, container string, ports []spec.Port) (_ []PortBinding, retErr error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var att *attachmentState
	for _, k := range sortedKeys(m.st.Attachments) {
		a := m.st.Attachments[k]
		if a.Container == container && !m.st.Networks[a.Network].Internal {
			att = a
			break
		}
	}
	if att == nil && len(ports) > 0 {
		return nil, fmt.Errorf("publish ports of %s: not attached to a non-internal network: %w", container, ErrNotFound)
	}
	var out, added []PortBinding
	var fds []int
	defer func() {
		if retErr == nil {
			return
		}
		for _, fd := range fds {
			unix.Close(fd)
		}
		if len(added) > 0 {
			kept := m.st.Ports[:0]
			for _, b := range m.st.Ports {
				if !slices.Contains(added, b) {
					kept = append(kept, b)
				}
			}
			m.st.Ports = kept
			m.applyTableLocked()
		}
	}()
outer:
	for _, p := range ports {
		r, err := parsePort(p)
		if err != nil {
			return nil, fmt.Errorf("publish ports of %s: %w", container, err)
		}
		for _, b := range m.st.Ports {
			if b.Container == container && b.ContainerPort == r.target && b.Protocol == r.protocol && b.HostIP == r.hostIP &&
				(r.lo == 0 || (b.HostPort >= r.lo && b.HostPort <= r.hi)) {
				out = append(out, b)
				continue outer
			}
		}
		fd, hp, err := m.takeLocked(r)
		if err != nil {
			return nil, fmt.Errorf("publish ports of %s: %w", container, err)
		}
		fds = append(fds, fd)
		b := PortBinding{Project: project, Service: service, Container: container, Network: att.Network,
			HostIP: r.hostIP, HostPort: hp, ContainerIP: att.Address.Addr(), ContainerPort: r.target, Protocol: r.protocol}
		// Two entries of one request must not take the same port.
		m.st.Ports = append(m.st.Ports, b)
		added = append(added, b)
		out = append(out, b)
	}
	if len(added) == 0 {
		return out, nil
	}
	if err := m.applyTableLocked(); err != nil {
		return nil, err
	}
	if err := m.saveLocked(); err != nil {
		return nil, err
	}
	for i, b := range added {
		m.reserved[bindingKey(b)] = fds[i]
	}
	return out, nil
}

// UnpublishPorts removes every published port of a container. It is
// idempotent.
func (m *Manager) UnpublishPorts(container string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dropPortsLocked(func(b PortBinding) bool { return b.Container == container }) {
		return nil
	}
	return errors.Join(m.applyTableLocked(), m.saveLocked())
}

// dropPortsLocked removes the bindings drop selects and releases their
// reservations. The caller rewrites the table and saves. It reports
// whether anything was removed.
func (m *Manager) dropPortsLocked(drop func(PortBinding) bool) bool {
	kept := m.st.Ports[:0]
	changed := false
	for _, b := range m.st.Ports {
		if drop(b) {
			changed = true
			if fd, ok := m.reserved[bindingKey(b)]; ok {
				unix.Close(fd)
				delete(m.reserved, bindingKey(b))
			}
			continue
		}
		kept = append(kept, b)
	}
	m.st.Ports = kept
	return changed
}

// Ports returns the published ports of a project's service (all
// services when service is empty), sorted: what berth port prints.
func (m *Manager) Ports(project, service string) []PortBinding {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []PortBinding
	for _, b := range m.st.Ports {
		if b.Project == project && (service == "" || b.Service == service) {
			out = append(out, b)
		}
	}
	return out
}

// Port returns the bindings of one container port of a service ("berth
// port SERVICE 80/tcp"); protocol "" means tcp.
func (m *Manager) Port(project, service string, target uint16, protocol string) []PortBinding {
	if protocol == "" {
		protocol = "tcp"
	}
	var out []PortBinding
	for _, b := range m.Ports(project, service) {
		if b.ContainerPort == target && b.Protocol == protocol {
			out = append(out, b)
		}
	}
	return out
}
