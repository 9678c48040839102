// Package sim is a simulated model: configurable latency, jitter, failure
// rate and error class, deterministic for a given seed and call order. It
// needs no network and no account, so demos and tests run anywhere. It
// streams too: the answer in word tokens paced by TokenDelay, the drawn
// latency and failure applying before the first token.
//
// A Model is safe for concurrent use; its random source is guarded by a
// mutex, and every call waits on a timer that honours its context. A Stream
// starts no goroutine.
package sim
