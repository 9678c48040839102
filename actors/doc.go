// Package actors is the protoactor glue of Hive: one actor per model, owning
// its concurrency limit and in-flight calls, and a router actor that picks
// candidates and runs the fallback strategy for each request.
//
// It uses resilience/ and providers/ and declares the small interfaces it
// consumes; it never imports bus/, persistence/ or config/ (cmd/hive-node
// translates configuration into Spec values).
//
// Concurrency: Receive is called synchronously per actor, so actor state
// needs no locks. Receive never blocks: provider calls run in goroutines
// with a context the actor cancels on stop, and their results come back as
// messages. Those goroutines never touch actor fields.
package actors
