// Package initbin carries the container inits berth executes, embedded in
// the berth binary: for Create the C init (../cinit, CBinary) or, for the
// containers it does not start, a small pure-Go build of ../berth-init;
// for Exec the same Go program built with cgo (see below).
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
// re-executes berth itself, which works the same, only slower.
//
// Exec (`berth exec`, health probes, post_start and pre_stop hooks) joins
// a running container's namespaces, which needs the cgo constructor in
// ../nsenter, which the pure-Go init does not have. ExecBinary is the
// same program built with cgo and linked statically (berth-exec, about
// 4 MiB). Re-executing berth there runs its ~150 packages' initialization
// for every exec: a health probe every 100 ms cost 11.5 ms of CPU each
// with berth, 7 ms with berth-exec (the probe, the daemon's side of it and
// the probed command included).
//
// The C init (berth-cinit, ../cinit/cinit.c with ../nsenter/nsenter.c,
// `cc -O2 -static`, 0.7 MiB) has no runtime to start: for the container
// it can start (see ../cinit_linux.go) an init costs about half the CPU
// of the Go one, 2.4 against 4.4 ms per container in an up of 50 (perf,
// its mounts and the rest of the kernel's work for it included), and an
// exec 0.95 ms against berth-exec's 2.4 (BenchmarkExec). berth-exec stays
// for the execs it does not run (a terminal, a user namespace).
//
// Set the tag only after building the init from the same tree (as the
// Makefile does): the init and the runtime that starts it speak a private
// protocol.
package initbin
