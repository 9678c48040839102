// Package actors is the protoactor glue of Hive: one actor per model,
// owning its breaker, health, ramp, concurrency limit and in-flight calls,
// under a supervisor; the router actor every request passes through; the
// recovery and alerts actors.
//
// The router decides nothing about routing itself: each request is a
// route.Request state machine, and the router carries out its effects
// (router_effects.go), launching attempts on model actors, cancelling
// them, arming timers on one clock (router_timers.go) and handing the
// reply to the request's messages.Sink. An attempt is named by one
// route.AttemptID from the router to the model actor and back.
//
// It uses route, resilience and providers and declares the small
// interfaces it consumes (Publisher, StateStore); it never imports bus/,
// persistence/ or config/ (the node package translates configuration into
// Spec values).
//
// Concurrency: Receive is called synchronously per actor, so actor state
// needs no locks, and actors/ has none (MemoryStore, which stands for an
// external store, aside). Receive never blocks: provider calls and probes
// run in goroutines under a context the actor cancels on stop, and their
// results, and a stream's pieces, come back as messages. Those goroutines
// never touch actor fields.
package actors
