// Package supervisor carries out scheduler plans and then owns each
// container's lifecycle: restarts, health checks, logs and state.
//
// The container runtime lives in supervisor/runtime, the image store in
// supervisor/image, and the translation of a compose service into an OCI
// runtime spec in supervisor/specconv.
package supervisor
