// Package api is the wire contract between the berth CLI and the berth
// daemon: HTTP/1.1 with JSON bodies over the unix socket $ROOT/berth.sock
// (mode 0600: only root can talk to the daemon), plus the client the CLI
// uses and the NDJSON helpers both sides share.
//
// Endpoints (all under /v1):
//
//	GET  /v1/ping                              -> Info
//	POST /v1/up          UpRequest             -> NDJSON Message stream (Event..., Result)
//	POST /v1/down        DownRequest           -> NDJSON Message stream (Event..., Result)
//	GET  /v1/ps?project=&all=1                 -> []ContainerSummary
//	POST /v1/containers/{name}/{action}        ContainerRequest -> ContainerResponse
//	     action: start, stop, restart, kill, pause, unpause, rm, wait
//	GET  /v1/logs?project=&service=&container=&follow=1&tail=N&since=RFC3339
//	                                           -> NDJSON Message stream (LogLine...)
//	GET  /v1/events?project=                   -> NDJSON Message stream (Event...)
//	GET  /v1/projects?all=1                    -> []ProjectSummary
//	GET  /v1/projects/{name}                   -> ProjectInfo
//	POST /v1/projects/{name}/{action}          ProjectRequest -> NDJSON Message stream (Event..., Result)
//	     action: start, stop, restart (in dependency order, from saved state)
//	POST /v1/run         RunRequest            -> NDJSON Message stream (Event..., LogLine..., Result)
//	     an Attached request (TTY or Interactive) gets its connection taken
//	     over: Attach messages carry files (SCM_RIGHTS), the pty master or
//	     the container's stdin pipe; use Client.RunAttached
//
// A request that fails before a stream starts gets a non-2xx status with an
// ErrorBody; the client turns it into an *Error that errors.Is matches
// against ErrNotFound, ErrConflict and ErrBadRequest. A stream always ends
// with a Result when the operation produces one (up, down, run); a stream
// that ends without it means the daemon went away.
package api
