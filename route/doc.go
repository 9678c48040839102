// Package route is the core of the router as a pure state machine: one
// Request per request, driven by Step(now, Event) and answering with the
// Effects its owner carries out (launch an attempt, cancel one, arm a
// timer, send a piece of text, finish with a reply). Every routing decision
// is made here: the candidates' order by strategy (sequential, parallel,
// hedged, weighted, random), skipping models that take no traffic, the
// group's open cap and its panic-mode trickle, same-model retries and their
// Retry-After waits, hedges, the retry budget, the request's deadline, the
// wait for a model to come back, how a streamed answer that failed
// after text reached the caller ends, the pre-call check of the models'
// context windows, and where a context_length or content_policy answer
// may go (limits.go, docs/context-windows.md). EstimateTokens is the
// prompt-token estimate that check uses.
//
// A Group holds what the requests of one fallback group share: its
// members' views, the retry budget, the open cap and panic bucket, the
// degradation level and the weighted rotation.
//
// It imports messages and resilience only. Nothing here starts a
// goroutine, takes a lock, reads the clock or does I/O: time is the now of
// each Step and randomness a function the owner passes in, so a request's
// whole life replays from its events (testdata/ holds such scripts). A
// Group and its Requests are owned by one actor, the router: they are not
// safe for concurrent use.
package route
