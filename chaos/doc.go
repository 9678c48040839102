// Package chaos runs chaos scenarios against hive nodes and scores them.
//
// A scenario (scenarios/*.yml, read by ReadFile) states a steady state, the hive
// configuration to run, a load, a timeline of faults and operator actions,
// and objectives. Run starts what the scenario needs (hive-node processes,
// and for several nodes real nats-server processes clustered on loopback) or
// targets a running deployment, drives the load over NATS, applies the
// timeline at its offsets, records every request and every event, and
// evaluates the objectives. The Report it returns prints as a table and is
// written as JSON and as an SVG timeline.
//
// chaos talks to nodes only through NATS, as an operator would: it imports
// bus, messages, persistence (to decode events) and config (to validate the
// hive configuration a scenario carries), never the actors.
//
// Concurrency: Run owns its goroutines (load workers, the timeline, the event
// follower, one waiter per process) and waits for all of them before it
// returns. The recorder is the only shared state; its mutex guards it.
// Evaluate and the report writers are pure functions of a Recording.
package chaos
