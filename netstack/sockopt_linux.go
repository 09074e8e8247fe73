package netstack

import (
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// reuseAddr sets SO_REUSEADDR so the DNS server can bind the gateway
// address even when a resolver on the host holds the wildcard port 53
// with SO_REUSEADDR too.
func reuseAddr(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

func udpReaders() int { return max(2, runtime.GOMAXPROCS(0)) }
