//go:build !linux || !cgo

package nsenter

// Available reports whether the constructor is linked in.
const Available = false
