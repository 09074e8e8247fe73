// Package spec is berth's stack model and its loader.
//
// A Compose file (or several, merged) goes in through compose-go; a
// [Project] comes out: an immutable value holding only what berth acts on,
// as plain Go values. Everything downstream (scheduler, supervisor,
// netstack, volumes) reads a Project and never the YAML.
//
// [Load] takes [LoadOptions] mirroring Docker Compose's command line and
// environment (-f, COMPOSE_FILE, discovery, -p, --project-directory,
// --env-file, --profile, services named on the command line). The OS
// environment is passed in, never read, so loading is hermetic.
//
// Loading runs in this order:
//
//	read files ─► guard (size, depth, alias expansion; yaml.v3 node tree)
//	           ─► berth's own checks on the node tree (schema.go: unknown
//	              keys, types, ports, durations, byte sizes, volumes...)
//	           ─► compose-go (interpolate, merge, extends, include, normalize)
//	           ─► reference checks (networks, volumes, secrets, configs,
//	              depends_on, links, volumes_from, network_mode)
//	           ─► conversion into Project, with warnings
//
// Loading is strict: bad input yields an [*Error] naming the file, line,
// column and key path, wrapping [ErrInvalid], and never a panic or a
// partial Project. Fields that berth parses but does not act on are listed
// in one table (unsupported.go) and reported once each as warnings (see
// [Project.Warnings]), never silently dropped.
//
// [ServiceHash] is the per-service config hash used to decide whether a
// running container is up to date; it covers the contents of env_files,
// secrets and configs, not only their names.
package spec
