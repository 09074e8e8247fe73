// Package scheduler turns a spec.Project into a dependency graph and a
// reconcile plan, and walks plans with bounded concurrency.
//
// It has no side effects of its own: the steps of a plan are carried out
// by callbacks the supervisor supplies.
package scheduler
