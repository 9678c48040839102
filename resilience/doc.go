// Package resilience holds Hive's pure policies: the error-class policy
// table, and (as they land) the circuit breaker, retry and backoff, budgets,
// health scoring, progressive restoration and degradation.
//
// It imports messages only. Nothing here starts a goroutine, takes a lock or
// reads the clock: time is a parameter, so every rule can be tested with a
// stepped clock and owned by a single actor.
package resilience
