package netstack

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"

	"github.com/berth-dev/berth/spec"
)

// dockerUserFixture makes sure an iptables filter table with a
// DOCKER-USER chain exists, as dockerd (on iptables-nft) leaves it, and
// removes what it made. The chain is not hooked anywhere, so it changes
// no traffic on the host while the test runs.
func dockerUserFixture(t *testing.T) {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	ft := &nftables.Table{Name: "filter", Family: nftables.TableFamilyIPv4}
	if _, err := c.ListChain(ft, dockerUserChain); err == nil {
		return // a real one: berth's rules leave with its networks
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	haveTable := slices.ContainsFunc(tables, func(x *nftables.Table) bool { return x.Name == "filter" })
	if !haveTable {
		c.AddTable(ft)
	}
	ch := c.AddChain(&nftables.Chain{Name: dockerUserChain, Table: ft})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := nftables.New()
		if err != nil {
			t.Error(err)
			return
		}
		if haveTable {
			c.DelChain(ch)
		} else {
			c.DelTable(ft)
		}
		if err := c.Flush(); err != nil {
			t.Errorf("removing the test's %s: %v", dockerUserChain, err)
		}
	})
}

// berthRules returns, for the rules tagged for table in DOCKER-USER, the
// direction and interface each accepts ("-i NAME" / "-o NAME").
func berthRules(t *testing.T, table string) []string {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	ft := &nftables.Table{Name: "filter", Family: nftables.TableFamilyIPv4}
	ch, err := c.ListChain(ft, dockerUserChain)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := c.GetRules(ft, ch)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rules {
		if s, _ := userdata.GetString(r.UserData, userdata.TypeComment); s != dockerUserTag(table) {
			continue
		}
		var dir, name string
		accept := false
		for _, e := range r.Exprs {
			switch e := e.(type) {
			case *expr.Meta:
				dir = map[expr.MetaKey]string{expr.MetaKeyIIFNAME: "-i", expr.MetaKeyOIFNAME: "-o"}[e.Key]
			case *expr.Cmp:
				name = strings.TrimRight(string(e.Data), "\x00")
			case *expr.Verdict:
				accept = e.Kind == expr.VerdictAccept
			}
		}
		if !accept {
			t.Errorf("rule %+v does not accept", r.Exprs)
		}
		out = append(out, dir+" "+name)
	}
	slices.Sort(out)
	return out
}

// On a host where Docker made DOCKER-USER (whose FORWARD then drops what
// no rule accepts), the root's bridges are accepted there while they
// exist, in a form iptables lists, and nothing of berth's stays after.
func TestDockerUserRules(t *testing.T) {
	e := newEnv(t, nil)
	dockerUserFixture(t)
	n1 := e.network("du", spec.Network{Name: "front"})
	n2 := e.network("du", spec.Network{Name: "back", Internal: true})
	want := []string{"-i " + n1.Bridge, "-i " + n2.Bridge, "-o " + n1.Bridge, "-o " + n2.Bridge}
	slices.Sort(want)
	if got := berthRules(t, e.m.Table()); !slices.Equal(got, want) {
		t.Fatalf("DOCKER-USER rules %v, want %v", got, want)
	}
	// iptables (iptables-nft, as dockerd uses it) reads them.
	out, err := exec.Command("iptables", "-S", dockerUserChain).CombinedOutput()
	if err != nil {
		t.Fatalf("iptables -S %s: %v: %s", dockerUserChain, err, out)
	}
	for _, w := range []string{"-A DOCKER-USER -i " + n1.Bridge, "-A DOCKER-USER -o " + n1.Bridge} {
		if !strings.Contains(string(out), w) {
			t.Errorf("iptables -S %s:\n%s\nlacks %q", dockerUserChain, out, w)
		}
	}
	// Applying again (any state change) keeps one pair per bridge.
	if err := e.m.RemoveNetwork("du", "back"); err != nil {
		t.Fatal(err)
	}
	want = []string{"-i " + n1.Bridge, "-o " + n1.Bridge}
	if got := berthRules(t, e.m.Table()); !slices.Equal(got, want) {
		t.Fatalf("after removing a network: %v, want %v", got, want)
	}
	if err := e.m.RemoveAll(); err != nil {
		t.Fatal(err)
	}
	if got := berthRules(t, e.m.Table()); len(got) != 0 {
		t.Fatalf("after RemoveAll: %v left", got)
	}
}
