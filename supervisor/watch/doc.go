// Package watch carries out a service's develop.watch rules (berth watch,
// berth up --watch): it watches host paths recursively with fsnotify,
// batches changes over a short quiet period (DefaultQuiet, bounded by
// DefaultMaxDelay under a steady stream), drops ignored paths, and acts on
// each batch:
//
//	sync          write changed files straight into the container's view of
//	              target (its overlay rootfs on the host, or the host source
//	              of a bind or volume mount under target); delete deleted ones
//	sync+restart  sync, then restart the service once per batch
//	sync+exec     sync, then run exec.command in each container
//	restart       restart the service
//	rebuild       build the image again (build:, through supervisor/build) or
//	              re-pull it, then recreate the service (up --force-recreate)
//
// Ignored paths: the .dockerignore of the service's build context (or of
// the watched directory when there is no build:), the rule's ignore list
// (.dockerignore syntax, "!" negates, via github.com/moby/patternmatcher as
// Docker uses), and editors' temp files (*.swp, *~, .#*, 4913, ...).
// include, when set, keeps only the files it matches.
//
// Writes need nothing inside the image: every path in the container is
// resolved with openat2(RESOLVE_IN_ROOT), so a symlink in the container
// never leads out of it, and each file is written to a temporary name in
// its directory and renamed over the old one (its host mode and mtime
// kept). New files and directories belong to the container's user (its
// uid/gid from the image's /etc/passwd and /etc/group). Symlinks are
// copied as symlinks; mode-only changes (chmod) are not synced.
//
// After a container starts again (restart, recreate), the session syncs
// every sync rule of its service in full (docker/compose#12592): files
// whose size and mtime already match are skipped; files only the
// container has are left alone. initial_sync does the same at start.
//
// The pieces:
//
//	Matcher          which relative paths a rule ignores (ignore, include)
//	Watcher          recursive fsnotify watch of one host path -> Batches
//	Target.Sync      writes into one container root
//	Session          the rules of a project and their actions
//	Controller       what the session needs of the stack (interface);
//	DaemonController is the real one: runtime state for rootfs, mounts and
//	                 user, runtime exec, daemon API for restart, up and events
//
// Lifecycle of a Session:
//
//	NewSession --Run(ctx)--> watching --ctx done--> returned (nil)
//	                            \--a path cannot be watched--> returned (error)
//
// NewSession starts nothing; Run returns when ctx ends and has then ended
// every goroutine it started. Output is one line per batch
// ("web: synced 3 files to /app", "web: restarted") and errors naming the
// rule ("web: develop.watch[1] (./src → /app): ...").
package watch
