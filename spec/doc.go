// Package spec is berth's stack model and its loader.
//
// A Compose file (or several, merged) goes in through compose-go; a
// [Project] comes out: an immutable value holding only what berth acts on,
// as plain Go values. Everything downstream (scheduler, supervisor,
// netstack, volumes) reads a Project and never the YAML.
//
// Loading is strict: bad input yields an error naming the file, line,
// column and key path, and never a panic or a partial Project. Fields that
// berth parses but does not act on are reported once as warnings (see
// [Project.Warnings]), never silently dropped.
package spec
