// Package persistence keeps Hive's state in NATS JetStream: the audit stream
// (every health, breaker, recovery, alert and admin event the nodes publish,
// with who did each manual action) and the breaker-state bucket (each
// model's last breaker snapshot, restored when an actor or a node restarts,
// so that a crash never reopens traffic to a failing model).
//
// Imports: messages, resilience (for BreakerSnapshot), bus (subject names
// and the codec only), nats.go with its jetstream package, protobuf and
// zerolog. It never imports actors/ or cmd/: a BreakerStore satisfies
// actors.StateStore structurally, and the node package passes it in.
//
// Concurrency: a Store and its BreakerStore are safe for concurrent use.
// Load and Save never touch the network: Load reads a cache filled once by
// Open, and Save hands the write to one goroutine owned by the Store, which
// writes in order and stops in Close. ReadAudit and FollowEvents run fn on
// the caller's goroutine, one entry at a time, and start no goroutine of
// their own beyond nats.go's, which they stop before returning.
// FormatEntry and DecodeEvent are pure.
package persistence
