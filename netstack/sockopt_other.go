//go:build !linux

package netstack

import (
	"runtime"
	"syscall"
)

func reuseAddr(network, address string, c syscall.RawConn) error { return nil }

func udpReaders() int { return max(2, runtime.GOMAXPROCS(0)) }
