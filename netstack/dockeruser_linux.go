package netstack

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
)

// dockerUserChain is the chain of the iptables filter table that Docker
// jumps to first from FORWARD and leaves to its users. A dockerd that
// turned IP forwarding on itself sets FORWARD's policy to drop, and (with
// br_netfilter, which it loads) bridged traffic passes FORWARD too: without
// rules there, berth's containers could reach neither each other nor the
// outside on such a host. A verdict of berth's own table does not help:
// every base chain of the hook must accept a packet.
const dockerUserChain = "DOCKER-USER"

// dockerUserTag marks berth's rules in DOCKER-USER, per root table.
func dockerUserTag(table string) string { return "berth " + table }

// syncDockerUser makes DOCKER-USER, when the iptables filter table (as
// iptables-nft keeps it) has one, accept what enters or leaves the given
// bridges: the rules tagged for table are replaced by one pair per bridge
// (none removes them). Traffic into a berth network is still filtered by
// berth's own forward chain. Without the chain (no Docker, or Docker on
// iptables-legacy) it does nothing.
func syncDockerUser(table string, bridges []string) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	t := &nftables.Table{Name: "filter", Family: nftables.TableFamilyIPv4}
	ch, err := c.ListChain(t, dockerUserChain)
	if err != nil {
		return nil // no such table or chain
	}
	rules, err := c.GetRules(t, ch)
	if err != nil {
		return fmt.Errorf("nftables: list %s: %w", dockerUserChain, err)
	}
	tag := dockerUserTag(table)
	changed := false
	for _, r := range rules {
		if s, ok := userdata.GetString(r.UserData, userdata.TypeComment); ok && s == tag {
			if err := c.DelRule(r); err != nil {
				return err
			}
			changed = true
		}
	}
	// InsertRule puts each at the top: insert in reverse to keep order.
	for k := len(bridges) - 1; k >= 0; k-- {
		for _, key := range []expr.MetaKey{expr.MetaKeyOIFNAME, expr.MetaKeyIIFNAME} {
			c.InsertRule(&nftables.Rule{Table: t, Chain: ch,
				UserData: userdata.AppendString(nil, userdata.TypeComment, tag),
				// What iptables-nft writes for -i/-o NAME -j ACCEPT, so that
				// iptables (and dockerd) can list the chain.
				Exprs: []expr.Any{
					&expr.Meta{Key: key, Register: 1},
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: append([]byte(bridges[k]), 0)},
					&expr.Counter{},
					&expr.Verdict{Kind: expr.VerdictAccept},
				}})
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: update %s: %w", dockerUserChain, err)
	}
	return nil
}

// stateBridges lists the bridges of st's networks, sorted by network.
func stateBridges(st *netState) []string {
	var out []string
	for _, id := range sortedKeys(st.Networks) {
		out = append(out, st.Networks[id].Bridge)
	}
	return out
}
