//go:build !linux

package image

// SpreadSubdirs does nothing outside Linux.
func SpreadSubdirs(dir string) {}
