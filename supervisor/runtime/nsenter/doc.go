// Package nsenter joins the namespaces of a running container before the
// Go runtime starts, for runtime.Exec. Importing it links in a small C
// constructor (nsenter.c) that runs at process start, while the process
// is still single-threaded: setns(2) refuses to enter a mount or user
// namespace from a multi-threaded process, and every Go program is
// multi-threaded by the time its first Go code runs. This is the same
// reason runc has its nsexec.
//
// The constructor does nothing unless the environment variable
// _BERTH_NSENTER is set. It then setns()es into each fd listed there
// ("5,6,7", in order), forks once more so that the joined pid namespace
// applies (with CLONE_PARENT, so the new process is a child of the one
// that started us and it can wait for it), writes the new pid to the fd
// in _BERTH_NSENTER_PIPE and exits; the new process goes on into the Go
// runtime as the exec init.
//
// Without cgo the package is empty and Available is false.
package nsenter
