package netstack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The nftables table of a root is derived from the saved state as a
// whole and written in one netlink transaction, so it is always exactly
// what the state says, also after a crash: every chain is emptied and
// filled again. When the table is missing or its chains differ from
// these, the same transaction deletes it and makes it again; when the
// state only adds published ports, their rules are appended (addPorts).
// One other place is changed, and only where Docker made it for its
// users: the DOCKER-USER chain of the iptables filter table gets an
// accept rule per direction for each of the root's bridges (see
// syncDockerUser), tagged with the table's name.
//
//	table ip berth_<hash> {
//	  chain prerouting  { type nat hook prerouting priority dstnat;
//	                      ip daddr GW meta l4proto udp/tcp th dport 53 accept  # embedded DNS
//	                      fib daddr type local jump ports }
//	  chain output      { type nat hook output priority dstnat; (the same) }
//	  chain ports       { [ip daddr H] meta l4proto P th dport N dnat to C:M ... }
//	  chain postrouting { type nat hook postrouting priority srcnat;
//	                      oifname BR ip saddr 127.0.0.0/8 masquerade      # host -> 127.0.0.1:port
//	                      oifname BR ip saddr SUBNET ct status dnat masquerade  # hairpin
//	                      ip saddr SUBNET oifname != BR masquerade }      # outbound, not internal
//	  chain forward     { type filter hook forward priority filter;
//	                      oifname BR iifname != BR ct status dnat accept    # published ports
//	                      oifname BR iifname != BR ct state established,related accept
//	                      oifname BR iifname != BR drop                     # other networks, LAN
//	                      internal: iifname BR oifname != BR drop; oifname BR iifname != BR drop }
//	  chain input       { type filter hook input priority filter;    internal: iifname BR ip daddr != GW drop }
//	}
func applyTable(table string, st *netState, last *tableRecord) (*tableRecord, error) {
	if len(st.Networks) == 0 {
		return nil, deleteTable(table)
	}
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	t := &nftables.Table{Name: table, Family: nftables.TableFamilyIPv4}
	accept := nftables.ChainPolicyAccept
	want := []*nftables.Chain{
		{Name: "prerouting", Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest, Policy: &accept},
		{Name: "output", Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest, Policy: &accept},
		{Name: "ports", Table: t},
		{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept},
		{Name: "forward", Table: t, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept},
		{Name: "input", Table: t, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept},
	}
	have, err := tableChains(c, table)
	if err != nil {
		return nil, fmt.Errorf("nftables: list chains of %s: %w", table, err)
	}
	keep := chainsMatch(have, want)
	netKey := networksKey(st)
	if rec, ok := addPorts(c, t, want[2], st, last, netKey, keep); ok {
		return rec, syncDockerUser(table, stateBridges(st))
	}
	rec := &tableRecord{networks: netKey, ports: map[PortBinding]bool{}, counts: map[string]int{}}
	for _, ch := range want {
		rec.counts[ch.Name] = 0
	}
	add := func(r *nftables.Rule) {
		c.AddRule(r)
		rec.counts[r.Chain.Name]++
	}
	c.AddTable(t)
	if keep {
		// Only the rules change: emptying the chains keeps their hooks.
		// (Removing rules still makes the kernel wait for an RCU grace
		// period, as deleting the table would.)
		for _, ch := range want {
			c.FlushChain(ch)
		}
	} else {
		if have != nil {
			c.DelTable(t)
			c.AddTable(t)
		}
		// A missing table is only added: deleting it first, even when it
		// does not exist, waits for an RCU grace period (10-20 ms).
		for _, ch := range want {
			c.AddChain(ch)
		}
	}
	pre, out, ports, post, fwd, in := want[0], want[1], want[2], want[3], want[4], want[5]

	for _, ch := range []*nftables.Chain{pre, out} {
		// The embedded DNS servers on the gateways are never DNATed
		// away, even when a service publishes port 53 on all addresses.
		for _, id := range sortedKeys(st.Networks) {
			for _, proto := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
				add(&nftables.Rule{Table: t, Chain: ch, Exprs: cat(
					matchAddr(16, netip.PrefixFrom(st.Networks[id].Gateway, 32)),
					[]expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}},
					cmpEq([]byte{proto}),
					[]expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}},
					cmpEq(binaryutil.BigEndian.PutUint16(53)),
					verdict(expr.VerdictAccept, ""),
				)})
			}
		}
		add(&nftables.Rule{Table: t, Chain: ch, Exprs: cat(
			[]expr.Any{&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true}},
			cmpEq(binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)),
			verdict(expr.VerdictJump, "ports"),
		)})
	}
	for _, b := range st.Ports {
		add(portRule(t, ports, b))
		rec.ports[b] = true
	}
	for _, id := range sortedKeys(st.Networks) {
		n := st.Networks[id]
		add(&nftables.Rule{Table: t, Chain: post, Exprs: cat(
			matchIf(expr.MetaKeyOIFNAME, n.Bridge, true),
			matchAddr(12, netip.MustParsePrefix("127.0.0.0/8")),
			[]expr.Any{&expr.Masq{}},
		)})
		add(&nftables.Rule{Table: t, Chain: post, Exprs: cat(
			matchIf(expr.MetaKeyOIFNAME, n.Bridge, true),
			matchAddr(12, n.Subnet),
			ctBits(expr.CtKeySTATUS, 0x20 /* IPS_DST_NAT */),
			[]expr.Any{&expr.Masq{}},
		)})
		if n.Masquerade && !n.Internal {
			add(&nftables.Rule{Table: t, Chain: post, Exprs: cat(
				matchAddr(12, n.Subnet),
				matchIf(expr.MetaKeyOIFNAME, n.Bridge, false),
				[]expr.Any{&expr.Masq{}},
			)})
		}
		if !n.Internal {
			// Isolation, as Docker does between its bridges: into a
			// network from any other interface (another berth network of
			// any root, the LAN) only replies and published ports pass.
			into := cat(matchIf(expr.MetaKeyOIFNAME, n.Bridge, true), matchIf(expr.MetaKeyIIFNAME, n.Bridge, false))
			add(&nftables.Rule{Table: t, Chain: fwd, Exprs: cat(into, ctBits(expr.CtKeySTATUS, 0x20 /* IPS_DST_NAT */), verdict(expr.VerdictAccept, ""))})
			add(&nftables.Rule{Table: t, Chain: fwd, Exprs: cat(into, ctBits(expr.CtKeySTATE, 0x2|0x4 /* established, related */), verdict(expr.VerdictAccept, ""))})
			add(&nftables.Rule{Table: t, Chain: fwd, Exprs: cat(into, verdict(expr.VerdictDrop, ""))})
		}
		if n.Internal {
			add(&nftables.Rule{Table: t, Chain: fwd, Exprs: cat(
				matchIf(expr.MetaKeyIIFNAME, n.Bridge, true),
				matchIf(expr.MetaKeyOIFNAME, n.Bridge, false),
				verdict(expr.VerdictDrop, ""),
			)})
			add(&nftables.Rule{Table: t, Chain: fwd, Exprs: cat(
				matchIf(expr.MetaKeyOIFNAME, n.Bridge, true),
				matchIf(expr.MetaKeyIIFNAME, n.Bridge, false),
				verdict(expr.VerdictDrop, ""),
			)})
			gw := n.Gateway.As4()
			add(&nftables.Rule{Table: t, Chain: in, Exprs: cat(
				matchIf(expr.MetaKeyIIFNAME, n.Bridge, true),
				[]expr.Any{
					&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
					&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: gw[:]},
				},
				verdict(expr.VerdictDrop, ""),
			)})
		}
	}
	if err := c.Flush(); err != nil {
		return nil, fmt.Errorf("nftables: write table %s: %w", table, err)
	}
	return rec, syncDockerUser(table, stateBridges(st))
}

