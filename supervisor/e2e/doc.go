// Package e2e holds berth's end-to-end tests: they build the berth binary
// once, import the offline busybox image into a fresh root, and drive the
// binary as a user would (up, ps, logs, exec, port, run, down...) on the
// stacks in examples/, checking afterwards that nothing is left on the
// host: no container processes, mounts, cgroups, links, netns files or
// nftables table of the root.
//
// The tests are privileged (root, BERTH_PRIVILEGED=1) and have no Go API;
// this file only carries the package comment. BERTH_E2E_BINARY names a
// prebuilt berth binary to use instead of building one.
package e2e
