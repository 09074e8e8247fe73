package netstack

import (
	"errors"
	"fmt"
	"net/netip"
)

// Sentinel errors; branch on them with errors.Is.
var (
	// ErrNotFound: the network, attachment or binding does not exist.
	ErrNotFound = errors.New("not found")
	// ErrPoolExhausted: no free subnet is left in the pool.
	ErrPoolExhausted = errors.New("address pool exhausted")
	// ErrAddressInUse: a static address is already taken or outside the subnet.
	ErrAddressInUse = errors.New("address in use")
	// ErrNetworkChanged: the network exists with another configuration
	// (subnet, internal, driver_opts...); remove and create it again.
	ErrNetworkChanged = errors.New("network configuration changed")
	// ErrNotSupported: the operation needs Linux.
	ErrNotSupported = errors.New("not supported on this platform")
)

// SubnetOverlapError reports a subnet that overlaps a route on the host
// (or another berth network), which would make one of them unreachable.
type SubnetOverlapError struct {
	Subnet netip.Prefix
	Route  string // the overlapping route, as "10.0.0.0/8 dev eth0"
}

func (e *SubnetOverlapError) Error() string {
	return fmt.Sprintf("subnet %s overlaps host route %s", e.Subnet, e.Route)
}

// PortInUseError reports a host port that cannot be published because
// something already holds it.
type PortInUseError struct {
	HostIP   netip.Addr // unspecified address = all addresses
	Port     uint16
	Protocol string
	Err      error
}

func (e *PortInUseError) Error() string {
	ip := "0.0.0.0"
	if e.HostIP.IsValid() {
		ip = e.HostIP.String()
	}
	msg := fmt.Sprintf("host port %s:%d/%s is already in use: %v", ip, e.Port, e.Protocol, e.Err)
	if e.Port == 53 && !e.HostIP.IsValid() {
		msg += " (berth's embedded DNS listens on port 53 of every network gateway: publish 53 on a specific host_ip)"
	}
	return msg
}

func (e *PortInUseError) Unwrap() error { return e.Err }
