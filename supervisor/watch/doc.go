// Package watch carries out a service's develop.watch rules (berth watch,
// berth up --watch): it watches host paths recursively with fsnotify,
// batches changes over a short quiet period, drops ignored paths
// (.dockerignore syntax, the rule's ignore list, editor temp files), and
// acts on each batch:
//
//	sync          write changed files straight into the container's view of
//	              target (its overlay rootfs on the host, or the host source
//	              of a bind or volume mount under target); delete deleted ones
//	sync+restart  sync, then restart the service once per batch
//	sync+exec     sync, then run exec.command in each container
//	restart       restart the service
//	rebuild       rebuild (build:) or re-pull the image, recreate the service
//
// Writes need nothing inside the image: every path in the container is
// resolved with openat2(RESOLVE_IN_ROOT), so a symlink in the container
// never leads out of it, and each file is written to a temporary name in
// its directory and renamed over the old one. New files and directories
// belong to the container's user (its uid/gid from the image's
// /etc/passwd and /etc/group).
//
// The pieces:
//
//	Matcher   which relative paths a rule ignores (Ignore, Include)
//	Watcher   recursive fsnotify watch of one host path, emitting Batches
//	Syncer    writes into one container root (Target)
//	Session   the rules of a project, a Controller for restart/exec/rebuild,
//	          and daemon events: after a container starts again its watched
//	          paths are synced again (docker/compose#12592)
//
// Lifecycle of a Session:
//
//	NewSession --Run(ctx)--> watching --ctx done / fatal error--> closed
//
// Run returns when ctx ends; it owns every goroutine it starts.
package watch
