// Package netstack builds container networking: a Linux bridge per stack
// network, veth pairs, IPAM, an embedded DNS server, outbound NAT and
// published ports.
package netstack