// portRule DNATs one published port to its container.
func portRule(t *nftables.Table, ports *nftables.Chain, b PortBinding) *nftables.Rule {
	var ex []expr.Any
	if b.HostIP.IsValid() && !b.HostIP.IsUnspecified() {
		ex = append(ex, matchAddr(16, netip.PrefixFrom(b.HostIP, 32))...)
	}
	proto := byte(unix.IPPROTO_TCP)
	if b.Protocol == "udp" {
		proto = unix.IPPROTO_UDP
	}
	ex = append(ex, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1})
	ex = append(ex, cmpEq([]byte{proto})...)
	ex = append(ex, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2})
	ex = append(ex, cmpEq(binaryutil.BigEndian.PutUint16(b.HostPort))...)
	ip4 := b.ContainerIP.As4()
	ex = append(ex,
		&expr.Immediate{Register: 1, Data: ip4[:]},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(b.ContainerPort)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	)
	return &nftables.Rule{Table: t, Chain: ports, Exprs: ex}
}

// tableRecord is what an applyTable wrote: the networks the rules were
// made for, the published ports, and the number of rules per chain.
type tableRecord struct {
	networks string
	ports    map[PortBinding]bool
	counts   map[string]int
}

// networksKey describes everything of st but its ports that the rules
// depend on.
func networksKey(st *netState) string {
	var b strings.Builder
	for _, id := range sortedKeys(st.Networks) {
		n := st.Networks[id]
		fmt.Fprintf(&b, "%s|%s|%s|%s|%t|%t\n", id, n.Bridge, n.Subnet, n.Gateway, n.Internal, n.Masquerade)
	}
	return b.String()
}

