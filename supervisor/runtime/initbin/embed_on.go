//go:build berth_init

package initbin

import _ "embed"

// Binary is the executable of ../berth-init.
//
//go:embed berth-init
var Binary []byte

// ExecBinary is the same program built with cgo, static: the one that
// can join a running container (../nsenter).
//
//go:embed berth-exec
var ExecBinary []byte

// CBinary is the C init (../cinit), which Create starts for the common
// container (../cinit_linux.go).
//
//go:embed berth-cinit
var CBinary []byte
