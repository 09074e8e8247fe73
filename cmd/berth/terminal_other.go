//go:build !linux

package main

import "github.com/berth-dev/berth/supervisor/runtime"

// makeRaw needs Linux: containers with a terminal run only there.
func makeRaw(fd int) (restore func(), err error) { return nil, runtime.ErrNotSupported }
