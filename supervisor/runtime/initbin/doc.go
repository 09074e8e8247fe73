// Package initbin carries the container init berth executes for Create:
// a small pure-Go build of ../berth-init, embedded in the berth binary.
//
// The init runs once per container start, for a few milliseconds, before
// it execve()s the service's command. Re-executing berth itself there costs
// about twice the CPU: berth is a 30 MiB cgo binary whose ~150 packages
// initialize first. The small init is ~7 MiB, static and initializes only
// what the runtime needs.
//
// The Makefile builds ../berth-init into this directory (berth-init, not
// in git), with the build tag berth_initonly: parts of the runtime that
// only its parent side uses stay out of it (the cgroup v2 device filter's
// eBPF loader, cilium/ebpf: 1.4 MiB and 0.2 ms of CPU per start). Then it
// builds berth with the build tag berth_init, which embeds the init.
// A plain `go build ./cmd/berth` has no tag: Binary is nil and Create
// re-executes berth itself, which works the same, only slower. Exec always
// re-executes berth: joining a running container's namespaces needs the
// cgo constructor in ../nsenter, which the pure-Go init does not have.
//
// Set the tag only after building the init from the same tree (as the
// Makefile does): the init and the runtime that starts it speak a private
// protocol.
package initbin
