// Package scheduler turns a spec.Project into a dependency graph and a
// reconcile plan, and walks plans with bounded concurrency.
//
// It has no side effects of its own: the steps of a plan are carried out
// by an [Executor] the supervisor supplies. It imports only spec, the
// standard library, errgroup and go-multierror.
//
// # Graph
//
// [NewGraph] builds one edge per ordered pair of services from
// depends_on (condition, required, restart), links ("svc" or
// "svc:alias"), volumes_from ("svc[:ro]"; "container:x" is not a service
// edge) and network_mode, ipc and pid "service:X" (these share
// namespaces). A reference to an unknown or profile-disabled service is
// an error, except a depends_on with required: false, which is dropped. A
// cycle is a [*CycleError] that names the whole cycle, starting at its
// smallest name: "dependency cycle: api -> db -> api".
//
// # Lifecycle of a change
//
//	spec.Project + observed containers + config hashes
//	   │  Reconcile / PlanUp / PlanDown      (pure: same input, same Plan)
//	   ▼
//	Plan: ordered Steps, each with After, OrderAfter, Waits and a Cause
//	   │  Execute(ctx, plan, executor, limit)
//	   ▼
//	Report: one StepResult per step + a multierror of what went wrong
//	   └─ the supervisor observes the containers again ─► next Reconcile
//
// A container's steps are create, start, stop and remove; a recreate is
// stop + remove + create + start and a restart is stop + start. Plans put
// teardown first (orphans, then services in reverse dependency order,
// highest replica numbers first; a container stops after the containers
// that depend on it and is removed after they are) and bring-up second
// (services in dependency order, lowest numbers first; a container is
// created after its dependencies are created, or started when it joins
// their namespaces, and started after they are started). Every
// dependency a step names is an earlier step, so running the steps in
// order is always valid.
//
// Reconcile recreates a container whose config hash or image digest
// changed, then, following the graph in dependency order, recreates the
// containers that share the namespaces of a recreated or restarted
// service and restarts running dependents that declare restart: true on
// one. It scales replicas down (highest numbers first) and up (lowest
// free numbers), starts stopped containers, and warns about orphans or,
// with RemoveOrphans, removes them. When nothing differs the plan is
// empty.
//
// # Step state machine
//
// Execute moves every step through these states:
//
//	          After and OrderAfter all finished          Waits met
//	pending ──────────────────────────────────► waiting ───────────► running ── Do ok ────► done
//	   │                                           │                    │
//	   │ an After step failed or was blocked       │ a required         └──── Do error ──► failed
//	   ├─────────────────────────────► blocked     │ Wait failed
//	   │                                           └──────────────────────────────────► failed
//	   │ ctx cancelled                             │ ctx cancelled
//	   └─────────────────────────────► skipped ◄───┘
//
// A step in "waiting" holds no concurrency slot: its Waits (dependency
// conditions started, healthy, completed) are handed to
// Executor.WaitCondition, which must be event driven. Only Do calls count
// against the limit. An optional wait (required: false) that fails adds a
// warning and the step runs anyway; an OrderAfter step orders without
// blocking. Done, failed, blocked and skipped are final; no step runs
// twice. Cancelling the context lets running Do calls see the cancelled
// context, starts nothing new and marks the rest skipped.
package scheduler
