package netstack

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/berth-dev/berth/spec"
)

// DefaultPool is where berth takes automatic subnets from: 10.213.0.0/16,
// cut into /24s (DefaultSubnetBits), which gives 256 networks of 253
// containers each. It stays clear of Docker's (172.17.0.0/16 up, and
// 192.168.0.0/16) and podman's (10.88.0.0/16, 10.89.0.0/16) pools. Change
// it with Config.Pool and Config.SubnetBits.
var DefaultPool = netip.MustParsePrefix("10.213.0.0/16")

// DefaultSubnetBits is the prefix length of an automatic subnet.
const DefaultSubnetBits = 24

// hostRoute is a route that a new subnet must not overlap.
type hostRoute struct {
	Dst  netip.Prefix
	Desc string // for the error message, "10.0.0.0/8 dev eth0"
}

// ipamRequest is the IPv4 part of a network's ipam: section.
type ipamRequest struct {
	Subnet  netip.Prefix // invalid = automatic
	IPRange netip.Prefix // invalid = the whole subnet
	Gateway netip.Addr   // invalid = first address of the subnet
}

// parseIPAM reads the IPv4 ipam.config entry of a network. IPv6 entries
// are skipped (berth networks are IPv4 only); two IPv4 entries are an error.
func parseIPAM(cfgs []spec.IPAMConfig) (ipamRequest, error) {
	var req ipamRequest
	seen := false
	for _, c := range cfgs {
		if c.Subnet == "" && c.IPRange == "" && c.Gateway == "" {
			continue
		}
		if c.Subnet == "" {
			return req, fmt.Errorf("ipam: ip_range and gateway need a subnet")
		}
		sub, err := netip.ParsePrefix(c.Subnet)
		if err != nil {
			return req, fmt.Errorf("ipam: subnet %q: %w", c.Subnet, err)
		}
		if sub.Addr().Is6() {
			continue
		}
		if seen {
			return req, fmt.Errorf("ipam: more than one IPv4 subnet is not supported")
		}
		seen = true
		if sub != sub.Masked() {
			return req, fmt.Errorf("ipam: subnet %q has host bits set (did you mean %s?)", c.Subnet, sub.Masked())
		}
		if sub.Bits() > 30 {
			return req, fmt.Errorf("ipam: subnet %s is too small (at most /30)", sub)
		}
		req.Subnet = sub
		if c.IPRange != "" {
			r, err := netip.ParsePrefix(c.IPRange)
			if err != nil {
				return req, fmt.Errorf("ipam: ip_range %q: %w", c.IPRange, err)
			}
			r = r.Masked()
			if !sub.Contains(r.Addr()) || r.Bits() < sub.Bits() {
				return req, fmt.Errorf("ipam: ip_range %s is not inside subnet %s", r, sub)
			}
			req.IPRange = r
		}
		if c.Gateway != "" {
			gw, err := netip.ParseAddr(c.Gateway)
			if err != nil {
				return req, fmt.Errorf("ipam: gateway %q: %w", c.Gateway, err)
			}
			if !sub.Contains(gw) || gw == sub.Addr() || gw == lastAddr(sub) {
				return req, fmt.Errorf("ipam: gateway %s is not a host address of subnet %s", gw, sub)
			}
			req.Gateway = gw
		}
	}
	return req, nil
}

// lastAddr is the broadcast address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := 32 - p.Bits()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= (1 << host) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// overlapping returns the first route that overlaps subnet, if any.
// Default routes (0.0.0.0/0) never count.
func overlapping(subnet netip.Prefix, routes []hostRoute) (hostRoute, bool) {
	for _, r := range routes {
		if r.Dst.Bits() == 0 || !r.Dst.Addr().Is4() {
			continue
		}
		if r.Dst.Overlaps(subnet) {
			return r, true
		}
	}
	return hostRoute{}, false
}

// chooseSubnet returns the first subnet of length bits in pool that
// overlaps no route in taken.
func chooseSubnet(pool netip.Prefix, bits int, taken []hostRoute) (netip.Prefix, error) {
	pool = pool.Masked()
	if !pool.Addr().Is4() || bits < pool.Bits() || bits > 30 {
		return netip.Prefix{}, fmt.Errorf("ipam: cannot cut /%d subnets out of pool %s", bits, pool)
	}
	sort.Slice(taken, func(i, j int) bool { return taken[i].Dst.Addr().Less(taken[j].Dst.Addr()) })
	step := uint64(1) << (32 - bits)
	n := uint64(1) << (bits - pool.Bits())
	base := addrToU32(pool.Addr())
	for i := uint64(0); i < n; i++ {
		cand := netip.PrefixFrom(u32ToAddr(uint32(uint64(base)+i*step)), bits)
		if _, bad := overlapping(cand, taken); !bad {
			return cand, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("%w: no free /%d left in %s", ErrPoolExhausted, bits, pool)
}

func addrToU32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func u32ToAddr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// addrPool hands out the host addresses of one network. The zero value
// is not usable; fill Subnet, Gateway and Used.
type addrPool struct {
	Subnet  netip.Prefix
	IPRange netip.Prefix // invalid = whole subnet
	Gateway netip.Addr
	Used    map[netip.Addr]string // address -> owner (container)
}

// usable reports whether a is a host address of the subnet that is not
// the gateway.
func (p *addrPool) usable(a netip.Addr) bool {
	return a.Is4() && p.Subnet.Contains(a) && a != p.Subnet.Masked().Addr() && a != lastAddr(p.Subnet) && a != p.Gateway
}

// reserve takes a specific address for owner (static ipv4_address). It is
// idempotent for the same owner.
func (p *addrPool) reserve(a netip.Addr, owner string) error {
	if !p.usable(a) {
		return fmt.Errorf("%w: %s is not a usable address of subnet %s (gateway %s)", ErrAddressInUse, a, p.Subnet, p.Gateway)
	}
	if o, ok := p.Used[a]; ok && o != owner {
		return fmt.Errorf("%w: %s is already used by %s", ErrAddressInUse, a, o)
	}
	p.Used[a] = owner
	return nil
}

// allocate returns the lowest free address of the range for owner, or
// the address owner already holds.
func (p *addrPool) allocate(owner string) (netip.Addr, error) {
	for a, o := range p.Used {
		if o == owner {
			return a, nil
		}
	}
	r := p.IPRange
	if !r.IsValid() {
		r = p.Subnet
	}
	first, last := addrToU32(r.Masked().Addr()), addrToU32(lastAddr(r))
	for v := uint64(first); v <= uint64(last); v++ {
		a := u32ToAddr(uint32(v))
		if _, taken := p.Used[a]; taken || !p.usable(a) {
			continue
		}
		p.Used[a] = owner
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("%w: no free address left in %s", ErrPoolExhausted, r)
}

// release frees every address owner holds.
func (p *addrPool) release(owner string) {
	for a, o := range p.Used {
		if o == owner {
			delete(p.Used, a)
		}
	}
}
