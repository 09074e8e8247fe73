//go:build !linux

package main

// markInheritedCloseOnExec does nothing outside Linux (see fds_linux.go).
func markInheritedCloseOnExec() {}
