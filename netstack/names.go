package netstack

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Kernel interface names are at most 15 bytes (IFNAMSIZ-1), nftables
// table names 255 (NFT_TABLE_MAXNAMELEN-1).
const (
	maxIfName    = 15
	maxTableName = 255
)

// shortHash returns the first n hex digits of sha256 over parts joined
// with NUL, so ("ab","c") and ("a","bc") differ.
func shortHash(n int, parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:])[:n]
}

// BridgeName is the default bridge name of a network: "bt-" and a hash of
// the berth root, the project and the network key, so two projects and
// two berth roots never collide. The com.docker.network.bridge.name
// driver option overrides it.
func BridgeName(root, project, network string) string {
	return "bt-" + shortHash(12, root, project, network)
}

// vethName is the host end of a container's veth pair on one network.
func vethName(root, networkID, container string) string {
	return "bv" + shortHash(12, root, networkID, container)
}

// TableName is the nftables table (family ip) that holds every rule of a
// berth root's Manager (the supervisor's). berth never touches a table
// it did not make; another Manager of the same root (Config.Table) has
// its own.
func TableName(root string) string {
	return "berth_" + shortHash(10, root)
}

// validIfName checks a user-given interface name (bridge name option).
func validIfName(name string) error {
	if name == "" || len(name) > maxIfName {
		return fmt.Errorf("interface name %q: must be 1 to %d bytes", name, maxIfName)
	}
	if name == "." || name == ".." || strings.ContainsAny(name, "/: \t\n") {
		return fmt.Errorf("interface name %q: must not contain '/', ':' or spaces", name)
	}
	return nil
}
