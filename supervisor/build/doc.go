// Package build builds OCI images from Dockerfiles on berth's own runtime
// and image store, with no other tool: the Dockerfile is parsed with
// BuildKit's parser (github.com/moby/buildkit/frontend/dockerfile), every
// RUN step runs in a container made by supervisor/runtime, and each step
// that changes the filesystem becomes a layer in supervisor/image.
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
// Network: RUN steps use the host's network namespace unless the build
// network (compose build.network, or RUN --network) is "none", which gives
// them an empty namespace. The host's network namespace is a first-version
// shortcut: builds do not join a project network.
//
// Not supported (a clear error): ADD from URLs or git, RUN --mount types
// other than cache and tmpfs, RUN heredocs, ONBUILD triggers of a base image
// (they are reported and skipped; ONBUILD in the Dockerfile is recorded in
// the image config).
package build