// addPorts is the quick path of applyTable when st only adds published
// ports to what last wrote (or changes nothing): the table's chains are
// berth's (chainsOK) and still hold last's number of rules, so only the
// new ports' rules are appended, and nothing is removed. Removing rules
// makes the kernel wait for an RCU grace period (10-15 ms); appending
// does not. It reports false when the full rewrite is needed.
func addPorts(c *nftables.Conn, t *nftables.Table, ports *nftables.Chain, st *netState, last *tableRecord, netKey string, chainsOK bool) (*tableRecord, bool) {
	if last == nil || !chainsOK || last.networks != netKey {
		return nil, false
	}
	now := map[PortBinding]bool{}
	for _, b := range st.Ports {
		now[b] = true
	}
	for b := range last.ports {
		if !now[b] {
			return nil, false
		}
	}
	for name, n := range last.counts {
		rules, err := c.GetRules(t, &nftables.Chain{Name: name, Table: t})
		if err != nil || len(rules) != n {
			return nil, false // changed by hand: write it all again
		}
	}
	rec := &tableRecord{networks: netKey, ports: now, counts: maps.Clone(last.counts)}
	for _, b := range st.Ports {
		if !last.ports[b] {
			c.AddRule(portRule(t, ports, b))
			rec.counts[ports.Name]++
		}
	}
	if rec.counts[ports.Name] == last.counts[ports.Name] {
		return rec, true
	}
	if err := c.Flush(); err != nil {
		return nil, false
	}
	return rec, true
}

// tableChains lists the chains of table by name; nil when it has none
// (or does not exist).
func tableChains(c *nftables.Conn, table string) (map[string]*nftables.Chain, error) {
	all, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, err
	}
	var have map[string]*nftables.Chain
	for _, ch := range all {
		if ch.Table != nil && ch.Table.Name == table {
			if have == nil {
				have = map[string]*nftables.Chain{}
			}
			have[ch.Name] = ch
		}
	}
	return have, nil
}

// chainsMatch reports whether have holds exactly the chains of want,
// each of the same type, hook, priority and policy, so that only the
// rules need replacing.
func chainsMatch(have map[string]*nftables.Chain, want []*nftables.Chain) bool {
	if have == nil || len(have) != len(want) {
		return false
	}
	for _, w := range want {
		h, ok := have[w.Name]
		if !ok || h.Type != w.Type || !sameValue(h.Hooknum, w.Hooknum) || !sameValue(h.Priority, w.Priority) || !sameValue(h.Policy, w.Policy) {
			return false
		}
	}
	return true
}

// sameValue compares two optional values.
func sameValue[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// deleteTable removes the table if it exists.
func deleteTable(table string) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	t := &nftables.Table{Name: table, Family: nftables.TableFamilyIPv4}
	c.DelTable(t)
	if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) && !os.IsNotExist(err) {
		return err
	}
	return syncDockerUser(table, nil)
}

// tableExists reports whether the table is in the ruleset.
func tableExists(table string) (bool, error) {
	c, err := nftables.New()
	if err != nil {
		return false, err
	}
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return false, err
	}
	for _, t := range ts {
		if t.Name == table {
			return true, nil
		}
	}
	return false, nil
}

// ctBits matches a conntrack status or state with any of bits set.
func ctBits(key expr.CtKey, bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: key},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0, 0, 0, 0}},
	}
}

func cat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func cmpEq(data []byte) []expr.Any {
	return []expr.Any{&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data}}
}

func verdict(k expr.VerdictKind, chain string) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: k, Chain: chain}}
}

// ifname pads an interface name as the kernel stores it (IFNAMSIZ).
func ifname(n string) []byte {
	b := make([]byte, 16)
	copy(b, n)
	return b
}

func matchIf(key expr.MetaKey, name string, eq bool) []expr.Any {
	op := expr.CmpOpEq
	if !eq {
		op = expr.CmpOpNeq
	}
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: ifname(name)},
	}
}

// matchAddr matches the IPv4 source (offset 12) or destination (16)
// address against p.
func matchAddr(offset uint32, p netip.Prefix) []expr.Any {
	mask := make([]byte, 4)
	binary.BigEndian.PutUint32(mask, ^uint32(0)<<(32-p.Bits()))
	if p.Bits() == 0 {
		mask = []byte{0, 0, 0, 0}
	}
	a := p.Masked().Addr().As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]},
	}
}
