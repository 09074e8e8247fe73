// Package build builds OCI images from Dockerfiles on berth's own runtime
// and image store, with no other tool: the Dockerfile is parsed with
// BuildKit's parser (github.com/moby/buildkit/frontend/dockerfile), every
// RUN step runs in a container made by supervisor/runtime, and each step
// that changes the filesystem becomes a layer in supervisor/image.
//
// Use: New(root, store, rt) once per process (rt nil: a runtime of its own
// under root/build/runtime), then Build for a Dockerfile, BuildService for a
// compose service's build: section (tagged ImageName(p, svc) plus
// build.tags), or EnsureService for `up` (builds when forced, when
// pull_policy is build, or when the image is missing). Progress goes to
// Options.Progress / ServiceOptions.Progress; a failed step is a *StepError.
//
// How a stage is built:
//
//	base image (Get/Pull; scratch = one empty layer)
//	   │
//	   ▼  for each instruction
//	metadata (ENV, USER, CMD, LABEL...)  ──► config only, no layer
//	filesystem (RUN, COPY, ADD, WORKDIR) ──► Prepare an overlay over the
//	   layers so far with a fresh upper dir, do the step, Unmount, turn the
//	   upper dir into a tar (overlay whiteouts → .wh. entries, opaque dirs
//	   → .wh..wh..opq), AddLayer it, Release the overlay
//	   │
//	   ▼
//	Commit (layers + config) and tag — only after every step succeeded
//
// Multi-stage builds build only the stages the target needs, each in its
// own goroutine, waiting for the stages it reads from.
//
// The layer cache lives under <root>/build-cache: each step has a key made
// of its parent's key, the instruction after argument expansion, the build
// arguments in scope and, for COPY/ADD, a hash of the copied files' paths,
// modes and contents. A step whose key has an entry whose layer is still in
// the store is not run again (shown as CACHED). Options.NoCache bypasses it.
//
// Network: by default (compose build.network unset or "default", RUN
// --network=default) RUN steps are on a bridge network with outbound NAT,
// as in Docker. Each Build call makes one when its first such step runs:
// a netstack.Manager of its own (state under <root>/build/net-PID-RAND, an
// nftables table of its own next to the supervisor's) creates a bridge on
// a free /24 of berth's pool, masquerade, and an embedded DNS server on
// the gateway that forwards to the host's resolvers (Builder.NetUpstreams
// overrides them), so a host whose resolv.conf names 127.0.0.53 still
// resolves. Every step gets a network namespace of its own with eth0 on
// that bridge and a generated /etc/resolv.conf (the gateway, the host's
// search and options) and /etc/hosts (localhost, buildkitsandbox and its
// address), bound read-only; the network goes when the build ends, and
// what a killed build left is removed by the next New. "host" shares the
// host's network namespace with the host's /etc/resolv.conf and
// /etc/hosts bound read-only; "none" gives an empty namespace. Named
// networks are not supported. The network mode is part of a RUN step's
// cache key ("" and "default" are the same). Mount points a RUN needed
// that the image lacked (/proc, /dev, /sys, those files, cache mount
// targets) are removed again before the layer is taken.
//
// Not supported (a clear error wrapping ErrNotSupported): named build
// networks, remote build contexts, ADD from URLs or git, ADD --checksum, RUN --mount types other
// than bind (read-only), cache and tmpfs, RUN --security=insecure, RUN
// heredocs starting with #!, COPY/ADD heredocs, COPY --parents and
// --exclude, symbolic --chmod. ONBUILD triggers of a base image are
// reported and skipped; ONBUILD in the Dockerfile is recorded in the image
// config. Builds run on and for the host platform: FROM --platform picks
// the base image, but RUN steps of another architecture fail.
package build
