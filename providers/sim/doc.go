// Package sim is a simulated model: configurable latency, jitter, failure
// rate and error class, deterministic for a given seed and call order. It
// needs no network and no account, so demos and tests run anywhere.
//
// A Model is safe for concurrent use; its random source is guarded by a
// mutex, and every call waits on a timer that honours its context.
package sim
