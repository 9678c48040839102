// Package gateway is Hive's HTTP face: the OpenAI-compatible chat
// completions endpoint (plain and streamed as SSE), the model list, liveness
// and readiness, /metrics in the Prometheus text format (metrics.go), and
// the live dashboard with its API (dashboard*.go, static/).
//
// Requests and replies keep OpenAI's shapes, so any OpenAI SDK is a client.
// Errors use OpenAI's error object with type set to the Hive error class and
// code to the Hive error code; the status is the class's
// (messages.ErrorClass.Status), and Retry-After is sent whenever Hive knows
// when to retry. Replies carry X-Hive-Served-By, X-Hive-Attempts,
// X-Hive-Degradation, X-Hive-Node and X-Request-Id (reply.go documents the
// attempts format); a stream that fails after text went out ends with an
// error event and no [DONE] (stream.go).
//
// It is served by fasthttp (Server): chat completions on fasthttp itself,
// the hot path, with the client's going away noticed in the network poller
// (watch.go) and the JSON read with internal/jsonscan and written by hand
// (encode.go); the other routes are net/http handlers behind
// fasthttpadaptor.
//
// It imports messages, zerolog and fasthttp; the node passes its request path in as a
// Dispatcher, and each chat completion hands it an inbox (inbox.go), the
// gateway's one messages.Sink, which passes the reply to the handler's
// goroutine without blocking the sender. Handlers decode and forward; they
// hold no model state.
// Everything here is safe for concurrent use by the server's goroutines.
package gateway
